/* The CPU backend's batch normalization over the last axis (the layer, its statistics
 * and its moving averages are described in nn/layers/batch_norm.c).
 *
 * The data are channels-last, so every loop runs over blocks of contiguous rows with
 * the per-channel quantities in small arrays: the inner loop is a plain vector loop
 * and the order of each per-channel sum is fixed (block by block), whatever the vector
 * width. Sums are taken in double. Backward recomputes x_hat from the input and the
 * mean and 1/std that forward left in the workspace, so the workspace is O(C), not
 * O(batch). The statistics are summed on the calling thread (their order is fixed);
 * the passes that write y and dx, every value on its own, are shared out over the
 * backend's threads by ranges of blocks. */
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "dtrain/hot.h"

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

/* The workspace, in floats: two arrays of W doubles for the sums (first, so that they
 * are aligned: device memory and the model's arena are aligned to 64 bytes), then mean
 * and 1/std, three per-position coefficients (W floats each), and one flag. */
typedef struct {
  double *sum_a, *sum_b;           /* (W) */
  float *mean, *invstd;            /* (W) the statistics the last forward normalized with */
  float *coef_a, *coef_b, *coef_c; /* (W) */
  float *was_training;             /* (1) 1 if the last forward used batch statistics */
} bn_work_t;

static bn_work_t work_views(float *work, size_t w) {
  bn_work_t s;
  /* Device memory comes from aligned_alloc and has no declared type, so doubles may be
   * stored in it through a double pointer. */
  s.sum_a = (double *)(void *)work;
  s.sum_b = s.sum_a + w;
  s.mean = work + 4 * w;
  s.invstd = s.mean + w;
  s.coef_a = s.invstd + w;
  s.coef_b = s.coef_a + w;
  s.coef_c = s.coef_b + w;
  s.was_training = s.coef_c + w;
  return s;
}

/* ---- kernels ---- */

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

/* y = (x - mean) * a + b, or dx = k1 * dy + k0 - k2 * (x - mean) (k2 NULL:
 * dx = k1 * dy), over blocks [b, e) of w values. */
typedef struct {
  size_t total, w;
  const float *x, *dy, *mean, *k1, *k0, *k2;
  float *out;
} apply_job_t;

DT_HOT_LOOP static void apply_blocks(void *p, size_t b, size_t e) {
  const apply_job_t *j = p;
  const size_t w = j->w, end = e * w < j->total ? e * w : j->total;
  const float *restrict mean = j->mean, *restrict k1 = j->k1, *restrict k0 = j->k0,
                        *restrict k2 = j->k2;
  for (size_t o = b * w; o < end; o += w) {
    const size_t len = end - o < w ? end - o : w;
    const float *restrict xb = j->x + o;
    float *restrict ob = j->out + o;
    if (!j->dy) {
      for (size_t q = 0; q < len; q++) ob[q] = (xb[q] - mean[q]) * k1[q] + k0[q];
      continue;
    }
    const float *restrict dyb = j->dy + o;
    if (!k2) {
      for (size_t q = 0; q < len; q++) ob[q] = k1[q] * dyb[q];
      continue;
    }
    for (size_t q = 0; q < len; q++) ob[q] = k1[q] * dyb[q] + k0[q] - k2[q] * (xb[q] - mean[q]);
  }
}

static void apply(dt_stream_t *s, const apply_job_t *j) {
  const size_t blocks = (j->total + j->w - 1) / j->w;
  dt_cpu_pool_for(dt_cpu_pool_of(s), blocks, DT_CPU_GRAIN_CHEAP / j->w + 1, 1, apply_blocks,
                  (void *)j);
}

/* Mean and biased variance of every channel over `total` values of x, into s.mean and
 * s.invstd (as 1/sqrt(var + eps)) and, as doubles for the moving averages, into
 * sum_a and sum_b. One pass with sums shifted by the first row: shifting keeps
 * var = E[d^2] - E[d]^2 free of cancellation when |mean| is large against the spread. */
DT_HOT_LOOP static void batch_stats(const dt_batch_norm_desc_t *bn, size_t total,
                                    const float *restrict x, const bn_work_t *s) {
  const size_t c = (size_t)bn->channels, w = block_width(bn->channels);
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

DT_HOT_LOOP static void forward(dt_stream_t *st, const dt_batch_norm_desc_t *bn, bool training,
                                size_t total,
                                const float *x, const float *gamma, const float *beta,
                                float *restrict mm, float *restrict mv, float *y, float *work) {
  const size_t c = (size_t)bn->channels, w = block_width(bn->channels);
  const bn_work_t s = work_views(work, w);
  if (training) {
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
  *s.was_training = training ? 1.0f : 0.0f;
  /* y = (x - mean) * a + b with a = gamma / std and b = beta, per channel. */
  float *restrict a = s.coef_a, *restrict b = s.coef_b;
  for (size_t j = 0; j < c; j++) {
    a[j] = s.invstd[j] * (gamma ? gamma[j] : 1.0f);
    b[j] = beta ? beta[j] : 0.0f;
  }
  replicate(s.mean, c, w);
  replicate(s.invstd, c, w);
  replicate(a, c, w);
  replicate(b, c, w);
  apply(st, &(apply_job_t){.total = total, .w = w, .x = x, .mean = s.mean, .k1 = a, .k0 = b,
                           .out = y});
}

/* With x_hat = (x - mean) / std, S = sum(dy) and T = sum(dy * x_hat) per channel over
 * the m values of each channel: dbeta = S, dgamma = T, and
 *   training: dx = gamma / std * (dy - S / m - x_hat * T / m)  (through the statistics)
 *   eval:     dx = gamma / std * dy                            (statistics are constants) */
DT_HOT_LOOP static void backward(dt_stream_t *st, const dt_batch_norm_desc_t *bn, size_t total,
                                 const float *x,
                                 const float *dy, const float *gamma, float *dgamma,
                                 float *dbeta, float *dx, float *work) {
  const size_t c = (size_t)bn->channels, w = block_width(bn->channels), m = total / c;
  const bn_work_t s = work_views(work, w);
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
  if (dgamma)
    for (size_t j = 0; j < c; j++) dgamma[j] = (float)(sum_dyxc[j] * invstd[j]);
  if (dbeta)
    for (size_t j = 0; j < c; j++) dbeta[j] = (float)sum_dy[j];
  if (!dx) return;
  /* dx = k1 * dy + k0 - k2 * (x - mean) per channel, with k1 = gamma / std,
   * k0 = -k1 * S / m and k2 = k1 * T / (std * m) (zero in evaluation). */
  const bool training = *s.was_training != 0.0f;
  float *restrict k1 = s.coef_a, *restrict k0 = s.coef_b, *restrict k2 = s.coef_c;
  const double inv_m = 1.0 / (double)m;
  for (size_t j = 0; j < c; j++) {
    const double a = (double)invstd[j] * (gamma ? gamma[j] : 1.0f);
    const double t = sum_dyxc[j] * invstd[j];
    k1[j] = (float)a;
    k0[j] = training ? (float)(-a * sum_dy[j] * inv_m) : 0.0f;
    k2[j] = training ? (float)(a * invstd[j] * t * inv_m) : 0.0f;
  }
  replicate(k1, c, w);
  replicate(k0, c, w);
  replicate(k2, c, w);
  apply(st, &(apply_job_t){.total = total, .w = w, .x = x, .dy = dy, .mean = mean, .k1 = k1,
                           .k0 = k0, .k2 = training ? k2 : NULL, .out = dx});
}

/* ---- launchers ---- */

size_t dt_cpu_batch_norm_workspace(const dt_device_t *dev, int channels) {
  (void)dev;
  return 9 * block_width(channels) + 1;
}

void dt_cpu_batch_norm_forward(dt_stream_t *s, const dt_batch_norm_desc_t *bn, bool training,
                               size_t total, const float *x, const float *gamma,
                               const float *beta, float *moving_mean, float *moving_var,
                               float *y, float *work) {
  forward(s, bn, training, total, x, gamma, beta, moving_mean, moving_var, y, work);
}

void dt_cpu_batch_norm_backward(dt_stream_t *s, const dt_batch_norm_desc_t *bn, size_t total,
                                const float *x, const float *dy, const float *gamma,
                                float *dgamma, float *dbeta, float *dx, float *work) {
  backward(s, bn, total, x, dy, gamma, dgamma, dbeta, dx, work);
}
