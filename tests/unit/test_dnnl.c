/* The CPU backend's oneDNN path and bf16 (train.conv, train.precision), at the device
 * interface:
 *  - oneDNN convolutions (forward, bias, dW, db, dx) equal the im2col path on the same
 *    device within a float32 rounding tolerance, over strides, same/valid padding,
 *    dilation, batch 1, odd sizes, conv1d and the transposed convolution;
 *  - bf16 GEMMs and convolutions are within the bfloat16 rounding bound of fp32, and
 *    bit-identical run to run (skipped, with the reason printed, on a CPU without bf16);
 *  - bf16 with train.conv = im2col, and bf16 on a CPU without bf16 (the no_bf16 test
 *    switch pretends that), are errors that say why.
 *
 * Tolerances. fp32: im2col and oneDNN sum the same K products in different orders, each
 * within gamma_K * sum |terms| of the exact value (test_conv_naive.c), so they differ by
 * at most 2 (K + 4) FLT_EPSILON sum |terms|; sum |terms| is the convolution of |x| and
 * |w| (+ |b|), computed here on the im2col path. bf16: each input is rounded to 8
 * significant bits (relative error <= 2^-9), so a product is off by at most
 * (2 2^-9 + 2^-18) of itself, and the sum by about 2^-8 sum |terms| plus the float
 * rounding; we allow 2^-7 sum |terms| + 1e-6, twice that. A wrong tap or a weight in
 * the wrong layout is off by a whole term, far more. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "dtrain/device.h"
#include "dtrain/fpenv.h"
#include "dtrain/rng.h"
#include "test_util.h"

typedef struct {
  const char *name;
  int batch, ih, iw, ic, oc, kh, kw, sh, sw, dh, dw;
  bool same, transpose;
} shape_t;

static int extent(int n, int k, int d, int s, bool same, int *before) {
  const int ek = (k - 1) * d + 1;
  if (same) {
    const int out = (n + s - 1) / s, total = (out - 1) * s + ek - n;
    *before = total > 0 ? total / 2 : 0;
    return out;
  }
  *before = 0;
  return (n - ek) / s + 1;
}

static dt_conv_desc_t desc_of(const shape_t *s) {
  dt_conv_desc_t c = {.transpose = s->transpose};
  dt_conv_geom_t *g = &c.g;
  g->ih = s->ih, g->iw = s->iw, g->ic = s->ic, g->oc = s->oc;
  g->kh = s->kh, g->kw = s->kw, g->sh = s->sh, g->sw = s->sw, g->dh = s->dh, g->dw = s->dw;
  g->oh = extent(s->ih, s->kh, s->dh, s->sh, s->same, &g->ph);
  g->ow = extent(s->iw, s->kw, s->dw, s->sw, s->same, &g->pw);
  return c;
}

static const shape_t shapes[] = {
    {"5x5 same, fmnist-like", 4, 14, 14, 32, 64, 5, 5, 1, 1, 1, 1, true, false},
    {"3x3 valid, stride 2, odd", 3, 11, 9, 3, 5, 3, 3, 2, 2, 1, 1, false, false},
    {"3x2 same, stride 2x3", 2, 10, 13, 4, 7, 3, 2, 2, 3, 1, 1, true, false},
    {"3x3 dilation 2, batch 1", 1, 12, 12, 6, 16, 3, 3, 1, 1, 2, 2, false, false},
    {"1x1 identity", 2, 7, 7, 16, 32, 1, 1, 1, 1, 1, 1, false, false},
    {"conv1d k 5 same stride 2", 3, 1, 29, 5, 9, 1, 5, 1, 2, 1, 1, true, false},
    {"transposed 3x3 stride 2", 2, 9, 9, 6, 4, 3, 3, 2, 2, 1, 1, false, true},
    {"transposed 4x4 same stride 2", 1, 8, 8, 5, 3, 4, 4, 2, 2, 1, 1, true, true},
};

/* Sizes of the layer's input and output (the transposed layer's go the other way). */
static size_t big_size(const shape_t *s, const dt_conv_desc_t *c) {
  return (size_t)s->batch * c->g.ih * c->g.iw * c->g.ic;
}
static size_t small_size(const shape_t *s, const dt_conv_desc_t *c) {
  return (size_t)s->batch * c->g.oh * c->g.ow * c->g.oc;
}

typedef struct {
  float *y, *dw, *db, *dx;
} result_t;

static void result_free(result_t *r) {
  free(r->y), free(r->dw), free(r->db), free(r->dx);
}

/* One forward and backward of the layer on dev with the given math. */
static int run_conv(dt_device_t *dev, const dt_device_math_t *m, const shape_t *s,
                    const float *x, const float *w, const float *b, const float *dy,
                    result_t *r) {
  dt_error_t err = {0};
  if (dt_device_set_math(dev, m, &err)) {
    fprintf(stderr, "set_math: %s\n", err.msg);
    return -1;
  }
  const dt_conv_desc_t c = desc_of(s);
  const size_t in = s->transpose ? small_size(s, &c) : big_size(s, &c);
  const size_t out = s->transpose ? big_size(s, &c) : small_size(s, &c);
  const size_t wsize = (size_t)s->kh * s->kw * s->ic * s->oc;
  const int nb = s->transpose ? s->ic : s->oc;
  const size_t ws = dt_device_conv_workspace(dev, &c, s->batch);
  float *work = calloc(ws + 1, sizeof(float));
  r->y = calloc(out, sizeof(float)), r->dw = calloc(wsize, sizeof(float));
  r->db = calloc((size_t)nb, sizeof(float)), r->dx = calloc(in, sizeof(float));
  dt_device_conv_forward(dev->stream, &c, s->batch, x, w, b, r->y, work);
  dt_device_conv_backward(dev->stream, &c, s->batch, x, w, dy, r->dw, r->db, r->dx, work);
  free(work);
  return 0;
}

static void fill(dt_rng_t *rng, float *v, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] = 2.0f * dt_rng_uniform(rng) - 1.0f;
}
static float *absolute(const float *v, size_t n) {
  float *a = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) a[i] = fabsf(v[i]);
  return a;
}

/* Every a[i] within rel * bound[i] + abs_tol of e[i]; reports the worst one. */
static void check_close(const char *what, const char *name, const float *a, const float *e,
                        const float *bound, double rel, double abs_tol, size_t n) {
  size_t worst = 0;
  double excess = -1.0;
  for (size_t i = 0; i < n; i++) {
    const double over = fabs((double)a[i] - e[i]) - (rel * bound[i] + abs_tol);
    if (over > excess) excess = over, worst = i;
  }
  if (excess <= 0) {
    test_passed_count++;
    return;
  }
  test_failed_count++;
  fprintf(stderr, "%s, %s: element %zu is %.9g, expected %.9g (tolerance %.3g)\n", name, what,
          worst, a[worst], e[worst], rel * bound[worst] + abs_tol);
}

/* oneDNN (fp32, and bf16 when the CPU has it) against im2col, for one shape. */
static void test_shape(dt_device_t *dev, const shape_t *s, bool bf16) {
  dt_rng_t rng;
  dt_rng_seed(&rng, 17);
  const dt_conv_desc_t c = desc_of(s);
  const size_t in = s->transpose ? small_size(s, &c) : big_size(s, &c);
  const size_t out = s->transpose ? big_size(s, &c) : small_size(s, &c);
  const size_t wsize = (size_t)s->kh * s->kw * s->ic * s->oc;
  const int nb = s->transpose ? s->ic : s->oc;
  float *x = malloc(in * sizeof(float)), *w = malloc(wsize * sizeof(float));
  float *b = malloc((size_t)nb * sizeof(float)), *dy = malloc(out * sizeof(float));
  fill(&rng, x, in), fill(&rng, w, wsize), fill(&rng, b, (size_t)nb), fill(&rng, dy, out);
  float *ax = absolute(x, in), *aw = absolute(w, wsize), *ab = absolute(b, (size_t)nb);
  float *ady = absolute(dy, out);

  const dt_device_math_t im2col = {.conv = DT_CONV_IM2COL};
  const dt_device_math_t onednn = {.conv = DT_CONV_ONEDNN};
  result_t ref = {0}, abs_ref = {0}, got = {0};
  CHECK(run_conv(dev, &im2col, s, x, w, b, dy, &ref) == 0);
  /* The sums of |terms|: the same convolutions of the absolute values. */
  CHECK(run_conv(dev, &im2col, s, ax, aw, ab, ady, &abs_ref) == 0);
  CHECK(run_conv(dev, &onednn, s, x, w, b, dy, &got) == 0);
  /* Terms per output value: forward kh kw ic (oc for the transposed layer), dW the
   * positions times the batch, dx kh kw oc. */
  const double kf = (double)s->kh * s->kw * (s->transpose ? s->oc : s->ic);
  const double kw_ = (double)s->batch * c.g.oh * c.g.ow;
  const double kx = (double)s->kh * s->kw * (s->transpose ? s->ic : s->oc);
  check_close("fp32 y", s->name, got.y, ref.y, abs_ref.y, 2 * (kf + 4) * FLT_EPSILON, 0, out);
  check_close("fp32 dW", s->name, got.dw, ref.dw, abs_ref.dw, 2 * (kw_ + 4) * FLT_EPSILON, 0,
              wsize);
  check_close("fp32 db", s->name, got.db, ref.db, abs_ref.db, 2 * (kw_ + 4) * FLT_EPSILON, 0,
              (size_t)nb);
  check_close("fp32 dx", s->name, got.dx, ref.dx, abs_ref.dx, 2 * (kx + 4) * FLT_EPSILON, 0, in);
  result_free(&got);

  if (bf16) {
    const dt_device_math_t half = {.conv = DT_CONV_ONEDNN, .precision = DT_PRECISION_BF16};
    result_t h1 = {0}, h2 = {0};
    CHECK(run_conv(dev, &half, s, x, w, b, dy, &h1) == 0);
    CHECK(run_conv(dev, &half, s, x, w, b, dy, &h2) == 0);
    const double rel = 1.0 / 128;
    check_close("bf16 y", s->name, h1.y, ref.y, abs_ref.y, rel, 1e-6, out);
    check_close("bf16 dW", s->name, h1.dw, ref.dw, abs_ref.dw, rel, 1e-6, wsize);
    check_close("bf16 dx", s->name, h1.dx, ref.dx, abs_ref.dx, rel, 1e-6, in);
    CHECK(memcmp(h1.y, h2.y, out * sizeof(float)) == 0);
    CHECK(memcmp(h1.dw, h2.dw, wsize * sizeof(float)) == 0);
    CHECK(memcmp(h1.dx, h2.dx, in * sizeof(float)) == 0);
    /* Rounding to bf16 does change something (the path is really taken). */
    CHECK(memcmp(h1.y, ref.y, out * sizeof(float)) != 0);
    result_free(&h1), result_free(&h2);
  }
  result_free(&ref), result_free(&abs_ref);
  free(x), free(w), free(b), free(dy), free(ax), free(aw), free(ab), free(ady);
}

/* C = alpha op(A) op(B) + beta C in bf16 against fp32 (OpenBLAS), with the bound from
 * |A| |B| (+ |beta C|). */
static void test_gemm_bf16(dt_device_t *dev) {
  struct {
    dt_trans ta, tb;
    int m, n, k;
    float alpha, beta;
  } cases[] = {{DT_NO_TRANS, DT_NO_TRANS, 64, 100, 300, 1.0f, 0.0f},
               {DT_TRANS, DT_NO_TRANS, 37, 20, 64, 1.0f, 1.0f},
               {DT_NO_TRANS, DT_TRANS, 5, 33, 17, 0.5f, 0.0f},
               {DT_TRANS, DT_TRANS, 1, 7, 9, 1.0f, 0.0f}};
  dt_rng_t rng;
  dt_rng_seed(&rng, 5);
  dt_error_t err = {0};
  for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
    const int m = cases[t].m, n = cases[t].n, k = cases[t].k;
    const bool ta = cases[t].ta == DT_TRANS, tb = cases[t].tb == DT_TRANS;
    /* Row-major with padded leading dimensions, so the strides are tested too. */
    const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    const size_t asz = (size_t)(ta ? k : m) * lda, bsz = (size_t)(tb ? n : k) * ldb;
    const size_t csz = (size_t)m * ldc;
    float *a = malloc(asz * 4), *b = malloc(bsz * 4), *c0 = malloc(csz * 4);
    fill(&rng, a, asz), fill(&rng, b, bsz), fill(&rng, c0, csz);
    float *aa = absolute(a, asz), *ab = absolute(b, bsz), *ac = absolute(c0, csz);
    float *ref = malloc(csz * 4), *bound = malloc(csz * 4), *h1 = malloc(csz * 4),
          *h2 = malloc(csz * 4);
    memcpy(ref, c0, csz * 4), memcpy(bound, ac, csz * 4), memcpy(h1, c0, csz * 4),
        memcpy(h2, c0, csz * 4);
    const float al = cases[t].alpha, be = cases[t].beta;
    CHECK(dt_device_set_math(dev, &(dt_device_math_t){0}, &err) == 0);
    dt_device_gemm(dev->stream, cases[t].ta, cases[t].tb, m, n, k, al, a, lda, b, ldb, be, ref,
                   ldc);
    dt_device_gemm(dev->stream, cases[t].ta, cases[t].tb, m, n, k, fabsf(al), aa, lda, ab, ldb,
                   fabsf(be), bound, ldc);
    CHECK(dt_device_set_math(dev, &(dt_device_math_t){.precision = DT_PRECISION_BF16}, &err) ==
          0);
    dt_device_gemm(dev->stream, cases[t].ta, cases[t].tb, m, n, k, al, a, lda, b, ldb, be, h1,
                   ldc);
    dt_device_gemm(dev->stream, cases[t].ta, cases[t].tb, m, n, k, al, a, lda, b, ldb, be, h2,
                   ldc);
    char name[64];
    snprintf(name, sizeof name, "gemm %c%c %dx%dx%d", ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k);
    check_close("bf16 C", name, h1, ref, bound, 1.0 / 128, 1e-6, csz);
    CHECK(memcmp(h1, h2, csz * 4) == 0);
    CHECK(memcmp(h1, ref, csz * 4) != 0);
    /* Padding between rows of C is not written. */
    for (int i = 0; i < m; i++)
      for (int j = n; j < ldc; j++) CHECK(h1[(size_t)i * ldc + j] == c0[(size_t)i * ldc + j]);
    free(a), free(b), free(c0), free(aa), free(ab), free(ac), free(ref), free(bound), free(h1),
        free(h2);
  }
  CHECK(dt_device_set_math(dev, &(dt_device_math_t){0}, &err) == 0);
}

/* The bf16 copies of parameters (dt_device_params_begin): a dense layer's forward
 * (x W) and backward-data (dy W^T) GEMMs share one copy of W per pass. A GEMM on a
 * named buffer gives the same bits as on unnamed memory; a new params_begin picks up
 * changed weights; without one the copy of the pass is used (the cache is real); a
 * buffer that is forgotten (params_end) is converted on every use again. */
static void test_param_copies(dt_device_t *dev) {
  enum { ROWS = 16, IN = 40, UNITS = 24, PAD = 3 };
  const int ldw = UNITS + PAD; /* W is a sub-matrix of the buffer, with padded rows */
  const size_t wsz = (size_t)IN * ldw + 8;
  dt_rng_t rng;
  dt_rng_seed(&rng, 9);
  dt_error_t err = {0};
  float *params = malloc(wsz * 4), *plain = malloc(wsz * 4);
  float *x = malloc(ROWS * IN * 4), *dy = malloc(ROWS * UNITS * 4);
  float y_ref[ROWS * UNITS], y[ROWS * UNITS], dx_ref[ROWS * IN], dx[ROWS * IN];
  fill(&rng, params, wsz), fill(&rng, x, ROWS * IN), fill(&rng, dy, ROWS * UNITS);
  float *w = params + 8; /* not at the buffer's start */
  CHECK(dt_device_set_math(dev, &(dt_device_math_t){.precision = DT_PRECISION_BF16}, &err) == 0);
#define FWD(W, out) \
  dt_device_gemm(dev->stream, DT_NO_TRANS, DT_NO_TRANS, ROWS, UNITS, IN, 1.0f, x, IN, W, ldw, \
                 0.0f, out, UNITS)
#define BWD(W, out) \
  dt_device_gemm(dev->stream, DT_NO_TRANS, DT_TRANS, ROWS, IN, UNITS, 1.0f, dy, UNITS, W, ldw, \
                 0.0f, out, IN)
  memcpy(plain, params, wsz * 4);
  FWD(plain + 8, y_ref), BWD(plain + 8, dx_ref);
  dt_device_params_begin(dev, params, wsz);
  FWD(w, y), BWD(w, dx);
  CHECK(memcmp(y, y_ref, sizeof y) == 0);
  CHECK(memcmp(dx, dx_ref, sizeof dx) == 0);
  /* Changed weights and a new pass: the new values are used. */
  for (size_t i = 0; i < wsz; i++) params[i] = plain[i] = -2.0f * params[i];
  FWD(plain + 8, y_ref), BWD(plain + 8, dx_ref);
  dt_device_params_begin(dev, params, wsz);
  FWD(w, y), BWD(w, dx);
  CHECK(memcmp(y, y_ref, sizeof y) == 0);
  CHECK(memcmp(dx, dx_ref, sizeof dx) == 0);
  /* Changed without a new pass: the pass's copy still answers, in both GEMMs. */
  for (size_t i = 0; i < wsz; i++) params[i] = 0.5f * params[i];
  FWD(w, y), BWD(w, dx);
  CHECK(memcmp(y, y_ref, sizeof y) == 0);
  CHECK(memcmp(dx, dx_ref, sizeof dx) == 0);
  /* Forgotten: converted on every use, so the halved weights halve the products. */
  dt_device_params_end(dev, params);
  FWD(w, y), BWD(w, dx);
  for (int i = 0; i < ROWS * UNITS; i++) CHECK(y[i] == 0.5f * y_ref[i]);
  for (int i = 0; i < ROWS * IN; i++) CHECK(dx[i] == 0.5f * dx_ref[i]);
#undef FWD
#undef BWD
  CHECK(dt_device_set_math(dev, &(dt_device_math_t){0}, &err) == 0);
  free(params), free(plain), free(x), free(dy);
}

static void test_errors(void) {
  dt_device_t *dev;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_device_create(&(dt_device_options_t){.cpu.no_bf16 = true}, &dev, &err), 0);
  const dt_device_math_t half = {.precision = DT_PRECISION_BF16};
  CHECK_INT_EQ(dt_device_set_math(dev, &half, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "bf16 needs a CPU with bfloat16 arithmetic");
  CHECK_STR_CONTAINS(err.msg, "DT_TEST_NO_BF16");
  /* fp32 still works on that device. */
  CHECK_INT_EQ(dt_device_set_math(dev, &(dt_device_math_t){0}, &err), 0);
  dt_device_destroy(dev);

  CHECK_INT_EQ(dt_device_create(NULL, &dev, &err), 0);
  err = (dt_error_t){0};
  const dt_device_math_t mixed = {.conv = DT_CONV_IM2COL, .precision = DT_PRECISION_BF16};
  const int rc = dt_device_set_math(dev, &mixed, &err);
  CHECK_INT_EQ(rc, DT_ERR_CONFIG);
  CHECK(strstr(err.msg, "train.conv = auto or onednn") || strstr(err.msg, "bfloat16 arithmetic"));
  dt_device_destroy(dev);
}

/* oneDNN computes on OpenMP's threads (Debian builds it on libgomp, which keeps its
 * threads for later parallel regions): after set_threads, each of them other than the
 * caller flushes denormals, as every other computing thread does (issue 16). */
static void test_openmp_threads_flush(dt_device_t *dev) {
  dt_error_t err = {0};
  CHECK(dt_device_set_threads(dev, 2, &err) == 0);
  int flushed[2] = {-1, -1};
#pragma omp parallel num_threads(2)
  flushed[omp_get_thread_num() & 1] = dt_fp_denormals_flushed();
  CHECK_INT_EQ(flushed[1], 1);
}

int main(void) {
  dt_device_t *dev;
  dt_error_t err = {0};
  if (dt_device_create(NULL, &dev, &err)) {
    fprintf(stderr, "device: %s\n", err.msg);
    return 1;
  }
  const dt_device_math_t probe = {.precision = DT_PRECISION_BF16};
  const bool bf16 = dt_device_set_math(dev, &probe, &err) == 0;
  if (!bf16) printf("SKIP the bf16 checks: %s\n", err.msg);
  for (int threads = 1; threads <= 2; threads++) {
    CHECK(dt_device_set_threads(dev, threads, &err) == 0);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) test_shape(dev, &shapes[i], bf16);
    if (bf16) test_gemm_bf16(dev);
    if (bf16) test_param_copies(dev);
  }
  test_openmp_threads_flush(dev);
  dt_device_destroy(dev);
  test_errors();
  return test_summary("test_dnnl");
}
