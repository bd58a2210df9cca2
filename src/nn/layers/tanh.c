/* Tanh: y = tanh(x). */
#include "activation_common.h"

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  dt_device_activation_forward(ctx->stream, DT_ACT_TANH,
                               (size_t)batch * dt_shape_size(&l->in_shape), 0.0f, x, y);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  if (!dx) return;
  dt_device_activation_backward(ctx->stream, DT_ACT_TANH,
                                (size_t)batch * dt_shape_size(&l->in_shape), 0.0f, x, y, dy, dx);
}

const dt_layer_ops_t dt_layer_tanh = {
    .type = "tanh", .build = dt_activation_build, .forward = forward, .backward = backward};
