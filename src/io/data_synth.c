/* Generated datasets: the binary-addition task for recurrent networks.
 *
 * Each sample adds two (bits-1)-bit numbers a and b, so that the sum fits in `bits`
 * bits. The input is a sequence of `bits` steps of 2 features, least significant bit
 * first: step t holds (bit t of a, bit t of b). The label is a + b; the network must
 * emit bit t of the sum at step t, which needs the carry from the steps before. Train
 * and test take disjoint sets of (a, b) pairs, so the test measures generalization. */
#include <stdlib.h>
#include <string.h>

#include "dtrain/data.h"
#include "dtrain/rng.h"

/* Fills ds with the pairs pairs[0..n) as samples. */
static int fill(dt_dataset_t *ds, const uint32_t *pairs, size_t n, int bits, dt_error_t *err) {
  memset(ds, 0, sizeof *ds);
  uint8_t *x = malloc((size_t)bits * 2 * (n ? n : 1));
  int32_t *labels = malloc(sizeof *labels * (n ? n : 1));
  if (!x || !labels) {
    free(x);
    free(labels);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory generating %zu binary sums", n);
  }
  uint32_t half = 1u << (bits - 1);
  for (size_t i = 0; i < n; i++) {
    uint32_t a = pairs[i] / half, b = pairs[i] % half;
    for (int t = 0; t < bits; t++) {
      x[(i * (size_t)bits + (size_t)t) * 2] = (uint8_t)(((a >> t) & 1) * 255);
      x[(i * (size_t)bits + (size_t)t) * 2 + 1] = (uint8_t)(((b >> t) & 1) * 255);
    }
    labels[i] = (int32_t)(a + b);
  }
  ds->n = n;
  ds->dim = (size_t)bits * 2;
  ds->ndim = 2;
  ds->shape[0] = bits;
  ds->shape[1] = 2;
  ds->shape[2] = 1;
  ds->x = (dt_array_t){DT_U8, x, ds->dim};
  ds->ykind = DT_Y_CLASSES;
  ds->y = (dt_array_t){DT_I32, labels, 1};
  ds->num_classes = 1 << bits;
  ds->what = "the binary-addition task";
  int rc = dt_data_own(ds, labels, err);
  if (rc) {
    free(x);
    return rc;
  }
  return dt_data_own(ds, x, err);
}

int dt_dataset_binary_addition(dt_dataset_t *train, dt_dataset_t *test, int bits, size_t n_train,
                               size_t n_test, uint64_t seed, dt_error_t *err) {
  if (bits < 2 || bits > 16)
    return dt_error_set(err, DT_ERR_CONFIG, "binary addition: bits = %d, expected 2..16", bits);
  size_t total = (size_t)1 << (2 * (bits - 1));
  if (n_train + n_test > total)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "binary addition: %zu training + %zu test sums, but %d-bit sums of two "
                        "%d-bit numbers have only %zu distinct pairs",
                        n_train, n_test, bits, bits - 1, total);
  uint32_t *pairs = malloc(sizeof *pairs * total);
  if (!pairs) return dt_error_set(err, DT_ERR_NOMEM, "out of memory generating binary sums");
  for (size_t i = 0; i < total; i++) pairs[i] = (uint32_t)i;
  /* A shuffle of every pair; train takes the head and test the next ones. */
  dt_rng_t rng;
  dt_rng_seed(&rng, dt_rng_mix(seed, 0xadd));
  for (size_t i = total - 1; i > 0; i--) {
    size_t j = (size_t)dt_rng_below(&rng, (uint64_t)i + 1);
    uint32_t tmp = pairs[i];
    pairs[i] = pairs[j];
    pairs[j] = tmp;
  }
  int rc = fill(train, pairs, n_train, bits, err);
  if (!rc && (rc = fill(test, pairs + n_train, n_test, bits, err))) dt_dataset_free(train);
  free(pairs);
  return rc;
}
