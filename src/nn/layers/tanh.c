/* Tanh: y = tanh(x). */
#include <math.h>

#include "activation_common.h"

static void forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch, const float *x, float *y) {
  (void)ctx;
  size_t n = (size_t)batch * dt_shape_size(&l->in_shape);
  for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

static void backward(dt_layer_t *l, int batch, const float *x, const float *y, const float *dy,
                     float *dx) {
  (void)x;
  if (!dx) return;
  size_t n = (size_t)batch * dt_shape_size(&l->in_shape);
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

const dt_layer_ops_t dt_layer_tanh = {
    .type = "tanh", .build = dt_activation_build, .forward = forward, .backward = backward};
