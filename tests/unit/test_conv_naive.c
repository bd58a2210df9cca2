/* conv2d, conv1d and conv2d_transpose against direct loops over the definition, on many
 * random shapes, strides, paddings and dilations: forward, and backward (kernel, bias
 * and input gradients). Every case runs twice, once on the device's AVX-512 kernels (where
 * the CPU has them) and once on a device with conv_blas set (OpenBLAS only). Also max/average
 * pooling and the global pools against their definitions (the gradient checks cannot
 * see a wrong but self-consistent forward, such as a wrong divisor), and the shape and
 * config errors of the convolution, pooling and reshape layers.
 *
 * Tolerance. The reference is computed in double from the same float inputs, so the
 * only error is the float32 rounding of the layer's sums. For a sum of K products in any
 * order (blocked GEMM, FMA or not), |computed - exact| <= gamma_K * sum |x_i w_i| with
 * gamma_K = K u / (1 - K u), u = 2^-24 (Higham, Accuracy and Stability of Numerical
 * Algorithms, section 3.1); the bias (or the col2im accumulation of partial sums) adds a
 * few more roundings. We allow (K + 4) * FLT_EPSILON * sum |terms|, twice that bound with
 * margin, where K is the number of terms of the sum. A wrong tap, padding offset or
 * stride gives an error of the size of a whole term, about sum |terms| / K, which for
 * K <= 500 is over 30 times this tolerance. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/layer.h"
#include "dtrain/model.h"
#include "dtrain/rng.h"
#include "device_util.h"
#include "test_util.h"

static int irand(dt_rng_t *r, int lo, int hi) {
  return lo + (int)dt_rng_below(r, (uint64_t)(hi - lo + 1));
}
static float frand(dt_rng_t *r) { return 2.0f * dt_rng_uniform(r) - 1.0f; }

/* One convolution case. For conv1d, h = kh = sh = dh = 1. */
typedef struct {
  int kind; /* 0 conv2d, 1 conv1d, 2 conv2d_transpose */
  int batch, h, w, c, f;
  int kh, kw, sh, sw, dh, dw;
  int pad; /* 0 valid, 1 same, 2 causal (conv1d) */
  bool bias;
} conv_case_t;

static const char *const kind_names[] = {"conv2d", "conv1d", "conv2d_transpose"};
static const char *const pad_names[] = {"valid", "same", "causal"};

/* Keras' output extent and padding before for a convolution over n (kernel extent k
 * undilated, dilation d, stride s). */
static int conv_extent(int n, int k, int d, int s, int pad, int *before) {
  const int ek = (k - 1) * d + 1;
  if (pad == 1) {
    int out = (n + s - 1) / s, total = (out - 1) * s + ek - n;
    *before = total > 0 ? total / 2 : 0;
    return out;
  }
  if (pad == 2) {
    *before = ek - 1;
    return (n - 1) / s + 1;
  }
  *before = 0;
  return n >= ek ? (n - ek) / s + 1 : 0;
}

/* Keras' output extent of a transposed convolution, and the padding before of the
 * convolution it is the gradient of. */
static int transpose_extent(int n, int k, int d, int s, int pad, int *before) {
  const int ek = (k - 1) * d + 1;
  const int out = pad == 1 ? n * s : n * s + (ek > s ? ek - s : 0);
  int total = (n - 1) * s + ek - out;
  *before = pad == 1 && total > 0 ? total / 2 : 0;
  return out;
}

/* The layer, then a flatten so that the model's output fits the loss. */
static void case_text(const conv_case_t *t, char *buf, size_t cap) {
  static const char flatten[] = "[layer.2]\ntype = flatten\n";
  if (t->kind == 1)
    snprintf(buf, cap,
             "[model]\nloss = mse\n[layer.1]\ntype = conv1d\nfilters = %d\nkernel_size = %d\n"
             "strides = %d\ndilation_rate = %d\npadding = %s\nuse_bias = %s\n%s",
             t->f, t->kw, t->sw, t->dw, pad_names[t->pad], t->bias ? "true" : "false", flatten);
  else
    snprintf(buf, cap,
             "[model]\nloss = mse\n[layer.1]\ntype = %s\nfilters = %d\nkernel_size = %d,%d\n"
             "strides = %d,%d\ndilation_rate = %d,%d\npadding = %s\nuse_bias = %s\n%s",
             kind_names[t->kind], t->f, t->kh, t->kw, t->sh, t->sw, t->dh, t->dw,
             pad_names[t->pad], t->bias ? "true" : "false", flatten);
}

static void case_label(const conv_case_t *t, char *buf, size_t cap) {
  snprintf(buf, cap,
           "%s batch %d in (%d,%d,%d) filters %d kernel %dx%d strides %dx%d dilation %dx%d %s%s",
           kind_names[t->kind], t->batch, t->h, t->w, t->c, t->f, t->kh, t->kw, t->sh, t->sw,
           t->dh, t->dw, pad_names[t->pad], t->bias ? "" : " no bias");
}

/* |got - want| <= tol, counted once per call; prints the first few failures. */
static int mismatches;
static void compare(const char *label, const char *what, const float *got, const double *want,
                    const double *mag, size_t n, int terms) {
  const double tol_per_mag = (terms + 4) * (double)FLT_EPSILON;
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    const double tol = tol_per_mag * mag[i] + 1e-30;
    if (fabs(got[i] - want[i]) > tol) {
      ok = false;
      if (mismatches++ < 10)
        fprintf(stderr, "%s: %s[%zu] = %.9g, reference %.9g (tolerance %.3g)\n", label, what, i,
                got[i], want[i], tol);
    }
  }
  CHECK(ok);
}

/* Runs one case: builds the layer, checks its output shape, then forward and backward
 * against the reference loops. */
static void run_case(const conv_case_t *t, dt_rng_t *rng, bool check_backward) {
  char text[512], label[256], s1[64], s2[64];
  case_text(t, text, sizeof text);
  case_label(t, label, sizeof label);
  const bool one_d = t->kind == 1, tr = t->kind == 2;
  int oh, ow, ph, pw;
  if (tr) {
    oh = transpose_extent(t->h, t->kh, t->dh, t->sh, t->pad, &ph);
    ow = transpose_extent(t->w, t->kw, t->dw, t->sw, t->pad, &pw);
  } else {
    oh = conv_extent(t->h, t->kh, t->dh, t->sh, t->pad, &ph);
    ow = conv_extent(t->w, t->kw, t->dw, t->sw, t->pad, &pw);
  }
  dt_shape_t in = one_d ? (dt_shape_t){2, {t->w, t->c, 1, 1}} : dt_shape_3d(t->h, t->w, t->c);
  dt_config_t *cfg = dt_config_new();
  dt_model_t m;
  dt_error_t err = {0};
  int rc = dt_config_load_string(cfg, text, "test", &err);
  if (!rc) rc = dt_model_build(&m, test_device(), cfg, in, &err);
  if (!rc) rc = dt_model_prepare(&m, t->batch, &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) {
    fprintf(stderr, "%s: %s\n", label, err.msg);
    dt_model_free(&m);
    dt_config_free(cfg);
    return;
  }
  dt_layer_t *l = &m.layers[0];
  dt_shape_t want = one_d ? (dt_shape_t){2, {ow, t->f, 1, 1}} : dt_shape_3d(oh, ow, t->f);
  if (strcmp(dt_shape_str(&l->out_shape, s1, sizeof s1), dt_shape_str(&want, s2, sizeof s2))) {
    CHECK(false);
    fprintf(stderr, "%s: output shape %s, expected %s\n", label, s1, s2);
    dt_model_free(&m);
    dt_config_free(cfg);
    return;
  }
  CHECK_INT_EQ(l->nparams, t->bias ? 2 : 1);

  /* Kernel (kh, kw, ci, co): for conv2d ci = c, co = f; for the transpose ci = f, co = c. */
  const int ci = tr ? t->f : t->c, co = tr ? t->c : t->f;
  const size_t nin = (size_t)t->batch * t->h * t->w * t->c;
  const size_t nout = (size_t)t->batch * oh * ow * t->f;
  const size_t nk = (size_t)t->kh * t->kw * ci * co;
  float *x = m.acts[0], *wk = l->w[0], *b = t->bias ? l->w[1] : NULL;
  for (size_t i = 0; i < nin; i++) x[i] = frand(rng);
  for (size_t i = 0; i < nk; i++) wk[i] = frand(rng);
  for (int i = 0; b && i < t->f; i++) b[i] = frand(rng);
#define KW(ky, kx, a, o) wk[(((size_t)(ky) * t->kw + (kx)) * ci + (a)) * co + (o)]
#define XI(n, y, xx, cc) (((size_t)(n) * t->h + (y)) * t->w + (xx)) * t->c + (cc)
#define YI(n, y, xx, ff) (((size_t)(n) * oh + (y)) * ow + (xx)) * t->f + (ff)

  /* Reference forward, visiting every (output, input, tap) triple the definition links. */
  double *ref = calloc(nout, sizeof(double)), *mag = calloc(nout, sizeof(double));
  int *terms = calloc(nout, sizeof(int));
  for (int n = 0; n < t->batch; n++)
    for (int y = 0; y < (tr ? t->h : oh); y++)
      for (int xx = 0; xx < (tr ? t->w : ow); xx++)
        for (int ky = 0; ky < t->kh; ky++)
          for (int kx = 0; kx < t->kw; kx++) {
            /* conv: (y, xx) is the output, the tap reads input (iy, ix). transpose: (y, xx)
             * is the input, the tap writes output (iy, ix). */
            const int iy = y * t->sh - ph + ky * t->dh, ix = xx * t->sw - pw + kx * t->dw;
            if (iy < 0 || ix < 0 || iy >= (tr ? oh : t->h) || ix >= (tr ? ow : t->w)) continue;
            for (int f = 0; f < t->f; f++)
              for (int c = 0; c < t->c; c++) {
                double v;
                size_t o;
                if (!tr) {
                  v = (double)x[XI(n, iy, ix, c)] * KW(ky, kx, c, f);
                  o = YI(n, y, xx, f);
                } else {
                  v = (double)x[XI(n, y, xx, c)] * KW(ky, kx, f, c);
                  o = YI(n, iy, ix, f);
                }
                ref[o] += v;
                mag[o] += fabs(v);
                terms[o]++;
              }
          }
  int max_terms = 0;
  for (size_t o = 0; o < nout; o++) {
    if (b) {
      ref[o] += b[o % t->f];
      mag[o] += fabs(b[o % t->f]);
    }
    max_terms = terms[o] > max_terms ? terms[o] : max_terms;
  }
  dt_model_forward(&m, t->batch, false, NULL);
  const float *y = m.acts[1];
  compare(label, "y", y, ref, mag, nout, max_terms + 1);

  if (check_backward) {
    float *dy = malloc(sizeof(float) * nout), *dx = malloc(sizeof(float) * nin);
    for (size_t i = 0; i < nout; i++) dy[i] = frand(rng);
    double *rdw = calloc(nk, sizeof(double)), *mdw = calloc(nk, sizeof(double));
    double *rdx = calloc(nin, sizeof(double)), *mdx = calloc(nin, sizeof(double));
    double *rdb = calloc((size_t)t->f, sizeof(double)), *mdb = calloc((size_t)t->f, sizeof(double));
    int max_dx = 0, max_dw = 0;
    int *tdx = calloc(nin, sizeof(int)), *tdw = calloc(nk, sizeof(int));
    for (int n = 0; n < t->batch; n++)
      for (int yy = 0; yy < (tr ? t->h : oh); yy++)
        for (int xx = 0; xx < (tr ? t->w : ow); xx++)
          for (int ky = 0; ky < t->kh; ky++)
            for (int kx = 0; kx < t->kw; kx++) {
              const int iy = yy * t->sh - ph + ky * t->dh, ix = xx * t->sw - pw + kx * t->dw;
              if (iy < 0 || ix < 0 || iy >= (tr ? oh : t->h) || ix >= (tr ? ow : t->w)) continue;
              for (int f = 0; f < t->f; f++)
                for (int c = 0; c < t->c; c++) {
                  const size_t xi = tr ? XI(n, yy, xx, c) : XI(n, iy, ix, c);
                  const size_t yi = tr ? YI(n, iy, ix, f) : YI(n, yy, xx, f);
                  const size_t wi = tr ? (((size_t)ky * t->kw + kx) * ci + f) * co + c
                                       : (((size_t)ky * t->kw + kx) * ci + c) * co + f;
                  const double gw = (double)x[xi] * dy[yi], gx = (double)wk[wi] * dy[yi];
                  rdw[wi] += gw, mdw[wi] += fabs(gw), tdw[wi]++;
                  rdx[xi] += gx, mdx[xi] += fabs(gx), tdx[xi]++;
                }
            }
    for (size_t i = 0; i < nk; i++) max_dw = tdw[i] > max_dw ? tdw[i] : max_dw;
    for (size_t i = 0; i < nin; i++) max_dx = tdx[i] > max_dx ? tdx[i] : max_dx;
    for (size_t i = 0; i < nout; i++) {
      rdb[i % t->f] += dy[i];
      mdb[i % t->f] += fabs(dy[i]);
    }
    /* Poisoned so that a gradient the layer does not write shows. */
    for (size_t i = 0; i < nin; i++) dx[i] = NAN;
    for (size_t i = 0; i < nk; i++) l->g[0][i] = NAN;
    const dt_exec_ctx_t ctx = dt_model_exec_ctx(&m, false, NULL);
    l->ops->backward(l, &ctx, t->batch, m.acts[0], m.acts[1], dy, dx);
    compare(label, "dkernel", l->g[0], rdw, mdw, nk, max_dw);
    compare(label, "dx", dx, rdx, mdx, nin, max_dx);
    if (b) compare(label, "dbias", l->g[1], rdb, mdb, (size_t)t->f, (int)(nout / t->f));
    free(dy), free(dx), free(rdw), free(mdw), free(rdx), free(mdx), free(rdb), free(mdb);
    free(tdx), free(tdw);
  }
#undef KW
#undef XI
#undef YI
  free(ref), free(mag), free(terms);
  dt_model_free(&m);
  dt_config_free(cfg);
}

/* A random case of the given kind whose output is not empty. Filter counts include
 * multiples of 16 so that the kernels' 16-, 32- and 64-wide column blocks all run. */
static conv_case_t random_case(dt_rng_t *rng, int kind) {
  static const int filters[] = {1, 2, 3, 5, 7, 16, 32, 48, 64, 80};
  conv_case_t t;
  for (;;) {
    memset(&t, 0, sizeof t);
    t.kind = kind;
    t.batch = irand(rng, 1, 3);
    t.h = kind == 1 ? 1 : irand(rng, 1, 9);
    t.w = irand(rng, 1, 11);
    t.c = irand(rng, 1, 4) * (dt_rng_below(rng, 3) == 0 ? 4 : 1);
    t.f = filters[dt_rng_below(rng, sizeof filters / sizeof filters[0])];
    t.kh = kind == 1 ? 1 : irand(rng, 1, 4);
    t.kw = irand(rng, 1, 5);
    t.sh = kind == 1 ? 1 : irand(rng, 1, 3);
    t.sw = irand(rng, 1, 3);
    t.dh = kind == 1 ? 1 : irand(rng, 1, 2);
    t.dw = irand(rng, 1, 3);
    t.pad = irand(rng, 0, kind == 1 ? 2 : 1);
    t.bias = dt_rng_below(rng, 4) != 0;
    if (kind == 2) break; /* a transposed convolution's output is never empty */
    int p;
    if (conv_extent(t.h, t.kh, t.dh, t.sh, t.pad, &p) > 0 &&
        conv_extent(t.w, t.kw, t.dw, t.sw, t.pad, &p) > 0)
      break;
  }
  return t;
}

static void test_random(bool blas) {
  dt_rng_t rng;
  dt_rng_seed(&rng, blas ? 202 : 201);
  const int before = test_failed_count;
  for (int kind = 0; kind < 3; kind++)
    for (int i = 0; i < 150; i++) {
      conv_case_t t = random_case(&rng, kind);
      run_case(&t, &rng, i % 3 == 0);
    }
  printf("random cases (%s): %s\n", blas ? "OpenBLAS" : "default path",
         test_failed_count == before ? "all match" : "MISMATCHES");
}

/* The Fashion-MNIST CNN's convolutions and a few hand-picked edge cases. */
static void test_fixed(void) {
  dt_rng_t rng;
  dt_rng_seed(&rng, 7);
  const conv_case_t cases[] = {
      /* kind batch h w c f kh kw sh sw dh dw pad bias */
      {0, 2, 28, 28, 1, 32, 5, 5, 1, 1, 1, 1, 1, true},
      {0, 2, 14, 14, 32, 64, 5, 5, 1, 1, 1, 1, 1, true},
      {0, 3, 1, 1, 3, 16, 1, 1, 1, 1, 1, 1, 0, true},   /* 1x1: the identity column path */
      {0, 2, 5, 4, 16, 32, 1, 1, 1, 1, 1, 1, 0, false}, /* 1x1 with kc % 16 == 0 */
      {2, 2, 3, 4, 32, 16, 1, 1, 1, 1, 1, 1, 0, true},  /* 1x1 transpose */
      {0, 1, 4, 4, 2, 3, 4, 4, 1, 1, 1, 1, 0, true},    /* kernel = input: one output */
      {0, 2, 3, 3, 1, 2, 3, 3, 2, 2, 2, 2, 1, true},    /* dilated kernel larger than input, same */
      {2, 2, 3, 3, 2, 5, 2, 2, 3, 3, 1, 1, 0, true},    /* transpose with kernel < stride */
      {2, 2, 4, 5, 3, 16, 3, 3, 2, 2, 1, 1, 1, true},
      {2, 1, 4, 4, 16, 4, 3, 3, 2, 2, 1, 1, 0, true},   /* transpose, kc = 9 * 4 */
      {1, 2, 1, 20, 3, 16, 1, 4, 1, 1, 1, 2, 2, true},  /* causal dilated conv1d */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], &rng, true);
}

/* Pooling forward against the definition: a max or mean over the window clipped to the
 * image (padded positions take no part, TensorFlow's rule), on random shapes, pool
 * sizes, strides and paddings; then the global pools. A max is exact; a mean of K values
 * is allowed (K + 2) FLT_EPSILON sum |x|, as for the convolutions. */
static void test_pools(void) {
  dt_rng_t rng;
  dt_rng_seed(&rng, 301);
  const int before = test_failed_count;
  for (int i = 0; i < 200; i++) {
    const bool is_max = i % 2 == 0, same = (i / 2) % 2 == 1;
    const int batch = irand(&rng, 1, 3), h = irand(&rng, 1, 9), w = irand(&rng, 1, 9),
              c = irand(&rng, 1, 5), kh = irand(&rng, 1, 3), kw = irand(&rng, 1, 3),
              sh = irand(&rng, 1, 3), sw = irand(&rng, 1, 3);
    int ph, pw;
    const int oh = conv_extent(h, kh, 1, sh, same, &ph), ow = conv_extent(w, kw, 1, sw, same, &pw);
    if (oh < 1 || ow < 1) continue;
    char text[256], label[160];
    snprintf(text, sizeof text,
             "[model]\nloss = mse\n[layer.1]\ntype = %s\npool_size = %d,%d\nstrides = %d,%d\n"
             "padding = %s\n[layer.2]\ntype = flatten\n",
             is_max ? "max_pool2d" : "avg_pool2d", kh, kw, sh, sw, same ? "same" : "valid");
    snprintf(label, sizeof label, "%s batch %d in (%d,%d,%d) pool %dx%d strides %dx%d %s",
             is_max ? "max_pool2d" : "avg_pool2d", batch, h, w, c, kh, kw, sh, sw,
             same ? "same" : "valid");
    dt_config_t *cfg = dt_config_new();
    dt_model_t m;
    dt_error_t err = {0};
    int rc = dt_config_load_string(cfg, text, "test", &err);
    if (!rc) rc = dt_model_build(&m, test_device(), cfg, dt_shape_3d(h, w, c), &err);
    if (!rc) rc = dt_model_prepare(&m, batch, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc) {
      fprintf(stderr, "%s: %s\n", label, err.msg);
      dt_config_free(cfg);
      continue;
    }
    CHECK_INT_EQ(dt_shape_size(&m.layers[0].out_shape), (size_t)oh * ow * c);
    const size_t nin = (size_t)batch * h * w * c, nout = (size_t)batch * oh * ow * c;
    for (size_t k = 0; k < nin; k++) m.acts[0][k] = frand(&rng);
    dt_model_forward(&m, batch, false, NULL);
    double *ref = malloc(sizeof(double) * nout), *mag = malloc(sizeof(double) * nout);
    int max_terms = 1;
    for (int n = 0; n < batch; n++)
      for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
          for (int ch = 0; ch < c; ch++) {
            double best = -INFINITY, sum = 0.0, abs_sum = 0.0;
            int count = 0;
            for (int ky = 0; ky < kh; ky++)
              for (int kx = 0; kx < kw; kx++) {
                const int iy = oy * sh - ph + ky, ix = ox * sw - pw + kx;
                if (iy < 0 || ix < 0 || iy >= h || ix >= w) continue;
                const double v = m.acts[0][(((size_t)n * h + iy) * w + ix) * c + ch];
                best = v > best ? v : best;
                sum += v, abs_sum += fabs(v), count++;
              }
            const size_t o = (((size_t)n * oh + oy) * ow + ox) * c + ch;
            ref[o] = is_max ? best : sum / count;
            mag[o] = is_max ? 0.0 : abs_sum / count;
            max_terms = count > max_terms ? count : max_terms;
          }
    compare(label, "y", m.acts[1], ref, mag, nout, max_terms + 2);
    free(ref);
    free(mag);
    dt_model_free(&m);
    dt_config_free(cfg);
  }

  /* Global pools over (H, W, C) and (T, F). */
  for (int i = 0; i < 4; i++) {
    const bool is_max = i % 2 == 0, three = i < 2;
    const int batch = 2, h = three ? 3 : 1, w = 5, c = 4;
    char text[160];
    snprintf(text, sizeof text, "[model]\nloss = mse\n[layer.1]\ntype = %s\n",
             is_max ? "global_max_pool" : "global_avg_pool");
    dt_config_t *cfg = dt_config_new();
    dt_model_t m;
    dt_error_t err = {0};
    int rc = dt_config_load_string(cfg, text, "test", &err);
    if (!rc)
      rc = dt_model_build(&m, test_device(), cfg,
                          three ? dt_shape_3d(h, w, c) : (dt_shape_t){2, {w, c, 1, 1}}, &err);
    if (!rc) rc = dt_model_prepare(&m, batch, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc) {
      dt_config_free(cfg);
      continue;
    }
    for (int k = 0; k < batch * h * w * c; k++) m.acts[0][k] = frand(&rng);
    const float *y = dt_model_forward(&m, batch, false, NULL);
    for (int n = 0; n < batch; n++)
      for (int ch = 0; ch < c; ch++) {
        double best = -INFINITY, sum = 0.0, abs_sum = 0.0;
        for (int p = 0; p < h * w; p++) {
          const double v = m.acts[0][((size_t)n * h * w + p) * c + ch];
          best = v > best ? v : best;
          sum += v, abs_sum += fabs(v);
        }
        if (is_max)
          CHECK_NEAR(y[n * c + ch], best, 0.0);
        else
          CHECK_NEAR(y[n * c + ch], sum / (h * w), (h * w + 2) * FLT_EPSILON * abs_sum / (h * w));
      }
    dt_model_free(&m);
    dt_config_free(cfg);
  }
  printf("pooling: %s\n", test_failed_count == before ? "all match" : "MISMATCHES");
}

/* Building `layer` (a [layer.1] body) for in_shape fails with code `code` and a message
 * that names the section and contains `needle`. */
static void expect_error(const char *layer, dt_shape_t in_shape, int code, const char *needle) {
  char text[512];
  snprintf(text, sizeof text, "[model]\nloss = mse\n[layer.1]\n%s", layer);
  dt_config_t *cfg = dt_config_new();
  dt_model_t m;
  dt_error_t err = {0};
  int rc = dt_config_load_string(cfg, text, "net.ini", &err);
  CHECK_INT_EQ(rc, 0);
  rc = dt_model_build(&m, test_device(), cfg, in_shape, &err);
  CHECK_INT_EQ(rc, code);
  CHECK_STR_CONTAINS(err.msg, "net.ini");
  CHECK_STR_CONTAINS(err.msg, "[layer.1]");
  CHECK_STR_CONTAINS(err.msg, needle);
  dt_model_free(&m);
  dt_config_free(cfg);
}

static void test_errors(void) {
  expect_error("type = conv2d\nfilters = 4\nkernel_size = 5\n", dt_shape_3d(4, 6, 1),
               DT_ERR_SHAPE, "larger than the input (4, 6, 1)");
  expect_error("type = conv2d\nfilters = 4\nkernel_size = 3\ndilation_rate = 3\n",
               dt_shape_3d(6, 6, 2), DT_ERR_SHAPE, "dilated to 7 x 7");
  expect_error("type = conv2d\nfilters = 4\nkernel_size = 3\n", dt_shape_1d(784), DT_ERR_SHAPE,
               "needs 3-d samples");
  expect_error("type = conv2d\nfilters = 4\nkernel_size = 3\n",
               (dt_shape_t){2, {28, 28, 1, 1}}, DT_ERR_SHAPE, "got input (28, 28)");
  expect_error("type = conv1d\nfilters = 4\nkernel_size = 3\n", dt_shape_3d(28, 28, 1),
               DT_ERR_SHAPE, "needs 2-d samples");
  expect_error("type = conv1d\nfilters = 4\nkernel_size = 9\n", (dt_shape_t){2, {8, 3, 1, 1}},
               DT_ERR_SHAPE, "larger than");
  expect_error("type = conv2d\nkernel_size = 3\n", dt_shape_3d(8, 8, 1), DT_ERR_CONFIG,
               "needs 'filters'");
  expect_error("type = conv2d\nfilters = 2\n", dt_shape_3d(8, 8, 1), DT_ERR_CONFIG,
               "needs 'kernel_size'");
  expect_error("type = conv2d\nfilters = 2\nkernel_size = 3,3,3\n", dt_shape_3d(8, 8, 1),
               DT_ERR_CONFIG, "kernel_size");
  expect_error("type = conv2d\nfilters = 2\nkernel_size = 3\npadding = causal\n",
               dt_shape_3d(8, 8, 1), DT_ERR_CONFIG, "padding");
  expect_error("type = conv2d_transpose\nfilters = 2\nkernel_size = 3\n", dt_shape_1d(9),
               DT_ERR_SHAPE, "needs 3-d samples");
  expect_error("type = max_pool2d\npool_size = 3\n", dt_shape_3d(2, 8, 1), DT_ERR_SHAPE,
               "pool (3 x 3) is larger");
  expect_error("type = avg_pool2d\n", dt_shape_1d(8), DT_ERR_SHAPE, "needs 3-d samples");
  expect_error("type = global_avg_pool\n", dt_shape_1d(8), DT_ERR_SHAPE, "got input (8)");
  expect_error("type = reshape\ntarget_shape = 28,28,2\n", dt_shape_1d(784), DT_ERR_SHAPE,
               "has 1568 values but the input (784) has 784");
  expect_error("type = reshape\n", dt_shape_1d(784), DT_ERR_CONFIG, "needs 'target_shape'");
}

int main(void) {
  /* The kernels run only while BLAS is single-threaded (as in training by default). */
  openblas_set_num_threads(1);
  test_errors();
  test_pools();
  test_fixed();
  test_random(false);
  /* The same on a device told to run convolutions on OpenBLAS alone. */
  test_device_use(&(dt_device_options_t){.cpu.conv_blas = true});
  test_fixed();
  test_random(true);
  test_device_release();
  return test_summary("test_conv_naive");
}
