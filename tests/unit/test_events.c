/* TensorBoard event files: write scalars, histograms, text and images, read them back
 * with our reader, check the PNG bytes, the dumper, corrupt-file errors (with byte
 * offsets), and that a full or stalled disk is reported once without blocking.
 *
 * With a directory argument (`test_events DIR`) it only writes the sample run into DIR
 * and exits: tests/cli/test_tensorboard_reader.sh then loads that run with the real
 * TensorBoard (tests/python/check_events.py), which knows the same sample formulas. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "dtrain/crc32c.h"
#include "dtrain/events.h"
#include "test_util.h"

/* ---- The sample run; tests/python/check_events.py mirrors these formulas. ---- */

enum { HIST_N = 1000, GRAY_H = 28, GRAY_W = 20, RGB_H = 8, RGB_W = 12, IMAGE_STEP = 3 };
static const char *const CONFIG_TEXT = "model: mlp\nlayers: [256, 128]\n# not a *heading*\n";
static const char *const CONFIG_BLOCK =
    "    model: mlp\n    layers: [256, 128]\n    # not a *heading*\n";
static const char *const NOTES_MD = "**bold** run notes";

static double loss_at(int step) { return 1.0 / (step + 1); }
static double accuracy_at(int step) { return step * 0.125; }

/* Dyadic values, exact in float everywhere: ((i mod 400) - 200) / 64 * (step + 1). */
static void hist_values(float *v, int step) {
  for (int i = 0; i < HIST_N; i++) v[i] = ((float)(i % 400) - 200.0f) / 64.0f * (float)(step + 1);
}

static uint8_t gray_pixel(int y, int x) { return (uint8_t)((y * GRAY_W + x) * 3); }
static void rgb_pixel(int y, int x, uint8_t p[3]) {
  p[0] = (uint8_t)(x * 20);
  p[1] = (uint8_t)(y * 30);
  p[2] = (uint8_t)((x + y) * 10);
}

static int write_sample(dt_events_t *ev, dt_error_t *err) {
  int rc = 0;
  float values[HIST_N];
  for (int s = 0; s < 10 && !rc; s++) {
    rc = dt_events_scalar(ev, "train/loss", s, loss_at(s), err);
    if (!rc) rc = dt_events_scalar(ev, "train/accuracy", s, accuracy_at(s), err);
    if (!rc && (s == 0 || s == 5)) {
      hist_values(values, s);
      rc = dt_events_histogram(ev, "weights/dense1", s, values, HIST_N, err);
    }
  }
  if (!rc) rc = dt_events_text(ev, "config", 0, CONFIG_TEXT, err);
  if (!rc) rc = dt_events_markdown(ev, "notes", 0, NOTES_MD, err);
  uint8_t gray[GRAY_H * GRAY_W], rgb[RGB_H * RGB_W * 3];
  for (int y = 0; y < GRAY_H; y++)
    for (int x = 0; x < GRAY_W; x++) gray[y * GRAY_W + x] = gray_pixel(y, x);
  for (int y = 0; y < RGB_H; y++)
    for (int x = 0; x < RGB_W; x++) rgb_pixel(y, x, rgb + (y * RGB_W + x) * 3);
  if (!rc) rc = dt_events_image(ev, "samples/gray", IMAGE_STEP, GRAY_H, GRAY_W, 1, gray, err);
  if (!rc) rc = dt_events_image(ev, "samples/rgb", IMAGE_STEP, RGB_H, RGB_W, 3, rgb, err);
  return rc;
}

/* ---- Helpers. ---- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static void write_file(const char *path, const uint8_t *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(buf, 1, len, f);
  fclose(f);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parses a PNG written by our encoder (every chunk CRC checked, filter 0 rows) and
 * compares its pixels with the expected ones; returns the number of problems. */
static int check_png(const uint8_t *png, size_t len, int h, int w, int c,
                     const uint8_t *expected) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const int color_type[5] = {0, 0, 4, 2, 6};
  int bad = 0, saw_ihdr = 0, saw_iend = 0;
  if (len < 8 || memcmp(png, sig, 8) != 0) return 1;
  uint8_t *idat = NULL;
  size_t idat_len = 0;
  size_t pos = 8;
  while (pos + 12 <= len && !saw_iend) {
    uint32_t n = be32(png + pos);
    if (pos + 12 + n > len) return bad + 1;
    const uint8_t *type = png + pos + 4, *data = png + pos + 8;
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), type, n + 4);
    if (crc != be32(data + n)) bad++;
    if (memcmp(type, "IHDR", 4) == 0) {
      saw_ihdr = 1;
      if (n != 13 || (int)be32(data) != w || (int)be32(data + 4) != h || data[8] != 8 ||
          data[9] != color_type[c] || data[10] || data[11] || data[12])
        bad++;
    } else if (memcmp(type, "IDAT", 4) == 0) {
      uint8_t *p = realloc(idat, idat_len + n);
      if (!p) return bad + 1;
      idat = p;
      memcpy(idat + idat_len, data, n);
      idat_len += n;
    } else if (memcmp(type, "IEND", 4) == 0) {
      saw_iend = 1;
    }
    pos += 12 + n;
  }
  if (!saw_ihdr || !saw_iend || pos != len) bad++;
  size_t row = (size_t)w * c + 1;
  uLongf raw_len = (uLongf)(row * h);
  uint8_t *raw = malloc(raw_len + 1);
  if (!raw || !idat || uncompress(raw, &raw_len, idat, (uLong)idat_len) != Z_OK ||
      raw_len != row * h) {
    bad++;
  } else {
    for (int y = 0; y < h; y++) {
      if (raw[y * row] != 0) bad++;
      if (memcmp(raw + y * row + 1, expected + (size_t)y * (row - 1), row - 1) != 0) bad++;
    }
  }
  free(raw);
  free(idat);
  return bad;
}

/* ---- Tests. ---- */

typedef struct {
  uint64_t offset;
} rec_t;

/* Reads every record of path; returns the count and fills offsets (up to cap). */
static int read_offsets(const char *path, rec_t *recs, int cap) {
  dt_events_reader_t *r;
  dt_error_t err = {0};
  if (dt_events_reader_open(&r, path, &err)) return -1;
  const dt_event_t *e;
  int n = 0, rc;
  while ((rc = dt_events_reader_next(r, &e, &err)) == 1) {
    if (n < cap) recs[n].offset = e->offset;
    n++;
  }
  dt_events_reader_close(r);
  return rc == 0 ? n : -1;
}

static void test_roundtrip(const char *tmp, char *path_out, size_t path_cap) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/nested/run1", tmp);
  dt_error_t err = {0};
  dt_events_t *ev = NULL;
  double t0 = (double)time(NULL);
  CHECK_INT_EQ(dt_events_open(&ev, dir, &err), DT_OK);
  if (!ev) {
    fprintf(stderr, "open: %s\n", err.msg);
    return;
  }
  snprintf(path_out, path_cap, "%s", dt_events_path(ev));
  CHECK_INT_EQ(write_sample(ev, &err), DT_OK);
  CHECK_INT_EQ(dt_events_poll_error(ev, &err), DT_OK);
  CHECK_INT_EQ(dt_events_dropped(ev), 0);
  CHECK_INT_EQ(dt_events_close(ev, &err), DT_OK);

  /* events.out.tfevents.<10 digits>.<host>.<pid>.0 */
  const char *base = strrchr(path_out, '/') + 1;
  char host[256] = "";
  gethostname(host, sizeof host);
  char expected_tail[400];
  snprintf(expected_tail, sizeof expected_tail, ".%s.%ld.0", host, (long)getpid());
  CHECK(strncmp(base, "events.out.tfevents.", 20) == 0);
  int digits = 0;
  while (base[20 + digits] >= '0' && base[20 + digits] <= '9') digits++;
  CHECK_INT_EQ(digits, 10);
  CHECK_STR_CONTAINS(base, expected_tail);
  CHECK(strncmp(path_out, dir, strlen(dir)) == 0);

  dt_events_reader_t *r = NULL;
  CHECK_INT_EQ(dt_events_reader_open(&r, path_out, &err), DT_OK);
  if (!r) return;
  const dt_event_t *e;
  int rc, n = 0, scalars = 0, hists = 0, texts = 0, images = 0;
  float values[HIST_N];
  while ((rc = dt_events_reader_next(r, &e, &err)) == 1) {
    if (n++ == 0) {
      CHECK(e->file_version && strcmp(e->file_version, "brain.Event:2") == 0);
      CHECK_INT_EQ(e->offset, 0);
      CHECK_INT_EQ(e->nvalues, 0);
      CHECK_NEAR(e->wall_time, t0, 5.0);
      continue;
    }
    CHECK(e->file_version == NULL);
    CHECK_NEAR(e->wall_time, t0, 5.0);
    CHECK_INT_EQ(e->nvalues, 1);
    if (e->nvalues != 1) continue;
    const dt_event_value_t *v = &e->values[0];
    int s = (int)e->step;
    if (strcmp(v->tag, "train/loss") == 0) {
      CHECK_INT_EQ(v->kind, DT_EVENT_SCALAR);
      CHECK_INT_EQ(v->scalar == (float)loss_at(s), 1);
      scalars++;
    } else if (strcmp(v->tag, "train/accuracy") == 0) {
      CHECK_INT_EQ(v->kind, DT_EVENT_SCALAR);
      CHECK_NEAR(v->scalar, accuracy_at(s), 0);
      scalars++;
    } else if (strcmp(v->tag, "weights/dense1") == 0) {
      CHECK_INT_EQ(v->kind, DT_EVENT_HISTOGRAM);
      hist_values(values, s);
      double sum = 0, sumsq = 0, mn = values[0], mx = values[0];
      for (int i = 0; i < HIST_N; i++) {
        sum += values[i];
        sumsq += (double)values[i] * values[i];
        mn = fmin(mn, values[i]);
        mx = fmax(mx, values[i]);
      }
      CHECK_NEAR(v->num, HIST_N, 0);
      CHECK_NEAR(v->min, mn, 0);
      CHECK_NEAR(v->max, mx, 0);
      CHECK_NEAR(v->sum, sum, 1e-9);
      CHECK_NEAR(v->sum_squares, sumsq, 1e-6);
      /* Every bucket holds exactly the values in [previous limit, its limit). */
      double total = 0;
      int order_bad = 0, count_bad = 0;
      for (size_t b = 0; b < v->nbuckets; b++) {
        double lo = b == 0 ? -INFINITY : v->bucket_limit[b - 1], hi = v->bucket_limit[b];
        if (b > 0 && !(lo < hi)) order_bad++;
        int c = 0;
        for (int i = 0; i < HIST_N; i++) c += values[i] >= lo && values[i] < hi;
        if (c != v->bucket[b]) count_bad++;
        total += v->bucket[b];
      }
      CHECK_INT_EQ(order_bad, 0);
      CHECK_INT_EQ(count_bad, 0);
      CHECK_NEAR(total, HIST_N, 0);
      CHECK_NEAR(v->bucket_limit[v->nbuckets - 1], DBL_MAX, 0);
      /* Consecutive empty buckets are merged: no two zeros in a row. */
      int double_empty = 0;
      for (size_t b = 1; b < v->nbuckets; b++)
        double_empty += v->bucket[b] == 0 && v->bucket[b - 1] == 0;
      CHECK_INT_EQ(double_empty, 0);
      hists++;
    } else if (strcmp(v->tag, "config") == 0) {
      CHECK_INT_EQ(v->kind, DT_EVENT_TEXT);
      CHECK_INT_EQ(v->text_len, strlen(CONFIG_BLOCK));
      CHECK(v->text && memcmp(v->text, CONFIG_BLOCK, v->text_len) == 0);
      texts++;
    } else if (strcmp(v->tag, "notes") == 0) {
      CHECK_INT_EQ(v->kind, DT_EVENT_TEXT);
      CHECK_INT_EQ(v->text_len, strlen(NOTES_MD));
      CHECK(v->text && memcmp(v->text, NOTES_MD, v->text_len) == 0);
      texts++;
    } else if (strcmp(v->tag, "samples/gray") == 0) {
      uint8_t px[GRAY_H * GRAY_W];
      for (int y = 0; y < GRAY_H; y++)
        for (int x = 0; x < GRAY_W; x++) px[y * GRAY_W + x] = gray_pixel(y, x);
      CHECK_INT_EQ(v->kind, DT_EVENT_IMAGE);
      CHECK_INT_EQ(e->step, IMAGE_STEP);
      CHECK_INT_EQ(v->height, GRAY_H);
      CHECK_INT_EQ(v->width, GRAY_W);
      CHECK_INT_EQ(v->channels, 1);
      CHECK_INT_EQ(check_png(v->png, v->png_len, GRAY_H, GRAY_W, 1, px), 0);
      images++;
    } else if (strcmp(v->tag, "samples/rgb") == 0) {
      uint8_t px[RGB_H * RGB_W * 3];
      for (int y = 0; y < RGB_H; y++)
        for (int x = 0; x < RGB_W; x++) rgb_pixel(y, x, px + (y * RGB_W + x) * 3);
      CHECK_INT_EQ(v->kind, DT_EVENT_IMAGE);
      CHECK_INT_EQ(v->height, RGB_H);
      CHECK_INT_EQ(v->width, RGB_W);
      CHECK_INT_EQ(v->channels, 3);
      CHECK_INT_EQ(check_png(v->png, v->png_len, RGB_H, RGB_W, 3, px), 0);
      images++;
    } else {
      fprintf(stderr, "unexpected tag %s\n", v->tag);
      CHECK(0);
    }
  }
  CHECK_INT_EQ(rc, 0);
  CHECK_INT_EQ(n, 1 + 20 + 2 + 2 + 2);
  CHECK_INT_EQ(scalars, 20);
  CHECK_INT_EQ(hists, 2);
  CHECK_INT_EQ(texts, 2);
  CHECK_INT_EQ(images, 2);
  dt_events_reader_close(r);
}

/* Dumps path into a string (caller frees); *rc gets dt_events_dump's result. */
static char *dump_to_string(const char *path, int *rc, dt_error_t *err) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  *rc = dt_events_dump(f, path, err);
  fclose(f);
  return buf;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; s && *s; s++) n += *s == '\n';
  return n;
}

static void test_dump(const char *path) {
  dt_error_t err = {0};
  int rc;
  char *out = dump_to_string(path, &rc, &err);
  CHECK_INT_EQ(rc, DT_OK);
  CHECK_INT_EQ(count_lines(out), 27);
  CHECK_STR_CONTAINS(out, "offset=0 wall_time=");
  CHECK_STR_CONTAINS(out, "file_version=brain.Event:2");
  CHECK_STR_CONTAINS(out, "step=0 | train/loss scalar=1\n");
  CHECK_STR_CONTAINS(out, "step=9 | train/accuracy scalar=1.125\n");
  CHECK_STR_CONTAINS(out, "step=5 | weights/dense1 histogram num=1000 min=-18.75 max=18.65625");
  CHECK_STR_CONTAINS(out, "| config text=\"    model: mlp\\n    layers: [256, 128]\\n");
  CHECK_STR_CONTAINS(out, "step=3 | samples/gray image=20x28x1 (");
  CHECK_STR_CONTAINS(out, "samples/rgb image=12x8x3 (");
  free(out);

  out = dump_to_string("/nonexistent/events.out.tfevents.x", &rc, &err);
  CHECK_INT_EQ(rc, DT_ERR_IO);
  CHECK_STR_CONTAINS(err.msg, "/nonexistent/events.out.tfevents.x");
  free(out);
}

/* Damages a copy of the good file and checks the reader's and dumper's report. */
static void expect_corrupt(const char *tmp, const char *name, const uint8_t *data, size_t len,
                           uint64_t bad_offset, int good_before, const char *what) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  write_file(path, data, len);
  dt_error_t err = {0};
  int rc;
  char *out = dump_to_string(path, &rc, &err);
  CHECK_INT_EQ(rc, DT_ERR_FORMAT);
  char where[64];
  snprintf(where, sizeof where, "at byte offset %llu", (unsigned long long)bad_offset);
  CHECK_STR_CONTAINS(err.msg, where);
  CHECK_STR_CONTAINS(err.msg, path);
  CHECK_STR_CONTAINS(err.msg, what);
  CHECK_INT_EQ(count_lines(out), good_before);
  free(out);

  /* The reader keeps reporting the same error. */
  dt_events_reader_t *r;
  CHECK_INT_EQ(dt_events_reader_open(&r, path, &err), DT_OK);
  const dt_event_t *e;
  int n = 0;
  while ((rc = dt_events_reader_next(r, &e, &err)) == 1) n++;
  CHECK_INT_EQ(n, good_before);
  CHECK_INT_EQ(rc, DT_ERR_FORMAT);
  CHECK_INT_EQ(dt_events_reader_next(r, &e, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, where);
  dt_events_reader_close(r);
}

static void test_corrupt(const char *tmp, const char *good) {
  rec_t recs[64];
  int n = read_offsets(good, recs, 64);
  CHECK_INT_EQ(n, 27);
  if (n != 27) return;
  size_t len;
  uint8_t *data = read_file(good, &len);
  if (!data) {
    CHECK(0);
    return;
  }
  uint8_t *copy = malloc(len);
  const int k = 5; /* a scalar record */
  uint64_t at = recs[k].offset, next = recs[k + 1].offset;

  /* Cut inside the record's data, and inside its header. */
  expect_corrupt(tmp, "cut_data", data, (size_t)at + 20, at, k, "truncated record");
  expect_corrupt(tmp, "cut_header", data, (size_t)at + 5, at, k, "truncated record");
  /* Cut the last record's data CRC short. */
  expect_corrupt(tmp, "cut_tail", data, len - 2, recs[n - 1].offset, n - 1, "truncated record");

  memcpy(copy, data, len);
  copy[at + 1] ^= 0x01; /* the length */
  expect_corrupt(tmp, "bad_length", copy, len, at, k, "length CRC");

  memcpy(copy, data, len);
  copy[at + 12 + 3] ^= 0x40; /* a data byte */
  expect_corrupt(tmp, "bad_data", copy, len, at, k, "data CRC");

  memcpy(copy, data, len);
  copy[next - 1] ^= 0xff; /* the data CRC itself */
  expect_corrupt(tmp, "bad_crc", copy, len, at, k, "data CRC");

  /* Correct framing around bytes that are not an Event: a field-1 tag whose varint
   * never ends. */
  memcpy(copy, data, (size_t)at);
  uint8_t junk[8] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  uint8_t *rec = copy + at;
  uint64_t jl = sizeof junk;
  for (int i = 0; i < 8; i++) rec[i] = (uint8_t)(jl >> (8 * i));
  uint32_t c = dt_crc32c_mask(dt_crc32c(0, rec, 8));
  for (int i = 0; i < 4; i++) rec[8 + i] = (uint8_t)(c >> (8 * i));
  memcpy(rec + 12, junk, sizeof junk);
  c = dt_crc32c_mask(dt_crc32c(0, junk, sizeof junk));
  for (int i = 0; i < 4; i++) rec[20 + i] = (uint8_t)(c >> (8 * i));
  expect_corrupt(tmp, "not_event", copy, (size_t)at + 24, at, k, "not a valid Event");

  /* An empty file is a valid file with no events. */
  char empty[600];
  snprintf(empty, sizeof empty, "%s/empty", tmp);
  write_file(empty, data, 0);
  CHECK_INT_EQ(read_offsets(empty, recs, 64), 0);
  free(copy);
  free(data);
}

static void test_bad_args(const char *tmp) {
  dt_error_t err = {0};
  dt_events_t *ev = NULL;
  /* A directory whose parent is a regular file cannot be created. */
  char file[600], dir[700];
  snprintf(file, sizeof file, "%s/plainfile", tmp);
  write_file(file, (const uint8_t *)"x", 1);
  snprintf(dir, sizeof dir, "%s/sub/run", file);
  CHECK_INT_EQ(dt_events_open(&ev, dir, &err), DT_ERR_IO);
  CHECK(ev == NULL);
  CHECK_STR_CONTAINS(err.msg, file);
  CHECK_STR_CONTAINS(err.msg, "plainfile is not a directory");
  /* The directory itself is a regular file. */
  CHECK_INT_EQ(dt_events_open(&ev, file, &err), DT_ERR_IO);
  CHECK_STR_CONTAINS(err.msg, "not a directory");
  CHECK_INT_EQ(dt_events_open(&ev, "", &err), DT_ERR_ARG);

  char run[600];
  snprintf(run, sizeof run, "%s/args", tmp);
  CHECK_INT_EQ(dt_events_open(&ev, run, &err), DT_OK);
  CHECK_INT_EQ(dt_events_scalar(ev, "", 0, 1.0, &err), DT_ERR_ARG);
  CHECK_INT_EQ(dt_events_scalar(ev, NULL, 0, 1.0, &err), DT_ERR_ARG);
  CHECK_INT_EQ(dt_events_scalar(ev, "bad\xff", 0, 1.0, &err), DT_ERR_ARG);
  CHECK_STR_CONTAINS(err.msg, "UTF-8");
  CHECK_INT_EQ(dt_events_scalar(ev, "caf\xc3\xa9", 0, 1.0, &err), DT_OK);
  CHECK_INT_EQ(dt_events_text(ev, "t", 0, "bad \xc0\x80", &err), DT_ERR_ARG);
  uint8_t px[12] = {0};
  CHECK_INT_EQ(dt_events_image(ev, "im", 0, 2, 2, 5, px, &err), DT_ERR_ARG);
  CHECK_STR_CONTAINS(err.msg, "im");
  CHECK_INT_EQ(dt_events_image(ev, "im", 0, 0, 2, 1, px, &err), DT_ERR_ARG);
  CHECK_INT_EQ(dt_events_image(ev, "im", 0, 2, 2, 1, NULL, &err), DT_ERR_ARG);
  CHECK_INT_EQ(dt_events_histogram(ev, "h", 0, NULL, 3, &err), DT_ERR_ARG);
  /* An empty histogram and one with NaN and infinities are still valid. */
  CHECK_INT_EQ(dt_events_histogram(ev, "h", 0, NULL, 0, &err), DT_OK);
  float odd[5] = {1.0f, NAN, INFINITY, -INFINITY, -2.0f};
  CHECK_INT_EQ(dt_events_histogram(ev, "h", 1, odd, 5, &err), DT_OK);
  const char *path = dt_events_path(ev);
  char saved[700];
  snprintf(saved, sizeof saved, "%s", path);
  CHECK_INT_EQ(dt_events_close(ev, &err), DT_OK);
  CHECK_INT_EQ(dt_events_close(NULL, &err), DT_OK);

  dt_events_reader_t *r;
  CHECK_INT_EQ(dt_events_reader_open(&r, saved, &err), DT_OK);
  const dt_event_t *e;
  int n = 0;
  while (dt_events_reader_next(r, &e, &err) == 1) {
    if (n == 1) CHECK(strcmp(e->values[0].tag, "caf\xc3\xa9") == 0);
    if (n == 2) {
      CHECK_NEAR(e->values[0].num, 0, 0);
      CHECK_INT_EQ(e->values[0].nbuckets, 1);
    }
    if (n == 3) {
      CHECK_NEAR(e->values[0].num, 2, 0);
      CHECK_NEAR(e->values[0].min, -2, 0);
      CHECK_NEAR(e->values[0].max, 1, 0);
      CHECK_NEAR(e->values[0].sum, -1, 0);
    }
    n++;
  }
  CHECK_INT_EQ(n, 4);
  dt_events_reader_close(r);
}

/* Values across every magnitude the buckets cover (and beyond, up to FLT_MAX), with
 * both signs and zeros: each bucket must hold exactly the values in its range. */
static void test_histogram_wide(const char *tmp) {
  enum { N = 20000 };
  static float v[N];
  uint32_t state = 7;
  for (int i = 0; i < N; i++) {
    state = state * 1664525u + 1013904223u;
    double e = -15.0 + 54.0 * (state >> 8) / 16777216.0; /* 1e-15 .. 1e39 */
    v[i] = (float)((state & 1 ? -1.0 : 1.0) * pow(10.0, e));
    if (!isfinite(v[i])) v[i] = FLT_MAX;
  }
  v[0] = 0.0f, v[1] = -0.0f, v[2] = 1e-12f, v[3] = -1e-12f, v[4] = FLT_MAX, v[5] = -FLT_MAX;
  v[6] = FLT_MIN, v[7] = 1.0f, v[8] = -1.0f, v[9] = 1.1f;
  char dir[600];
  snprintf(dir, sizeof dir, "%s/wide", tmp);
  dt_error_t err = {0};
  dt_events_t *ev = NULL;
  CHECK_INT_EQ(dt_events_open(&ev, dir, &err), DT_OK);
  if (!ev) return;
  CHECK_INT_EQ(dt_events_histogram(ev, "wide", 0, v, N, &err), DT_OK);
  char path[700];
  snprintf(path, sizeof path, "%s", dt_events_path(ev));
  CHECK_INT_EQ(dt_events_close(ev, &err), DT_OK);
  dt_events_reader_t *r;
  CHECK_INT_EQ(dt_events_reader_open(&r, path, &err), DT_OK);
  const dt_event_t *e;
  int hists = 0;
  while (dt_events_reader_next(r, &e, &err) == 1) {
    if (e->nvalues != 1) continue;
    const dt_event_value_t *h = &e->values[0];
    hists++;
    CHECK_NEAR(h->num, N, 0);
    CHECK_NEAR(h->min, -FLT_MAX, 0);
    CHECK_NEAR(h->max, FLT_MAX, 0);
    int count_bad = 0;
    double total = 0;
    for (size_t b = 0; b < h->nbuckets; b++) {
      double lo = b == 0 ? -INFINITY : h->bucket_limit[b - 1], hi = h->bucket_limit[b];
      int c = 0;
      for (int i = 0; i < N; i++) c += (double)v[i] >= lo && (double)v[i] < hi;
      if (c != h->bucket[b]) count_bad++;
      total += h->bucket[b];
    }
    CHECK_INT_EQ(count_bad, 0);
    CHECK_NEAR(total, N, 0);
    CHECK(h->nbuckets > 1000);
  }
  CHECK_INT_EQ(hists, 1);
  dt_events_reader_close(r);
}

/* /dev/full fails every write with ENOSPC: the error is reported once, the producer
 * calls keep returning at once, and close reports the error. */
static void test_disk_full(void) {
  dt_error_t err = {0};
  dt_events_t *ev = NULL;
  dt_events_options_t opts = {.file_path = "/dev/full", .flush_timeout_ms = 2000};
  CHECK_INT_EQ(dt_events_open_opts(&ev, NULL, &opts, &err), DT_OK);
  if (!ev) return;
  double t0 = now_s();
  for (int s = 0; s < 1000; s++) CHECK_INT_EQ(dt_events_scalar(ev, "loss", s, 0.5, &err), 0);
  CHECK(now_s() - t0 < 1.0);
  CHECK_INT_EQ(dt_events_flush(ev, &err), DT_ERR_IO);
  CHECK_STR_CONTAINS(err.msg, "/dev/full");
  CHECK_STR_CONTAINS(err.msg, "No space left on device");
  CHECK_INT_EQ(dt_events_poll_error(ev, &err), DT_ERR_IO);
  CHECK_STR_CONTAINS(err.msg, "No space left on device");
  dt_error_clear(&err);
  CHECK_INT_EQ(dt_events_poll_error(ev, &err), DT_OK);
  t0 = now_s();
  for (int s = 0; s < 1000; s++) CHECK_INT_EQ(dt_events_scalar(ev, "loss", s, 0.5, &err), 0);
  CHECK(now_s() - t0 < 1.0);
  CHECK_INT_EQ(dt_events_poll_error(ev, &err), DT_OK);
  CHECK_INT_EQ(err.code, DT_OK);
  CHECK(dt_events_dropped(ev) >= 1000);
  CHECK_INT_EQ(dt_events_close(ev, &err), DT_ERR_IO);
  CHECK_STR_CONTAINS(err.msg, "No space left on device");
}

/* A FIFO nobody reads stands in for a disk that stops responding: the writer thread
 * blocks in write(), the buffer fills, and records are dropped without the producer
 * waiting. Closing the FIFO's read end then fails the stuck write (EPIPE). */
static void test_stalled_disk(const char *tmp) {
  char fifo[600];
  snprintf(fifo, sizeof fifo, "%s/stalled.fifo", tmp);
  CHECK_INT_EQ(mkfifo(fifo, 0600), 0);
  int rd = open(fifo, O_RDONLY | O_NONBLOCK);
  CHECK(rd >= 0);
  if (rd < 0) return;
  dt_error_t err = {0};
  dt_events_t *ev = NULL;
  dt_events_options_t opts = {.file_path = fifo,
                              .queue_bytes = 256 << 10,
                              .flush_interval_ms = 20,
                              .flush_timeout_ms = 300};
  CHECK_INT_EQ(dt_events_open_opts(&ev, NULL, &opts, &err), DT_OK);
  if (!ev) {
    close(rd);
    return;
  }
  /* Noise-like 64x64 images compress badly: about 4 KiB per record. */
  uint8_t px[64 * 64];
  uint32_t state = 12345;
  double t0 = now_s(), worst = 0;
  for (int s = 0; s < 400; s++) {
    for (size_t i = 0; i < sizeof px; i++) {
      state = state * 1664525u + 1013904223u;
      px[i] = (uint8_t)(state >> 24);
    }
    double t = now_s();
    CHECK_INT_EQ(dt_events_image(ev, "noise", s, 64, 64, 1, px, &err), DT_OK);
    worst = fmax(worst, now_s() - t);
    if (s % 50 == 0) sleep_ms(30); /* let the writer thread fill the pipe */
  }
  double total = now_s() - t0;
  printf("stalled disk: 400 image calls took %.3f s (slowest %.2f ms), %llu dropped\n", total,
         worst * 1e3, (unsigned long long)dt_events_dropped(ev));
  CHECK(worst < 0.25);
  CHECK(dt_events_dropped(ev) > 0);
  CHECK_INT_EQ(dt_events_poll_error(ev, &err), DT_ERR_TIMEOUT);
  CHECK_STR_CONTAINS(err.msg, "fell behind");
  CHECK_INT_EQ(dt_events_poll_error(ev, &err), DT_OK);
  t0 = now_s();
  CHECK_INT_EQ(dt_events_flush(ev, &err), DT_ERR_TIMEOUT);
  double waited = now_s() - t0;
  CHECK(waited >= 0.25 && waited < 2.0);
  CHECK_STR_CONTAINS(err.msg, fifo);

  /* The disk "fails": the blocked write returns EPIPE, and close returns promptly. */
  close(rd);
  t0 = now_s();
  CHECK_INT_EQ(dt_events_close(ev, &err), DT_ERR_IO);
  CHECK(now_s() - t0 < 2.0);
  CHECK_STR_CONTAINS(err.msg, "Broken pipe");
  unlink(fifo);
}

/* Records reach the file every flush_interval_ms without an explicit flush, so
 * TensorBoard sees a live run. */
static void test_periodic_flush(const char *tmp) {
  char dir[600];
  snprintf(dir, sizeof dir, "%s/live", tmp);
  dt_error_t err = {0};
  dt_events_t *ev = NULL;
  dt_events_options_t opts = {.flush_interval_ms = 50};
  CHECK_INT_EQ(dt_events_open_opts(&ev, dir, &opts, &err), DT_OK);
  if (!ev) return;
  CHECK_INT_EQ(dt_events_scalar(ev, "loss", 1, 2.0, &err), DT_OK);
  int n = 0;
  for (int i = 0; i < 100 && n < 2; i++) {
    sleep_ms(20);
    rec_t recs[4];
    n = read_offsets(dt_events_path(ev), recs, 4);
  }
  CHECK_INT_EQ(n, 2);
  CHECK_INT_EQ(dt_events_scalar(ev, "loss", 2, 1.0, &err), DT_OK);
  CHECK_INT_EQ(dt_events_flush(ev, &err), DT_OK);
  rec_t recs[4];
  CHECK_INT_EQ(read_offsets(dt_events_path(ev), recs, 4), 3);
  CHECK_INT_EQ(dt_events_close(ev, &err), DT_OK);
}

typedef struct {
  dt_events_t *ev;
  int id;
  int failures;
} producer_t;

static void *producer_main(void *arg) {
  producer_t *p = arg;
  char tag[32];
  snprintf(tag, sizeof tag, "thread%d", p->id);
  dt_error_t err = {0};
  float vals[16];
  for (int s = 0; s < 500; s++) {
    if (dt_events_scalar(p->ev, tag, s, s * 0.5, &err) != 0) p->failures++;
    if (s % 100 == 0) {
      for (int i = 0; i < 16; i++) vals[i] = (float)(i * s);
      if (dt_events_histogram(p->ev, tag, s, vals, 16, &err) != 0) p->failures++;
      if (dt_events_flush(p->ev, &err) != 0) p->failures++;
    }
  }
  return NULL;
}

/* Several threads write to one file at once (run under TSan too). */
static void test_threads(const char *tmp) {
  char dir[600];
  snprintf(dir, sizeof dir, "%s/threads", tmp);
  dt_error_t err = {0};
  dt_events_t *ev = NULL;
  dt_events_options_t opts = {.flush_interval_ms = 5, .queue_bytes = 1 << 20};
  CHECK_INT_EQ(dt_events_open_opts(&ev, dir, &opts, &err), DT_OK);
  if (!ev) return;
  producer_t p[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    p[i] = (producer_t){.ev = ev, .id = i};
    pthread_create(&th[i], NULL, producer_main, &p[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_INT_EQ(p[i].failures, 0);
  }
  char path[700];
  snprintf(path, sizeof path, "%s", dt_events_path(ev));
  CHECK_INT_EQ(dt_events_close(ev, &err), DT_OK);

  dt_events_reader_t *r;
  CHECK_INT_EQ(dt_events_reader_open(&r, path, &err), DT_OK);
  const dt_event_t *e;
  long step_sum[4] = {0};
  int n = 0, rc;
  while ((rc = dt_events_reader_next(r, &e, &err)) == 1) {
    n++;
    if (e->nvalues == 1 && e->values[0].kind == DT_EVENT_SCALAR) {
      int id = e->values[0].tag[6] - '0';
      if (id >= 0 && id < 4) step_sum[id] += e->step;
    }
  }
  CHECK_INT_EQ(rc, 0);
  CHECK_INT_EQ(n, 1 + 4 * (500 + 5));
  for (int i = 0; i < 4; i++) CHECK_INT_EQ(step_sum[i], 499 * 500 / 2);
  dt_events_reader_close(r);
}

static void remove_tree(const char *path) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    dt_error_t err = {0};
    dt_events_t *ev = NULL;
    int rc = dt_events_open(&ev, argv[1], &err);
    if (!rc) rc = write_sample(ev, &err);
    if (ev) {
      printf("%s\n", dt_events_path(ev));
      int crc = dt_events_close(ev, rc ? NULL : &err);
      if (!rc) rc = crc;
    }
    if (rc) fprintf(stderr, "test_events: %s\n", err.msg);
    return rc ? 1 : 0;
  }

  char tmp[] = "/tmp/dt_test_events.XXXXXX";
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  char good[700] = "";
  test_roundtrip(tmp, good, sizeof good);
  if (good[0]) {
    test_dump(good);
    test_corrupt(tmp, good);
  }
  test_bad_args(tmp);
  test_histogram_wide(tmp);
  test_disk_full();
  test_stalled_disk(tmp);
  test_periodic_flush(tmp);
  test_threads(tmp);
  remove_tree(tmp);
  return test_summary("test_events");
}
