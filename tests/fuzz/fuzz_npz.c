/* libFuzzer target for .npz archives (src/io/zip.c through src/io/numpy.c): the end
 * records (zip64 included), the central directory, local headers, stored and deflated
 * entries, CRC-32 and size checks.
 *
 * Input: byte 0 chooses what happens to the rest, the payload.
 *   bits 0-1: 0: the payload is the archive; 1: the harness makes it the entry "a.npy"
 *             of a well-formed archive, stored; 2: the same, deflated; 3: the payload is
 *             the archive, loaded without naming an array (the listing's path).
 *   bits 2-3: the array asked for: "a", "b", "arr_0" or "x".
 * The archive is written to a file named *.npz in TMPDIR (removed after every input).
 * Checked: a failure sets a message and leaves the dataset empty; in modes 1 and 2 the
 * entry's array loads exactly as the same bytes do as a .npy file (both fail, or both
 * give the same shape, type and values); a dataset that loads gathers its first and
 * last samples. Nothing may crash, read out of bounds, leak, or allocate more than the
 * compressed size allows. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "dtrain/numpy.h"

static char npz_path[4096];
static int npy_fd = -1;
static char npy_path[64];

static void setup(void) {
  if (npy_fd >= 0) return;
  const char *tmp = getenv("TMPDIR");
  snprintf(npz_path, sizeof npz_path, "%s/fuzz_npz_%d.npz", tmp && *tmp ? tmp : "/tmp",
           (int)getpid());
  npy_fd = memfd_create("fuzz_npz_npy", MFD_CLOEXEC);
  if (npy_fd < 0) {
    perror("memfd_create");
    abort();
  }
  snprintf(npy_path, sizeof npy_path, "/proc/self/fd/%d", npy_fd);
}

static void put16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
  put16(p, v & 0xffff);
  put16(p + 2, v >> 16);
}

/* A one-entry archive "a.npy" holding data, stored or deflated (a malloc'd buffer). */
static uint8_t *make_zip(const uint8_t *data, size_t len, int deflated, size_t *out_len) {
  uint8_t *body = (uint8_t *)data;
  size_t body_len = len;
  if (deflated) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t cap = deflateBound(&z, len) + 16;
    body = malloc(cap);
    if (!body) abort();
    z.next_in = (uint8_t *)data;
    z.avail_in = (uInt)len;
    z.next_out = body;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    body_len = z.total_out;
    deflateEnd(&z);
  }
  uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)len);
  const char *name = "a.npy";
  size_t n = strlen(name), total = 30 + n + body_len + 46 + n + 22;
  uint8_t *z = calloc(1, total);
  if (!z) abort();
  uint8_t *p = z;
  put32(p, 0x04034b50);
  put16(p + 4, 20);
  put16(p + 8, deflated ? 8 : 0);
  put32(p + 14, crc);
  put32(p + 18, (uint32_t)body_len);
  put32(p + 22, (uint32_t)len);
  put16(p + 26, (unsigned)n);
  memcpy(p + 30, name, n);
  memcpy(p + 30 + n, body, body_len);
  uint8_t *c = p + 30 + n + body_len;
  put32(c, 0x02014b50);
  put16(c + 4, 20);
  put16(c + 6, 20);
  put16(c + 10, deflated ? 8 : 0);
  put32(c + 16, crc);
  put32(c + 20, (uint32_t)body_len);
  put32(c + 24, (uint32_t)len);
  put16(c + 28, (unsigned)n);
  memcpy(c + 46, name, n);
  uint8_t *e = c + 46 + n;
  put32(e, 0x06054b50);
  put16(e + 8, 1);
  put16(e + 10, 1);
  put32(e + 12, (uint32_t)(46 + n));
  put32(e + 16, (uint32_t)(c - z));
  if (deflated) free(body);
  *out_len = total;
  return z;
}

static void write_file(const char *p, const uint8_t *data, size_t len) {
  FILE *f = fopen(p, "wb");
  if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
    perror(p);
    abort();
  }
}

static void check_loaded(const dt_dataset_t *ds) {
  if (!ds->x.base || !ds->owner || ds->ndim < 1 || ds->ndim > DT_DATA_MAX_DIMS) abort();
  if (ds->n == 0) return;
  uint32_t idx[2] = {0, (uint32_t)(ds->n - 1)};
  float *x = malloc(2 * ds->dim * sizeof *x);
  if (!x) abort();
  if (dt_dataset_gather(ds, NULL, idx, 2, x, NULL, NULL, NULL)) abort();
  free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  setup();
  int mode = data[0] & 3;
  static const char *const names[4] = {"a", "b", "arr_0", "x"};
  const char *name = names[(data[0] >> 2) & 3];
  data++;
  size--;

  size_t zlen = size;
  uint8_t *zip = (uint8_t *)data;
  if (mode == 1 || mode == 2) zip = make_zip(data, size, mode == 2, &zlen);
  write_file(npz_path, zip, zlen);
  if (zip != data) free(zip);

  char spec[4200];
  snprintf(spec, sizeof spec, "%s%s%s", npz_path, mode == 3 ? "" : ":", mode == 3 ? "" : name);
  dt_dataset_t ds;
  dt_error_t err = {0};
  int rc = dt_numpy_load(spec, &ds, &err);
  unlink(npz_path);
  if (rc != 0) {
    if (rc != err.code || !err.msg[0] || ds.owner || ds.x.base || ds.n) abort();
  } else {
    check_loaded(&ds);
    if (mode == 3) abort(); /* an archive without an array's name never loads */
  }

  if ((mode == 1 || mode == 2) && strcmp(name, "a") == 0) {
    /* The entry must read exactly as the same bytes do as a .npy file. */
    if (ftruncate(npy_fd, 0) != 0 || (size && pwrite(npy_fd, data, size, 0) != (ssize_t)size))
      abort();
    dt_dataset_t ref;
    dt_error_t rerr = {0};
    int rrc = dt_numpy_load(npy_path, &ref, &rerr);
    if ((rrc == 0) != (rc == 0)) abort();
    if (rc == 0) {
      size_t bytes = ds.n * ds.dim * dt_dtype_size(ds.x.type);
      if (ref.n != ds.n || ref.dim != ds.dim || ref.ndim != ds.ndim || ref.x.type != ds.x.type ||
          memcmp(ref.shape, ds.shape, sizeof ds.shape) != 0 ||
          (bytes && memcmp(ref.x.base, ds.x.base, bytes) != 0))
        abort();
    }
    dt_dataset_free(&ref);
  } else if ((mode == 1 || mode == 2) && rc != DT_ERR_NOT_FOUND) {
    abort(); /* the only entry is a.npy: any other name is not found */
  }
  dt_dataset_free(&ds);
  return 0;
}
