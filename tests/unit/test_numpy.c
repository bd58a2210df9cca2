/* Tests for the NumPy loader on files built byte by byte here, for what numpy itself
 * rarely or never writes (numpy-written files are tested in tests/cli/test_data_numpy.sh):
 * headers in every accepted spelling (format 1.0/2.0/3.0, Python 2's 3L, double quotes,
 * no trailing comma) and refused ones; a zip whose central directory and end record use
 * the zip64 forms (numpy writes those only past 4 GiB); a path holding ":" and ".npz";
 * joining targets and views over a mapped dataset; an IDX file of doubles loaded, in
 * host order. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dtrain/data.h"
#include "dtrain/error.h"
#include "dtrain/idx.h"
#include "dtrain/numpy.h"
#include "test_util.h"

static char tmpdir[64];
static char created[32][256];
static int n_created;

static const char *tmp_file(const char *name, const void *data, size_t len) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f) {
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
  }
  if (n_created < 32) snprintf(created[n_created++], sizeof created[0], "%s", path);
  return path;
}

/* A .npy of format major.0 with the given dict text, padded as numpy pads, then data. */
static size_t make_npy(uint8_t *buf, int major, const char *dict, const void *data,
                       size_t data_len) {
  size_t pre = major == 1 ? 10 : 12, dlen = strlen(dict);
  size_t hlen = ((pre + dlen + 1 + 63) / 64) * 64 - pre;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (uint8_t)major;
  buf[7] = 0;
  for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (uint8_t)(hlen >> (8 * i));
  memset(buf + pre, ' ', hlen);
  memcpy(buf + pre, dict, dlen);
  buf[pre + hlen - 1] = '\n';
  memcpy(buf + pre + hlen, data, data_len);
  return pre + hlen + data_len;
}

static void expect_load(const char *name, int major, const char *dict, int n, int dim) {
  uint8_t buf[512];
  float v[6] = {1, 2, 3, 4, 5, 6};
  size_t len = make_npy(buf, major, dict, v, sizeof v);
  const char *path = tmp_file(name, buf, len);
  dt_dataset_t ds;
  dt_error_t err = {0};
  int rc = dt_numpy_load(path, &ds, &err);
  CHECK_INT_EQ(rc, DT_OK);
  if (rc) {
    fprintf(stderr, "  %s: %s\n", name, err.msg);
    return;
  }
  CHECK_INT_EQ(ds.n, n);
  CHECK_INT_EQ(ds.dim, dim);
  CHECK(ds.x.type == DT_F32 && strcmp(ds.what, path) == 0 && ds.ykind == DT_Y_NONE);
  float x[6];
  uint32_t all[6] = {0, 1, 2, 3, 4, 5};
  CHECK_INT_EQ(dt_dataset_gather(&ds, NULL, all, (size_t)n, x, NULL, NULL, &err), DT_OK);
  CHECK(memcmp(x, v, sizeof v) == 0);
  dt_dataset_free(&ds);
}

static void expect_refused(const char *name, const char *dict, const char *needle) {
  uint8_t buf[512];
  float v[6] = {0};
  size_t len = make_npy(buf, 1, dict, v, sizeof v);
  const char *path = tmp_file(name, buf, len);
  dt_dataset_t ds;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_numpy_load(path, &ds, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, path);
  CHECK_STR_CONTAINS(err.msg, needle);
  CHECK(ds.owner == NULL && ds.x.base == NULL);
}

static void test_headers(void) {
  expect_load("v1.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 3, 2);
  expect_load("v2.npy", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 6, 1);
  expect_load("v3.npy", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 3);
  expect_load("py2.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 2L), }", 3, 2);
  expect_load("quotes.npy", 1, "{\"shape\": (1, 3, 2), \"descr\": \"<f4\", \"fortran_order\": False}",
              1, 6);
  expect_refused("nokey.npy", "{'descr': '<f4', 'shape': (6,)}", "no 'fortran_order' key");
  expect_refused("extra.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}",
                 "expected 'descr', 'fortran_order' or 'shape'");
  expect_refused("twice.npy", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                 "'shape': (6,)}", "expected each key once");
  expect_refused("after.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x",
                 "expected only spaces after the dict");
  expect_refused("struct.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}",
                 "a structured array");
  expect_refused("bool.npy", "{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}",
                 "expected True or False");
  expect_refused("uint16.npy", "{'descr': '<u2', 'fortran_order': False, 'shape': (12,)}",
                 "unsupported dtype '<u2' (unsigned integers wider than 8 bits)");
  expect_refused("zero.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 0)}",
                 "dimension 1 (0) must be between 1");
  expect_refused("huge.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': "
                 "(4294967295, 2147483647, 2147483647, 2147483647)}", "more than 2^64");
}

static void put16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
  put16(p, v & 0xffff);
  put16(p + 2, v >> 16);
}
static void put64(uint8_t *p, uint64_t v) {
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

/* A one-entry stored archive whose central directory gives the sizes and offset only in
 * a zip64 extra field, and whose end record points to a zip64 end record. */
static size_t make_zip64(uint8_t *z, const char *name, const uint8_t *data, uint32_t len) {
  size_t n = strlen(name), at = 0;
  uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, len);
  memset(z, 0, 30 + n + len + 46 + n + 28 + 56 + 20 + 22);
  put32(z, 0x04034b50);
  put16(z + 4, 45);
  put32(z + 14, crc);
  put32(z + 18, len);
  put32(z + 22, len);
  put16(z + 26, (unsigned)n);
  memcpy(z + 30, name, n);
  memcpy(z + 30 + n, data, len);
  at = 30 + n + len;
  size_t cd = at;
  uint8_t *c = z + at;
  put32(c, 0x02014b50);
  put16(c + 4, 45);
  put16(c + 6, 45);
  put32(c + 16, crc);
  put32(c + 20, 0xffffffffu);
  put32(c + 24, 0xffffffffu);
  put16(c + 28, (unsigned)n);
  put16(c + 30, 28);
  put32(c + 42, 0xffffffffu);
  memcpy(c + 46, name, n);
  uint8_t *x = c + 46 + n;
  put16(x, 1);
  put16(x + 2, 24);
  put64(x + 4, len);  /* uncompressed */
  put64(x + 12, len); /* compressed */
  put64(x + 20, 0);   /* local header offset */
  at += 46 + n + 28;
  size_t cd_size = at - cd, e64 = at;
  uint8_t *e = z + at;
  put32(e, 0x06064b50);
  put64(e + 4, 44);
  put16(e + 12, 45);
  put16(e + 14, 45);
  put64(e + 24, 1);
  put64(e + 32, 1);
  put64(e + 40, cd_size);
  put64(e + 48, cd);
  at += 56;
  uint8_t *l = z + at;
  put32(l, 0x07064b50);
  put64(l + 8, e64);
  put32(l + 16, 1);
  at += 20;
  uint8_t *r = z + at;
  put32(r, 0x06054b50);
  put16(r + 8, 0xffff);
  put16(r + 10, 0xffff);
  put32(r + 12, 0xffffffffu);
  put32(r + 16, 0xffffffffu);
  return at + 22;
}

static void test_zip64_and_paths(void) {
  uint8_t npy[256], zip[1024];
  int16_t v[4] = {-3, 7, 32767, -32768};
  size_t len = make_npy(npy, 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 2), }",
                        v, sizeof v);
  size_t zlen = make_zip64(zip, "w.npy", npy, (uint32_t)len);
  /* A directory whose name holds ":" and ".npz:": the last ".npz:" splits the spec. */
  char dir[128];
  snprintf(dir, sizeof dir, "%s/odd.npz:dir", tmpdir);
  CHECK(mkdir(dir, 0700) == 0);
  char name[160];
  snprintf(name, sizeof name, "odd.npz:dir/z64.npz");
  const char *path = tmp_file(name, zip, zlen);
  char spec[300];
  snprintf(spec, sizeof spec, "%s:w", path);
  dt_dataset_t ds;
  dt_error_t err = {0};
  int rc = dt_numpy_load(spec, &ds, &err);
  CHECK_INT_EQ(rc, DT_OK);
  if (rc) fprintf(stderr, "  %s\n", err.msg);
  if (!rc) {
    CHECK_INT_EQ(ds.n, 2);
    CHECK_INT_EQ(ds.dim, 2);
    CHECK(ds.x.type == DT_I16);
    CHECK(strcmp(ds.what, spec) == 0);
    float x[4];
    uint32_t idx[2] = {1, 0};
    CHECK_INT_EQ(dt_dataset_gather(&ds, NULL, idx, 2, x, NULL, NULL, &err), DT_OK);
    CHECK(x[0] == 32767.0f && x[1] == -32768.0f && x[2] == -3.0f && x[3] == 7.0f);
    dt_dataset_free(&ds);
  }
  /* The zip64 extra field cut short: the saturated offset has no 64-bit value. */
  zip[30 + 5 + len + 46 + 5 + 2] = 16; /* the extra field's declared size (24 -> 16) */
  path = tmp_file(name, zip, zlen);
  CHECK_INT_EQ(dt_numpy_load(spec, &ds, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "entry 'w.npy': corrupt zip: a 32-bit size or offset says zip64");
  CHECK_STR_CONTAINS(err.msg, path);
  remove(path);
  n_created--;
  rmdir(dir);
}

/* Targets joined from an IDX file of doubles into a mapped .npy's dataset; a view of the
 * result gathers the right rows; freeing the inputs frees the targets' storage too. */
static void test_join_and_views(void) {
  uint8_t buf[512];
  uint8_t u[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  size_t len = make_npy(buf, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 2), }",
                        u, sizeof u);
  char xpath[256];
  snprintf(xpath, sizeof xpath, "%s", tmp_file("x.npy", buf, len));
  /* IDX doubles, big-endian: 0.5, -2, 1e10, 3 as a (4,) vector. */
  double y[4] = {0.5, -2, 1e10, 3};
  uint8_t idx[8 + 32] = {0, 0, 0x0E, 1, 0, 0, 0, 4};
  for (int i = 0; i < 4; i++) {
    uint64_t b;
    memcpy(&b, &y[i], 8);
    for (int k = 0; k < 8; k++) idx[8 + 8 * i + k] = (uint8_t)(b >> (56 - 8 * k));
  }
  const char *ypath = tmp_file("y.idx", idx, sizeof idx);
  dt_dataset_t xs, ys;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_numpy_load(xpath, &xs, &err), DT_OK);
  CHECK_INT_EQ(dt_idx_load(ypath, &ys, &err), DT_OK);
  CHECK(ys.x.type == DT_F64 && ys.n == 4 && ys.dim == 1 && ys.ndim == 1 && ys.shape[0] == 1);
  CHECK_INT_EQ(dt_dataset_join_targets(&xs, &ys, &err), DT_OK);
  CHECK(ys.owner == NULL && xs.ykind == DT_Y_VALUES && xs.y.row == 1);
  dt_dataset_t train, val;
  dt_dataset_split(&xs, 0.5, &train, &val);
  uint32_t k[2] = {1, 0};
  float x[4], t[2];
  CHECK_INT_EQ(dt_dataset_gather(&val, NULL, k, 2, x, NULL, t, &err), DT_OK);
  CHECK(x[0] == 6 && x[1] == 7 && x[2] == 4 && x[3] == 5);
  CHECK(t[0] == 3.0f && t[1] == 1e10f);
  dt_scaling_t by255 = {.kind = DT_SCALE_1_255};
  CHECK_INT_EQ(dt_dataset_gather(&train, &by255, k, 1, x, NULL, t, &err), DT_OK);
  CHECK_NEAR(x[0], 2.0 / 255, 1e-7);
  CHECK(t[0] == -2.0f);
  dt_dataset_free(&xs);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/test_numpy_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_headers();
  test_zip64_and_paths();
  test_join_and_views();
  for (int i = 0; i < n_created; i++) remove(created[i]);
  rmdir(tmpdir);
  return test_summary("test_numpy");
}
