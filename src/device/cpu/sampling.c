/* The CPU kernels of a VAE's sampling layer (the reparameterization trick and its KL
 * term), see dt_device_gaussian_sample_forward in dtrain/device.h. The noise comes from
 * one generator in order, so forward stays on one thread (as dropout does); the work is
 * a few values per sample next to the encoder's and decoder's GEMMs. */
#include <math.h>

#include "cpu.h"

void dt_cpu_gaussian_sample_forward(dt_stream_t *s, int rows, size_t n, dt_rng_t *rng,
                                    const float *mean, const float *log_var, float *eps, float *z,
                                    float *kl) {
  (void)s;
  for (int r = 0; r < rows; r++) {
    const size_t o = (size_t)r * n;
    double sum = 0.0;
    for (size_t i = o; i < o + n; i++) {
      const float e = rng ? dt_rng_normal(rng) : 0.0f;
      const float sd = expf(0.5f * log_var[i]);
      eps[i] = e;
      z[i] = mean[i] + sd * e;
      sum += 1.0 + (double)log_var[i] - (double)mean[i] * mean[i] - (double)sd * sd;
    }
    kl[r] = (float)(-0.5 * sum);
  }
}

void dt_cpu_gaussian_sample_backward(dt_stream_t *s, int rows, size_t n, float kl_scale,
                                     const float *mean, const float *log_var, const float *eps,
                                     const float *dz, float *dmean, float *dlog_var) {
  (void)s;
  const size_t total = (size_t)rows * n;
  for (size_t i = 0; i < total; i++) {
    const float sd = expf(0.5f * log_var[i]);
    if (dmean) dmean[i] = dz[i] + kl_scale * mean[i];
    if (dlog_var) dlog_var[i] = 0.5f * dz[i] * eps[i] * sd + 0.5f * kl_scale * (sd * sd - 1.0f);
  }
}
