/* libFuzzer target for the IDX dataset reader (plain and gzip): dataset files are
 * downloaded, copied and cut by users, so their headers and sizes are not to be trusted.
 *
 * Input: byte 0 chooses what happens to the rest, the payload.
 *   bit 0:    the harness gzips the payload before it is read (else it is read as it
 *             is, which still lets gzip magic in the payload take the gzip path);
 *   bit 1:    dt_idx_load_pair on an images file and a labels file: the payload's
 *             first byte says how long the images part is (in 8-byte units), the rest
 *             is the labels part; else dt_idx_read with bits 2-3 choosing how many
 *             dimensions it expects (1, 3, 2 or 4).
 * The files live in memory (memfd_create) and are read through /proc/self/fd/N.
 * Checked: a file read plainly and the same file gzipped give the same answer; a plain
 * file that is read is exactly header plus data; a dataset that loads has labels below
 * its class count and samples that can be gathered and split. Nothing may crash, read
 * out of bounds, leak, or allocate by what a header claims. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "dtrain/idx.h"

/* Two in-memory files (images, labels), made once per process. */
static int fds[2] = {-1, -1};
static char paths[2][64];

static void setup(void) {
  if (fds[0] >= 0) return;
  for (int i = 0; i < 2; i++) {
    fds[i] = memfd_create(i ? "fuzz_idx_labels" : "fuzz_idx_images", MFD_CLOEXEC);
    if (fds[i] < 0) {
      perror("memfd_create");
      abort();
    }
    snprintf(paths[i], sizeof paths[i], "/proc/self/fd/%d", fds[i]);
  }
}

static void put_file(int i, const uint8_t *data, size_t len) {
  if (ftruncate(fds[i], 0) != 0 || (len && pwrite(fds[i], data, len, 0) != (ssize_t)len)) {
    perror("writing the memfd");
    abort();
  }
}

/* The payload as a gzip file (a malloc'd buffer). */
static uint8_t *gzip(const uint8_t *data, size_t len, size_t *out_len) {
  z_stream z = {0};
  if (deflateInit2(&z, 1, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  size_t cap = deflateBound(&z, len) + 32;
  uint8_t *out = malloc(cap);
  if (!out) abort();
  z.next_in = (uint8_t *)data;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  *out_len = z.total_out;
  deflateEnd(&z);
  return out;
}

/* Writes file i, gzipped or not. */
static void write_idx(int i, const uint8_t *data, size_t len, int gz) {
  if (!gz) {
    put_file(i, data, len);
    return;
  }
  size_t glen;
  uint8_t *g = gzip(data, len, &glen);
  put_file(i, g, glen);
  free(g);
}

static int read_idx(const uint8_t *data, size_t len, int gz, int ndims, uint8_t **out,
                    uint32_t *dims) {
  dt_error_t err;
  write_idx(0, data, len, gz);
  int rc = dt_idx_read(paths[0], ndims, out, dims, &err);
  if (rc != 0 && (rc != err.code || !err.msg[0] || *out)) abort();
  return rc;
}

static void check_read(const uint8_t *data, size_t len, int gz, int ndims) {
  uint8_t *got = NULL;
  uint32_t dims[4] = {0};
  int rc = read_idx(data, len, gz, ndims, &got, dims);
  size_t header = 4 + 4 * (size_t)ndims;
  uint64_t total = 1;
  if (rc == 0) {
    for (int i = 0; i < ndims; i++) total *= dims[i];
    if (len < header) abort();
    /* A payload that is itself gzip is inflated when read as it is. */
    bool plain = !(len >= 2 && data[0] == 0x1f && data[1] == 0x8b);
    if (plain && (total != len - header || memcmp(got, data + header, len - header) != 0))
      abort();
  }
  /* The same payload gzipped must read to the same data (or fail the same way). */
  if (!gz && !(len >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
    uint8_t *again = NULL;
    uint32_t dims2[4] = {0};
    int rc2 = read_idx(data, len, 1, ndims, &again, dims2);
    if (rc2 != rc) abort();
    if (rc == 0 && (memcmp(dims, dims2, sizeof dims) != 0 || memcmp(got, again, total) != 0))
      abort();
    free(again);
  }
  free(got);
}

static void check_dataset(const uint8_t *data, size_t len, int gz) {
  if (len < 1) return;
  size_t split = (size_t)data[0] * 8;
  data++;
  len--;
  if (split > len) split = len;
  write_idx(0, data, split, gz);
  write_idx(1, data + split, len - split, gz);
  dt_dataset_t ds;
  dt_error_t err;
  int rc = dt_idx_load_pair(&ds, paths[0], paths[1], true, &err);
  if (rc != 0) {
    if (rc != err.code || !err.msg[0]) abort();
    return;
  }
  if (ds.ndim != 3 || ds.shape[0] < 1 || ds.shape[1] < 1 || ds.shape[2] != 1 ||
      ds.dim != (size_t)ds.shape[0] * (size_t)ds.shape[1] || !ds.x.base || !ds.y.base ||
      ds.num_classes < 0 || ds.num_classes > 256 || (ds.n > 0 && ds.num_classes < 1))
    abort();
  const int32_t *all_labels = ds.y.base;
  for (size_t i = 0; i < ds.n; i++)
    if (all_labels[i] < 0 || all_labels[i] >= ds.num_classes) abort();
  if (ds.n > 0) {
    /* The first and the last sample, gathered as a batch; every pixel is in [0, 1]. */
    uint32_t idx[2] = {0, (uint32_t)(ds.n - 1)};
    float *x = malloc(2 * ds.dim * sizeof *x);
    int32_t labels[2];
    if (!x) abort();
    dt_scaling_t by255 = {.kind = DT_SCALE_1_255};
    if (dt_dataset_gather(&ds, &by255, idx, 2, x, labels, NULL, NULL)) abort();
    for (size_t i = 0; i < 2 * ds.dim; i++)
      if (!(x[i] >= 0.0f && x[i] <= 1.0f)) abort();
    if (labels[0] != all_labels[0] || labels[1] != all_labels[ds.n - 1]) abort();
    free(x);
  }
  dt_dataset_t train, val;
  dt_dataset_split(&ds, 0.25, &train, &val);
  if (train.n + val.n != ds.n) abort();
  dt_dataset_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  setup();
  static const int ndims[4] = {1, 3, 2, 4};
  int mode = data[0], gz = mode & 1;
  if (mode & 2)
    check_dataset(data + 1, size - 1, gz);
  else
    check_read(data + 1, size - 1, gz, ndims[(mode >> 2) & 3]);
  return 0;
}
