/* ReLU: y = max(x, 0). */
#include "activation_common.h"
#include "dtrain/hot.h"

DT_HOT_LOOP static void forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch, const float *x, float *y) {
  (void)ctx;
  size_t n = (size_t)batch * dt_shape_size(&l->in_shape);
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

DT_HOT_LOOP static void backward(dt_layer_t *l, int batch, const float *x, const float *y, const float *dy,
                     float *dx) {
  (void)x;
  if (!dx) return;
  size_t n = (size_t)batch * dt_shape_size(&l->in_shape);
  for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

const dt_layer_ops_t dt_layer_relu = {
    .type = "relu", .build = dt_activation_build, .forward = forward, .backward = backward};
