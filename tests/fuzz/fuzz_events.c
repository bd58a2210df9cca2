/* libFuzzer target for the TensorBoard event-file reader (dtrain-worker --events, and
 * the tests that read our own logs back): event files are often cut off by a crash or
 * copied while still being written.
 *
 * Input: byte 0 chooses how the rest becomes the file.
 *   bit 0 clear: the rest is the file as it is (TFRecords with their CRCs);
 *   bit 0 set:   the rest is a list of record bodies, each behind a 2-byte
 *                little-endian length, which the harness frames as TFRecords with
 *                correct CRCs, so that inputs reach the Event decoding.
 * The file lives in memory (memfd_create) and is read through /proc/self/fd/N with
 * dt_events_reader_next until it ends or fails, every field of every value read; then
 * printed with dt_events_dump. Checked: records follow each other without gaps; a clean
 * end comes exactly at the end of the file; an error is repeated by the next call; a
 * framed file fails only for a record that is not an Event; the dumper ends like the
 * reader. Nothing may crash, read out of bounds, or leak. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dtrain/crc32c.h"
#include "dtrain/events.h"

enum { HEADER = 12, FOOTER = 4, MAX_RECORDS = 4096 };

static int fd = -1;
static char path[64];
static FILE *devnull;

static void setup(void) {
  if (fd >= 0) return;
  fd = memfd_create("fuzz_events", MFD_CLOEXEC);
  devnull = fopen("/dev/null", "w");
  if (fd < 0 || !devnull) {
    perror("fuzz_events setup");
    abort();
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
}

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Frames the 2-byte-length-prefixed bodies of in as TFRecords into a malloc'd file. */
static uint8_t *frame(const uint8_t *in, size_t n, size_t *out_len) {
  uint8_t *out = malloc(n * 8 + HEADER + FOOTER); /* each body costs at most 14 more bytes */
  if (!out) abort();
  size_t o = 0;
  for (size_t pos = 0; pos < n;) {
    size_t len = in[pos];
    if (pos + 1 < n) len |= (size_t)in[pos + 1] << 8;
    pos += 2;
    if (pos > n) pos = n;
    if (len > n - pos) len = n - pos;
    put_le(out + o, len, 8);
    put_le(out + o + 8, dt_crc32c_mask(dt_crc32c(0, out + o, 8)), 4);
    memcpy(out + o + HEADER, in + pos, len);
    put_le(out + o + HEADER + len, dt_crc32c_mask(dt_crc32c(0, in + pos, len)), 4);
    o += HEADER + len + FOOTER;
    pos += len;
  }
  *out_len = o;
  return out;
}

/* Reads every field the reader hands out, so that ASan sees any bad pointer. */
static double touch(const dt_event_t *e) {
  double sum = e->wall_time + (double)e->step;
  if (e->file_version) sum += (double)strlen(e->file_version);
  if (e->nvalues && !e->values) abort();
  for (size_t i = 0; i < e->nvalues; i++) {
    const dt_event_value_t *v = &e->values[i];
    if (!v->tag) abort();
    sum += (double)strlen(v->tag);
    switch (v->kind) {
      case DT_EVENT_SCALAR:
        sum += v->scalar;
        break;
      case DT_EVENT_HISTOGRAM:
        sum += v->num + v->min + v->max + v->sum + v->sum_squares;
        for (size_t k = 0; k < v->nbuckets; k++) sum += v->bucket_limit[k] + v->bucket[k];
        break;
      case DT_EVENT_IMAGE:
        sum += v->height + v->width + v->channels;
        for (size_t k = 0; k < v->png_len; k++) sum += v->png[k];
        break;
      case DT_EVENT_TEXT:
        for (size_t k = 0; k < v->text_len; k++) sum += (unsigned char)v->text[k];
        break;
      case DT_EVENT_OTHER:
        break;
      default:
        abort();
    }
  }
  return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  setup();
  int framed = data[0] & 1;
  const uint8_t *file = data + 1;
  size_t len = size - 1;
  uint8_t *owned = NULL;
  if (framed) file = owned = frame(data + 1, size - 1, &len);
  if (ftruncate(fd, 0) != 0 || (len && pwrite(fd, file, len, 0) != (ssize_t)len)) abort();

  dt_events_reader_t *r;
  dt_error_t err;
  if (dt_events_reader_open(&r, path, &err) != 0) abort();
  const dt_event_t *e;
  int rc, n = 0;
  uint64_t next = 0;
  volatile double sink = 0;
  while ((rc = dt_events_reader_next(r, &e, &err)) == 1 && n < MAX_RECORDS) {
    if (!e || e->offset != next) abort();
    next = e->offset + HEADER + FOOTER;
    /* The record's length is in its header, in the file. */
    uint64_t body = 0;
    for (int i = 7; i >= 0; i--) body = body << 8 | file[e->offset + (size_t)i];
    next += body;
    if (next > len) abort();
    sink += touch(e);
    n++;
  }
  (void)sink;
  if (rc == 0 && next != len) abort();
  if (rc < 0) {
    if (rc != err.code || !err.msg[0] || e) abort();
    /* Once bad, always bad: the next call says the same. */
    dt_error_t again;
    if (dt_events_reader_next(r, &e, &again) != rc || strcmp(again.msg, err.msg) != 0) abort();
    if (framed && !strstr(err.msg, "is not a valid Event")) abort();
  }
  dt_events_reader_close(r);

  int dumped = dt_events_dump(devnull, path, &err);
  if (n < MAX_RECORDS && dumped != (rc < 0 ? rc : 0)) abort();
  free(owned);
  return 0;
}
