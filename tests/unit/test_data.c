/* Tests for datasets in memory: gathering (byte scaling, float copy, labels), split and
 * truncate, the per-epoch permutation, and the property the sharding promises: N ranks
 * with batch B see exactly what one rank with batch N*B sees, in the same order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/data.h"
#include "dtrain/idx.h"
#include "dtrain/error.h"
#include "test_util.h"

static void test_gather(void) {
  /* Three samples of 4 bytes; sample 1 holds the values with known scaled results. */
  const uint8_t bytes[12] = {1, 2, 3, 4, 0, 255, 51, 102, 10, 20, 30, 40};
  const int32_t labels[3] = {5, 6, 7};
  dt_dataset_t ds = {0};
  ds.n = 3;
  ds.dim = 4;
  ds.ndim = 1;
  ds.shape[0] = 4;
  ds.shape[1] = ds.shape[2] = 1;
  ds.x = (dt_array_t){DT_U8, bytes, 4};
  ds.ykind = DT_Y_CLASSES;
  ds.y = (dt_array_t){DT_I32, labels, 1};
  ds.num_classes = 8;

  const uint32_t idx[2] = {1, 2};
  float x[8];
  int32_t y[2] = {-1, -1};
  dt_scaling_t by255 = {.kind = DT_SCALE_1_255};
  CHECK_INT_EQ(dt_dataset_gather(&ds, &by255, idx, 2, x, y, NULL, NULL), 0);
  CHECK_NEAR(x[0], 0.0, 0.0);
  CHECK_NEAR(x[1], 1.0, 1e-7);
  CHECK_NEAR(x[2], 0.2, 1e-7);
  CHECK_NEAR(x[3], 0.4, 1e-7);
  CHECK_NEAR(x[4], 10.0 / 255.0, 1e-7);
  CHECK_NEAR(x[7], 40.0 / 255.0, 1e-7);
  CHECK_INT_EQ(y[0], 6);
  CHECK_INT_EQ(y[1], 7);

  /* Float storage is copied as it is. */
  const float f[6] = {0.5f, -1.5f, 2.0f, 3.0f, 4.0f, -7.25f};
  dt_dataset_t fd = {0};
  fd.n = 3;
  fd.dim = 2;
  fd.x = (dt_array_t){DT_F32, f, 2};
  const uint32_t fidx[3] = {2, 0, 2};
  float fx[6];
  int32_t untouched = 99;
  CHECK_INT_EQ(dt_dataset_gather(&fd, NULL, fidx, 3, fx, &untouched, NULL, NULL), 0);
  CHECK_NEAR(fx[0], 4.0, 0.0);
  CHECK_NEAR(fx[1], -7.25, 0.0);
  CHECK_NEAR(fx[2], 0.5, 0.0);
  CHECK_NEAR(fx[3], -1.5, 0.0);
  CHECK_NEAR(fx[4], 4.0, 0.0);
  CHECK_NEAR(fx[5], -7.25, 0.0);
  /* A dataset without labels leaves the label buffer alone. */
  CHECK_INT_EQ(untouched, 99);
}

/* The class id of a dataset's (or view's) sample 0. */
static int first_label(const dt_dataset_t *ds) {
  int32_t y = -1;
  uint32_t zero = 0;
  CHECK_INT_EQ(dt_dataset_gather(ds, NULL, &zero, 1, NULL, &y, NULL, NULL), 0);
  return y;
}

static void test_split_truncate(void) {
  enum { N = 10, D = 3 };
  uint8_t bytes[N * D];
  int32_t labels[N];
  for (int i = 0; i < N * D; i++) bytes[i] = (uint8_t)i;
  for (int i = 0; i < N; i++) labels[i] = i;
  dt_dataset_t all = {0};
  all.n = N;
  all.dim = D;
  all.x = (dt_array_t){DT_U8, bytes, D};
  all.ykind = DT_Y_CLASSES;
  all.y = (dt_array_t){DT_I32, labels, 1};
  all.num_classes = N;

  dt_dataset_t train, val;
  dt_dataset_split(&all, 0.2, &train, &val);
  CHECK_INT_EQ(train.n, 8);
  CHECK_INT_EQ(val.n, 2);
  CHECK(train.x.base == bytes && train.y.base == labels && train.first == 0);
  /* The validation set is the tail: samples 8 and 9. */
  CHECK_INT_EQ(val.first, 8);
  CHECK_INT_EQ(first_label(&val), 8);
  CHECK_NEAR(dt_array_get(&val.x, val.first, 0), 24.0, 0.0);
  CHECK_INT_EQ(val.dim, D);
  CHECK_INT_EQ(val.num_classes, N);
  CHECK(train.owner == NULL && val.owner == NULL);

  /* Rounding: 10 * 0.25 = 2.5 rounds to 3 (half away from zero); 10 * 0.14 = 1.4 to 1. */
  dt_dataset_split(&all, 0.25, &train, &val);
  CHECK_INT_EQ(val.n, 3);
  CHECK_INT_EQ(train.n, 7);
  dt_dataset_split(&all, 0.14, &train, &val);
  CHECK_INT_EQ(val.n, 1);
  CHECK_INT_EQ(first_label(&val), 9);

  dt_dataset_split(&all, 0.0, &train, &val);
  CHECK_INT_EQ(train.n, N);
  CHECK_INT_EQ(val.n, 0);

  /* Splitting into the source itself works because the source is read first. */
  dt_dataset_t copy = all;
  dt_dataset_split(&copy, 0.5, &copy, &val);
  CHECK_INT_EQ(copy.n, 5);
  CHECK_INT_EQ(val.n, 5);
  CHECK_INT_EQ(first_label(&val), 5);

  /* A view of a view counts from the view's start. */
  dt_dataset_t inner = dt_dataset_view(&val, 2, 100);
  CHECK_INT_EQ(inner.first, 7);
  CHECK_INT_EQ(inner.n, 3);
  CHECK_INT_EQ(first_label(&inner), 7);

  dt_dataset_t t = all;
  dt_dataset_truncate(&t, 4);
  CHECK_INT_EQ(t.n, 4);
  CHECK(t.x.base == bytes);
  dt_dataset_truncate(&t, 100);
  CHECK_INT_EQ(t.n, 4);

  /* Freeing a view frees nothing and zeroes the struct. */
  dt_dataset_free(&t);
  CHECK(t.n == 0 && t.x.base == NULL && t.y.base == NULL);
}

static int is_permutation(const uint32_t *perm, size_t n) {
  unsigned char *seen = calloc(n ? n : 1, 1);
  int ok = seen != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    if (perm[i] >= n || seen[perm[i]]) ok = 0;
    else seen[perm[i]] = 1;
  }
  free(seen);
  return ok;
}

static void test_permutation(void) {
  enum { N = 1000 };
  uint32_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
  dt_epoch_permutation(42, 3, a, N);
  dt_epoch_permutation(42, 3, b, N);
  dt_epoch_permutation(42, 4, c, N);
  CHECK(is_permutation(a, N));
  CHECK(is_permutation(c, N));
  CHECK(memcmp(a, b, N * sizeof *a) == 0);
  CHECK(memcmp(a, c, N * sizeof *a) != 0);
  /* A different seed gives a different order too, and the order is actually shuffled. */
  dt_epoch_permutation(43, 3, b, N);
  CHECK(memcmp(a, b, N * sizeof *a) != 0);
  size_t fixed = 0;
  for (size_t i = 0; i < N; i++) fixed += a[i] == i;
  /* A uniform permutation has one fixed point on average. */
  CHECK(fixed < 10);

  /* Tiny sizes are fine. */
  uint32_t one = 77;
  dt_epoch_permutation(1, 1, &one, 1);
  CHECK_INT_EQ(one, 0);
  dt_epoch_permutation(1, 1, &one, 0);

  /* Every element can land in every position: over many epochs, position 0 of a
   * 4-element permutation takes each value roughly a quarter of the time. */
  int counts[4] = {0, 0, 0, 0};
  for (uint64_t e = 0; e < 4000; e++) {
    uint32_t p4[4];
    dt_epoch_permutation(7, e, p4, 4);
    counts[p4[0]]++;
  }
  for (int v = 0; v < 4; v++) CHECK(counts[v] > 850 && counts[v] < 1150);
  free(a);
  free(b);
  free(c);
}

static void test_batches(void) {
  CHECK_INT_EQ(dt_batches_per_epoch(60000, 32, 1), 1875);
  CHECK_INT_EQ(dt_batches_per_epoch(60000, 32, 2), 937);
  CHECK_INT_EQ(dt_batches_per_epoch(100, 10, 3), 3);
  CHECK_INT_EQ(dt_batches_per_epoch(5, 10, 1), 0);
  CHECK_INT_EQ(dt_batches_per_epoch(100, 0, 1), 0);
  CHECK_INT_EQ(dt_batches_per_epoch(100, 10, 0), 0);
}

static void test_sharding(void) {
  enum { N = 1003, B = 16 };
  uint32_t perm[N];
  dt_epoch_permutation(2024, 5, perm, N);
  size_t g2 = dt_batches_per_epoch(N, B, 2);
  size_t g1 = dt_batches_per_epoch(N, 2 * B, 1);
  CHECK_INT_EQ(g2, g1);
  size_t mismatches = 0;
  for (size_t g = 0; g < g2; g++) {
    const uint32_t *r0 = dt_shard_batch(perm, g, B, 0, 2);
    const uint32_t *r1 = dt_shard_batch(perm, g, B, 1, 2);
    const uint32_t *one = dt_shard_batch(perm, g, 2 * B, 0, 1);
    for (size_t i = 0; i < B; i++) {
      mismatches += r0[i] != one[i];
      mismatches += r1[i] != one[B + i];
    }
    /* Every slice stays inside the permutation. */
    CHECK(r1 + B <= perm + N);
  }
  CHECK_INT_EQ(mismatches, 0);

  /* Ranks' slices of one epoch are disjoint: with 4 ranks no sample repeats. */
  size_t g4 = dt_batches_per_epoch(N, B, 4);
  unsigned char seen[N];
  memset(seen, 0, sizeof seen);
  size_t repeats = 0;
  for (size_t g = 0; g < g4; g++)
    for (int r = 0; r < 4; r++) {
      const uint32_t *s = dt_shard_batch(perm, g, B, r, 4);
      for (size_t i = 0; i < B; i++) repeats += seen[s[i]]++ != 0;
    }
  CHECK_INT_EQ(repeats, 0);
}

static void test_real_fashion_mnist(void) {
  const char *dir = "/usr/share/datasets/fashion-mnist";
  char labels[256], images[256];
  snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz", dir);
  snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz", dir);
  if (access(labels, R_OK) != 0 || access(images, R_OK) != 0) {
    printf("note: %s not found; skipping the real Fashion-MNIST check\n", labels);
    return;
  }
  dt_dataset_t ds;
  dt_error_t err;
  dt_error_clear(&err);
  int rc = dt_idx_load_pair(&ds, images, labels, true, &err);
  CHECK_INT_EQ(rc, DT_OK);
  if (rc != DT_OK) {
    fprintf(stderr, "  error: %s\n", err.msg);
    return;
  }
  CHECK_INT_EQ(ds.n, 60000);
  CHECK_INT_EQ(ds.shape[0], 28);
  CHECK_INT_EQ(ds.shape[1], 28);
  CHECK_INT_EQ(ds.shape[2], 1);
  CHECK_INT_EQ(ds.dim, 784);
  CHECK_INT_EQ(ds.num_classes, 10);
  /* Fashion-MNIST is balanced: 6,000 of each class. */
  int counts[10] = {0};
  for (size_t i = 0; i < ds.n; i++) counts[((const int32_t *)ds.y.base)[i]]++;
  for (int c = 0; c < 10; c++) CHECK_INT_EQ(counts[c], 6000);

  dt_dataset_t train, val;
  dt_dataset_split(&ds, 0.1, &train, &val);
  CHECK_INT_EQ(train.n, 54000);
  CHECK_INT_EQ(val.n, 6000);
  dt_dataset_free(&ds);
}

int main(void) {
  test_gather();
  test_split_truncate();
  test_permutation();
  test_batches();
  test_sharding();
  test_real_fashion_mnist();
  return test_summary("test_data");
}
