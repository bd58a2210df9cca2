/* The device API on the CPU backend: memory (alignment, fills, copies, host views),
 * streams and events (complete as soon as recorded), GEMM in every transpose
 * combination with alpha and beta against a double-precision reference, the
 * strided-batched GEMM against one GEMM per matrix (bit for bit: the same OpenBLAS
 * calls), the row and column helpers, the conv_blas option reaching the convolution's
 * workspace, and the error for an unknown backend.
 *
 * Tolerance of the GEMMs: a sum of k products rounded in float is within
 * k * FLT_EPSILON * sum |terms| of the exact value (see test_conv_naive.c); alpha and
 * beta add two roundings, so (k + 2) FLT_EPSILON times the magnitude is allowed. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/device.h"
#include "dtrain/rng.h"
#include "test_util.h"

static dt_device_t *make(bool conv_blas) {
  dt_device_t *dev = NULL;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_device_create(&(dt_device_options_t){.cpu.conv_blas = conv_blas}, &dev, &err),
               0);
  return dev;
}

static void test_memory(dt_device_t *dev) {
  CHECK(dev->kind == DT_DEVICE_CPU);
  CHECK(dev->host_memory);
  CHECK(dev->stream != NULL && dev->stream->dev == dev);
  dt_error_t err = {0};
  float *a = NULL, *b = NULL, *empty = NULL;
  CHECK_INT_EQ(dt_device_alloc(dev, 37 * sizeof(float), (void **)&a, &err), 0);
  CHECK_INT_EQ(dt_device_alloc(dev, 37 * sizeof(float), (void **)&b, &err), 0);
  CHECK_INT_EQ(dt_device_alloc(dev, 0, (void **)&empty, &err), 0);
  CHECK(empty != NULL);
  CHECK_INT_EQ((uintptr_t)a % 64, 0);
  CHECK_INT_EQ((uintptr_t)b % 64, 0);

  dt_stream_t *s = dev->stream;
  dt_device_fill(s, a, 37, 1.5f);
  dt_device_fill(s, b, 37, 0.0f);
  for (int i = 0; i < 37; i++) CHECK_NEAR(a[i], 1.5, 0.0);
  for (int i = 0; i < 37; i++) CHECK(b[i] == 0.0f && !signbit(b[i]));
  float host[37];
  for (int i = 0; i < 37; i++) host[i] = (float)i;
  dt_device_copy(s, a, host, sizeof host, DT_COPY_H2D);
  dt_device_copy(s, b, a, sizeof host, DT_COPY_D2D);
  float back[37] = {0};
  dt_device_copy(s, back, b, sizeof back, DT_COPY_D2H);
  CHECK(memcmp(back, host, sizeof host) == 0);

  /* Device memory is host memory here: the host view is the buffer itself. */
  void *view = NULL;
  CHECK_INT_EQ(dt_device_to_host(s, a, sizeof host, NULL, &view, &err), 0);
  CHECK(view == (void *)a);
  CHECK_INT_EQ(dt_device_from_host(s, a, view, sizeof host, &err), 0);
  dt_device_free(dev, a);
  dt_device_free(dev, b);
  dt_device_free(dev, empty);
  dt_device_free(dev, NULL);
}

static void test_streams_and_events(dt_device_t *dev) {
  dt_error_t err = {0};
  dt_stream_t *s2 = NULL;
  dt_device_event_t *e = NULL;
  CHECK_INT_EQ(dt_device_stream_create(dev, &s2, &err), 0);
  CHECK_INT_EQ(dt_device_event_create(dev, &e, &err), 0);
  float *x = NULL;
  CHECK_INT_EQ(dt_device_alloc(dev, 16 * sizeof(float), (void **)&x, &err), 0);
  /* Work on the default stream, an event after it, a second stream that waits for it:
   * on the CPU the event is complete as soon as it is recorded. */
  dt_device_fill(dev->stream, x, 16, 2.0f);
  dt_device_event_record(e, dev->stream);
  bool done = false;
  CHECK_INT_EQ(dt_device_event_query(e, &done, &err), 0);
  CHECK(done);
  dt_device_stream_wait_event(s2, e);
  dt_device_mul(s2, 16, x, x, x);
  CHECK_INT_EQ(dt_device_event_synchronize(e, &err), 0);
  CHECK_INT_EQ(dt_device_stream_synchronize(s2, &err), 0);
  CHECK_INT_EQ(dt_device_synchronize(dev, &err), 0);
  for (int i = 0; i < 16; i++) CHECK_NEAR(x[i], 4.0, 0.0);
  dt_device_free(dev, x);
  dt_device_event_destroy(e);
  dt_device_stream_destroy(s2);
  dt_device_event_destroy(NULL);
  dt_device_stream_destroy(NULL);
}

/* Element (i, j) of op(M) for M with leading dimension ld. */
static double at(const float *m, int ld, dt_trans t, int i, int j) {
  return t == DT_TRANS ? m[(size_t)j * ld + i] : m[(size_t)i * ld + j];
}

static void test_gemm(dt_device_t *dev) {
  dt_rng_t rng;
  dt_rng_seed(&rng, 17);
  const int m = 7, n = 5, k = 9;
  for (int combo = 0; combo < 4; combo++) {
    const dt_trans ta = combo & 1 ? DT_TRANS : DT_NO_TRANS, tb = combo & 2 ? DT_TRANS : DT_NO_TRANS;
    /* op(A) (m, k), op(B) (k, n), with padded leading dimensions. */
    const int lda = (ta == DT_TRANS ? m : k) + 2, ldb = (tb == DT_TRANS ? k : n) + 1, ldc = n + 3;
    float a[16 * 16], b[16 * 16], c[16 * 16];
    for (int i = 0; i < 256; i++) {
      a[i] = 2.0f * dt_rng_uniform(&rng) - 1.0f;
      b[i] = 2.0f * dt_rng_uniform(&rng) - 1.0f;
      c[i] = 2.0f * dt_rng_uniform(&rng) - 1.0f;
    }
    double want[16 * 16], mag[16 * 16];
    const float alpha = 0.75f, beta = -0.5f;
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        double sum = 0.0, abs_sum = 0.0;
        for (int p = 0; p < k; p++) {
          const double t = at(a, lda, ta, i, p) * at(b, ldb, tb, p, j);
          sum += t, abs_sum += fabs(t);
        }
        want[i * ldc + j] = alpha * sum + beta * (double)c[i * ldc + j];
        mag[i * ldc + j] = fabs(alpha) * abs_sum + fabs(beta * (double)c[i * ldc + j]);
      }
    dt_device_gemm(dev->stream, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++)
        CHECK_NEAR(c[i * ldc + j], want[i * ldc + j], (k + 2) * FLT_EPSILON * mag[i * ldc + j]);
  }
}

static void test_strided_batched(dt_device_t *dev) {
  dt_rng_t rng;
  dt_rng_seed(&rng, 23);
  enum { COUNT = 3, M = 4, N = 6, K = 5, SA = M * K + 3, SB = K * N + 1, SC = M * N + 2 };
  float a[COUNT * SA], b[COUNT * SB], c1[COUNT * SC], c2[COUNT * SC];
  for (int i = 0; i < COUNT * SA; i++) a[i] = dt_rng_uniform(&rng);
  for (int i = 0; i < COUNT * SB; i++) b[i] = dt_rng_uniform(&rng);
  for (int i = 0; i < COUNT * SC; i++) c1[i] = c2[i] = dt_rng_uniform(&rng);
  dt_device_gemm_strided_batched(dev->stream, DT_NO_TRANS, DT_TRANS, M, N, K, 1.25f, a, K, SA, b,
                                 K, SB, 0.5f, c1, N, SC, COUNT);
  /* B^T of (N, K) rows is read from the first N * K floats of each batch entry. */
  for (int i = 0; i < COUNT; i++)
    dt_device_gemm(dev->stream, DT_NO_TRANS, DT_TRANS, M, N, K, 1.25f, a + i * SA, K, b + i * SB,
                   K, 0.5f, c2 + i * SC, N);
  CHECK(memcmp(c1, c2, sizeof c1) == 0);
}

static void test_rows_and_columns(dt_device_t *dev) {
  const float v[3] = {1.0f, -2.0f, 0.5f};
  float y[4 * 5];
  for (int i = 0; i < 20; i++) y[i] = 9.0f;
  dt_device_broadcast_rows(dev->stream, 4, 3, 5, v, y);
  for (int i = 0; i < 4; i++) {
    for (int j = 0; j < 3; j++) CHECK_NEAR(y[i * 5 + j], v[j], 0.0);
    for (int j = 3; j < 5; j++) CHECK_NEAR(y[i * 5 + j], 9.0, 0.0); /* past n: untouched */
  }
  const float a[3 * 2] = {1, 2, 3, 4, 5, 6};
  float sums[2] = {7, 7};
  dt_device_col_sums(dev->stream, 3, 2, a, sums);
  CHECK_NEAR(sums[0], 9.0, 0.0);
  CHECK_NEAR(sums[1], 12.0, 0.0);
}

/* A device with conv_blas never reserves workspace for the kernels' transposed kernel
 * tensor: only the column chunk. */
static void test_conv_option(void) {
  dt_device_t *plain = make(false), *blas = make(true);
  if (!plain || !blas) goto out;
  /* 3x3 over 16 channels to 32 filters: kh * kw * ic = 144, a multiple of 16. */
  const dt_conv_desc_t c = {.g = {.ih = 8, .iw = 8, .ic = 16, .oh = 8, .ow = 8, .oc = 32,
                                  .kh = 3, .kw = 3, .sh = 1, .sw = 1, .dh = 1, .dw = 1,
                                  .ph = 1, .pw = 1}};
  const size_t cols = 2 * 8 * 8 * 144;
  CHECK_INT_EQ(dt_device_conv_workspace(blas, &c, 2), cols);
  const size_t with_kernels = dt_device_conv_workspace(plain, &c, 2);
  CHECK(with_kernels == cols || with_kernels == cols + 144 * 32);
out:
  dt_device_destroy(plain);
  dt_device_destroy(blas);
}

static void test_unknown_kind(void) {
  dt_device_t *dev = (dt_device_t *)1;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_device_create(&(dt_device_options_t){.kind = (dt_device_kind)7}, &dev, &err),
               DT_ERR_ARG);
  CHECK(dev == NULL);
  CHECK_STR_CONTAINS(err.msg, "unknown device kind 7");
}

int main(void) {
  dt_device_t *dev = make(false);
  if (dev) {
    test_memory(dev);
    test_streams_and_events(dev);
    test_gemm(dev);
    test_strided_batched(dev);
    test_rows_and_columns(dev);
  }
  dt_device_destroy(dev);
  test_conv_option();
  test_unknown_kind();
  dt_device_destroy(NULL);
  return test_summary("test_device");
}
