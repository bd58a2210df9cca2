/* libFuzzer target for .npy files (src/io/numpy.c): the header's dict literal, the
 * version, dtype, order and shape checks, the size checks against the file, and the
 * NaN/Inf scan over the mapped data. Users bring these files from anywhere.
 *
 * Input: the file itself, written to an in-memory file (memfd_create) that
 * dt_numpy_load maps through /proc/self/fd/N. A zip magic takes the path that lists an
 * archive's arrays.
 * Checked: a failure sets a message and leaves the dataset empty; a dataset that loads
 * is exactly as large as the file says (header + n * dim values), its shape multiplies
 * to dim, its float values are all finite, and its first and last samples gather and
 * split. Nothing may crash, read out of bounds or leak. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dtrain/numpy.h"

static int fd = -1;
static char path[64];

static void setup(void) {
  if (fd >= 0) return;
  fd = memfd_create("fuzz_npy", MFD_CLOEXEC);
  if (fd < 0) {
    perror("memfd_create");
    abort();
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
    perror("writing the memfd");
    abort();
  }
  dt_dataset_t ds;
  dt_error_t err = {0};
  int rc = dt_numpy_load(path, &ds, &err);
  if (rc != 0) {
    if (rc != err.code || !err.msg[0] || ds.owner || ds.x.base || ds.n) abort();
    return 0;
  }
  size_t prod = 1;
  for (int i = 0; i < ds.ndim; i++) {
    if (ds.shape[i] < 1) abort();
    prod *= (size_t)ds.shape[i];
  }
  if (ds.ndim < 1 || ds.ndim > DT_DATA_MAX_DIMS || prod != ds.dim || ds.x.row != ds.dim ||
      !ds.x.base || !ds.owner || ds.ykind != DT_Y_NONE || !ds.what || strcmp(ds.what, path))
    abort();
  /* The data ends exactly at the end of the file. */
  size_t bytes = ds.n * ds.dim * dt_dtype_size(ds.x.type);
  const uint8_t *base = ds.x.base;
  if (bytes > size || size - bytes < 10) abort();
  /* The mapped data are the file's last bytes (the map is the file, at another address). */
  if (bytes && memcmp(base, data + (size - bytes), bytes) != 0) abort();
  if (ds.n > 0) {
    uint32_t idx[2] = {0, (uint32_t)(ds.n - 1)};
    float *x = malloc(2 * ds.dim * sizeof *x);
    if (!x) abort();
    if (dt_dataset_gather(&ds, NULL, idx, 2, x, NULL, NULL, NULL)) abort();
    if (ds.x.type == DT_F32 || ds.x.type == DT_F64)
      for (size_t i = 0; i < 2 * ds.dim; i++)
        if (!isfinite(x[i])) abort();
    free(x);
  }
  dt_dataset_t train, val;
  dt_dataset_split(&ds, 0.25, &train, &val);
  if (train.n + val.n != ds.n) abort();
  dt_dataset_free(&ds);
  if (ds.owner || ds.n) abort();
  return 0;
}
