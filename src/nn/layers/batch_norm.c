/* Batch normalization over the last axis (Keras BatchNormalization, axis = -1): the
 * features of (N, F), the channels of channels-last (H, W, C) or (T, F) inputs.
 *
 * Training: each channel is normalized with the mean and biased variance of the batch
 * over every other axis, y = gamma * (x - mean) / sqrt(var + epsilon) + beta, and the
 * moving averages move towards them:
 *   moving_mean     = momentum * moving_mean     + (1 - momentum) * mean
 *   moving_variance = momentum * moving_variance + (1 - momentum) * var
 * The variance fed to the moving average is the biased one (divided by the number of
 * values), as in Keras 3 and in TF2 Keras' non-fused path (tf.nn.moments); TF's fused
 * 4-D kernel and PyTorch use the unbiased one there instead. Using the same statistic
 * for normalizing and for the average keeps evaluation consistent with training, and
 * for the batch sizes that matter the two differ by a factor M / (M - 1) of 1.00002
 * (64 images of 28x28) or 1.016 (64 dense rows).
 *
 * Evaluation: the moving averages take the place of the batch statistics.
 *
 * The data are channels-last, so every loop runs over blocks of contiguous rows with
 * the per-channel quantities in small arrays: the inner loop is a plain vector loop
 * and the order of each per-channel sum is fixed (block by block), whatever the vector
 * width. Sums are taken in double. Backward recomputes x_hat from the input and the
 * mean and 1/std that forward left in scratch, so scratch is O(C), not O(batch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/hot.h"
#include "dtrain/layer.h"

typedef struct {
  int channels;    /* C: the last dimension of the input */
  size_t rows;     /* per sample: input size / C */
  size_t width;    /* W: values per block, whole rows, at least 16 (see below) */
  double momentum;
  float epsilon;
  int gamma, beta; /* parameter indices, -1 when scale / center is off */
} batch_norm_t;

/* The loops walk the data in blocks of W = C * ceil(16 / C) values (W = C from 16
 * channels on) with per-position arrays of W, position p holding channel p % C, and
 * fold the W partial sums into C at the end. For wide channels this is the row loop;
 * for a few channels (a grayscale input has C = 1) the inner loop stays at least 16
 * long instead of running C iterations per row. The last block may be shorter (a
 * whole number of rows). */
static size_t block_width(int channels) {
  size_t c = (size_t)channels;
  return c >= 16 ? c : c * ((16 + c - 1) / c);
}

/* Scratch, in floats: two arrays of W doubles for the sums (first, so that they are
 * aligned: the model aligns scratch to 64 bytes), then mean and 1/std, three
 * per-position coefficients (W floats each), and one flag. */
typedef struct {
  double *sum_a, *sum_b;           /* (W) */
  float *mean, *invstd;            /* (W) the statistics the last forward normalized with */
  float *coef_a, *coef_b, *coef_c; /* (W) */
  float *was_training;             /* (1) 1 if the last forward used batch statistics */
} bn_scratch_t;

static bn_scratch_t scratch_views(const dt_layer_t *l) {
  const batch_norm_t *bn = l->priv;
  const size_t w = bn->width;
  bn_scratch_t s;
  /* The arena comes from aligned_alloc and has no declared type, so doubles may be
   * stored in it through a double pointer. */
  s.sum_a = (double *)(void *)l->scratch;
  s.sum_b = s.sum_a + w;
  s.mean = l->scratch + 4 * w;
  s.invstd = s.mean + w;
  s.coef_a = s.invstd + w;
  s.coef_b = s.coef_a + w;
  s.coef_c = s.coef_b + w;
  s.was_training = s.coef_c + w;
  return s;
}

static size_t scratch_floats(const dt_layer_t *l, int batch) {
  (void)batch;
  const batch_norm_t *bn = l->priv;
  return 9 * bn->width + 1;
}

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  double momentum, epsilon;
  bool center, scale;
  int rc;
  if ((rc = dt_config_get_double(cfg, section, "momentum", 0.99, 0.0, 1.0, &momentum, err)) ||
      (rc = dt_config_get_double(cfg, section, "epsilon", 1e-3, 1e-12, 1.0, &epsilon, err)) ||
      (rc = dt_config_get_bool(cfg, section, "center", true, &center, err)) ||
      (rc = dt_config_get_bool(cfg, section, "scale", true, &scale, err)))
    return rc;
  batch_norm_t *bn = malloc(sizeof *bn);
  if (!bn) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  bn->channels = l->in_shape.dims[l->in_shape.ndim - 1];
  bn->rows = dt_shape_size(&l->in_shape) / (size_t)bn->channels;
  bn->width = block_width(bn->channels);
  bn->momentum = momentum;
  bn->epsilon = (float)epsilon;
  bn->gamma = bn->beta = -1;
  l->priv = bn;
  l->out_shape = l->in_shape;
  const dt_shape_t cs = dt_shape_1d(bn->channels);
  /* Keras' names and order; neither takes weight decay. */
  if (scale) {
    bn->gamma = l->nparams;
    dt_layer_declare_param(l, "gamma", cs, DT_INIT_ONES, bn->channels, bn->channels, false);
  }
  if (center) {
    bn->beta = l->nparams;
    dt_layer_declare_param(l, "beta", cs, DT_INIT_ZEROS, bn->channels, bn->channels, false);
  }
  dt_layer_declare_state(l, "moving_mean", cs, DT_INIT_ZEROS);
  dt_layer_declare_state(l, "moving_variance", cs, DT_INIT_ONES);
  return 0;
}

/* Copies the per-channel values v[0..C) to every position of the block: v[p] = v[p % C]. */
static void replicate(float *v, size_t c, size_t w) {
  for (size_t p = c; p < w; p++) v[p] = v[p - c];
}

/* Folds the W partial sums of each of a and b into their first C entries, block row
 * by block row (a fixed order). */
static void fold(double *a, double *b, size_t c, size_t w) {
  for (size_t q = c; q < w; q += c)
    for (size_t j = 0; j < c; j++) {
      a[j] += a[q + j];
      b[j] += b[q + j];
    }
}

/* Mean and biased variance of every channel over `total` values of x, into s.mean and
 * s.invstd (as 1/sqrt(var + eps)) and, as doubles for the moving averages, into
 * sum_a and sum_b. One pass with sums shifted by the first row: shifting keeps
 * var = E[d^2] - E[d]^2 free of cancellation when |mean| is large against the spread. */
DT_HOT_LOOP static void batch_stats(const batch_norm_t *bn, size_t total, const float *restrict x,
                                    const bn_scratch_t *s) {
  const size_t c = (size_t)bn->channels, w = bn->width;
  double *restrict s1 = s->sum_a, *restrict s2 = s->sum_b;
  float *restrict shift = s->coef_c;
  for (size_t p = 0; p < w; p++) {
    shift[p] = x[p % c];
    s1[p] = s2[p] = 0.0;
  }
  for (size_t o = 0; o < total; o += w) {
    const size_t len = total - o < w ? total - o : w;
    const float *restrict xb = x + o;
    for (size_t p = 0; p < len; p++) {
      double d = (double)xb[p] - (double)shift[p];
      s1[p] += d;
      s2[p] += d * d;
    }
  }
  fold(s1, s2, c, w);
  const double inv_n = (double)c / (double)total;
  for (size_t j = 0; j < c; j++) {
    double mean_d = s1[j] * inv_n;
    double var = s2[j] * inv_n - mean_d * mean_d;
    if (var < 0.0) var = 0.0;
    double mean = (double)shift[j] + mean_d;
    s->mean[j] = (float)mean;
    s->invstd[j] = (float)(1.0 / sqrt(var + (double)bn->epsilon));
    s1[j] = mean;
    s2[j] = var;
  }
}

DT_HOT_LOOP static void forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch,
                                const float *x, float *y) {
  const batch_norm_t *bn = l->priv;
  const bn_scratch_t s = scratch_views(l);
  const size_t c = (size_t)bn->channels, w = bn->width, total = (size_t)batch * bn->rows * c;
  float *restrict mm = l->s[0], *restrict mv = l->s[1];
  if (ctx->training) {
    batch_stats(bn, total, x, &s);
    const double k = bn->momentum;
    for (size_t j = 0; j < c; j++) {
      mm[j] = (float)(k * mm[j] + (1.0 - k) * s.sum_a[j]);
      mv[j] = (float)(k * mv[j] + (1.0 - k) * s.sum_b[j]);
    }
  } else {
    for (size_t j = 0; j < c; j++) {
      s.mean[j] = mm[j];
      s.invstd[j] = (float)(1.0 / sqrt((double)mv[j] + (double)bn->epsilon));
    }
  }
  *s.was_training = ctx->training ? 1.0f : 0.0f;
  /* y = (x - mean) * a + b with a = gamma / std and b = beta, per channel. */
  float *restrict a = s.coef_a, *restrict b = s.coef_b;
  for (size_t j = 0; j < c; j++) {
    a[j] = s.invstd[j] * (bn->gamma >= 0 ? l->w[bn->gamma][j] : 1.0f);
    b[j] = bn->beta >= 0 ? l->w[bn->beta][j] : 0.0f;
  }
  replicate(s.mean, c, w);
  replicate(s.invstd, c, w);
  replicate(a, c, w);
  replicate(b, c, w);
  const float *restrict mean = s.mean;
  for (size_t o = 0; o < total; o += w) {
    const size_t len = total - o < w ? total - o : w;
    const float *restrict xb = x + o;
    float *restrict yb = y + o;
    for (size_t p = 0; p < len; p++) yb[p] = (xb[p] - mean[p]) * a[p] + b[p];
  }
}

/* With x_hat = (x - mean) / std, S = sum(dy) and T = sum(dy * x_hat) per channel over
 * the m values of each channel: dbeta = S, dgamma = T, and
 *   training: dx = gamma / std * (dy - S / m - x_hat * T / m)  (through the statistics)
 *   eval:     dx = gamma / std * dy                            (statistics are constants) */
DT_HOT_LOOP static void backward(dt_layer_t *l, int batch, const float *x, const float *y,
                                 const float *dy, float *dx) {
  (void)y;
  const batch_norm_t *bn = l->priv;
  const bn_scratch_t s = scratch_views(l);
  const size_t c = (size_t)bn->channels, w = bn->width, m = (size_t)batch * bn->rows,
               total = m * c;
  const float *restrict mean = s.mean, *restrict invstd = s.invstd;
  double *restrict sum_dy = s.sum_a, *restrict sum_dyxc = s.sum_b;
  for (size_t p = 0; p < w; p++) sum_dy[p] = sum_dyxc[p] = 0.0;
  for (size_t o = 0; o < total; o += w) {
    const size_t len = total - o < w ? total - o : w;
    const float *restrict xb = x + o, *restrict dyb = dy + o;
    for (size_t p = 0; p < len; p++) {
      sum_dy[p] += (double)dyb[p];
      sum_dyxc[p] += (double)dyb[p] * (double)(xb[p] - mean[p]);
    }
  }
  fold(sum_dy, sum_dyxc, c, w);
  /* dgamma = T = sum(dy * (x - mean)) / std. */
  if (bn->gamma >= 0)
    for (size_t j = 0; j < c; j++) l->g[bn->gamma][j] = (float)(sum_dyxc[j] * invstd[j]);
  if (bn->beta >= 0)
    for (size_t j = 0; j < c; j++) l->g[bn->beta][j] = (float)sum_dy[j];
  if (!dx) return;
  /* dx = k1 * dy + k0 - k2 * (x - mean) per channel, with k1 = gamma / std,
   * k0 = -k1 * S / m and k2 = k1 * T / (std * m) (zero in evaluation). */
  const bool training = *s.was_training != 0.0f;
  float *restrict k1 = s.coef_a, *restrict k0 = s.coef_b, *restrict k2 = s.coef_c;
  const double inv_m = 1.0 / (double)m;
  for (size_t j = 0; j < c; j++) {
    const double a = (double)invstd[j] * (bn->gamma >= 0 ? l->w[bn->gamma][j] : 1.0f);
    const double t = sum_dyxc[j] * invstd[j];
    k1[j] = (float)a;
    k0[j] = training ? (float)(-a * sum_dy[j] * inv_m) : 0.0f;
    k2[j] = training ? (float)(a * invstd[j] * t * inv_m) : 0.0f;
  }
  replicate(k1, c, w);
  replicate(k0, c, w);
  replicate(k2, c, w);
  if (!training) {
    for (size_t o = 0; o < total; o += w) {
      const size_t len = total - o < w ? total - o : w;
      const float *restrict dyb = dy + o;
      float *restrict dxb = dx + o;
      for (size_t p = 0; p < len; p++) dxb[p] = k1[p] * dyb[p];
    }
    return;
  }
  for (size_t o = 0; o < total; o += w) {
    const size_t len = total - o < w ? total - o : w;
    const float *restrict xb = x + o, *restrict dyb = dy + o;
    float *restrict dxb = dx + o;
    for (size_t p = 0; p < len; p++) dxb[p] = k1[p] * dyb[p] + k0[p] - k2[p] * (xb[p] - mean[p]);
  }
}

const dt_layer_ops_t dt_layer_batch_norm = {.type = "batch_norm",
                                            .build = build,
                                            .scratch_floats = scratch_floats,
                                            .forward = forward,
                                            .backward = backward};
