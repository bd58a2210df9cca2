/* Sigmoid: y = 1 / (1 + exp(-x)), computed without overflow for large |x|. */
#include <math.h>

#include "activation_common.h"

static void forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch, const float *x, float *y) {
  (void)ctx;
  size_t n = (size_t)batch * dt_shape_size(&l->in_shape);
  for (size_t i = 0; i < n; i++) {
    float e = expf(-fabsf(x[i])); /* in (0, 1]: never overflows */
    y[i] = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  }
}

static void backward(dt_layer_t *l, int batch, const float *x, const float *y, const float *dy,
                     float *dx) {
  (void)x;
  if (!dx) return;
  size_t n = (size_t)batch * dt_shape_size(&l->in_shape);
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

const dt_layer_ops_t dt_layer_sigmoid = {
    .type = "sigmoid", .build = dt_activation_build, .forward = forward, .backward = backward};
