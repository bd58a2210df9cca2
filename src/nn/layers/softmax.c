/* Softmax over the features of each sample. When it is the last layer and the loss
 * is cross-entropy, the model skips it and uses the fused, numerically stable
 * softmax cross-entropy on its input instead (see model.c); this standalone form
 * serves every other placement. */
#include "activation_common.h"

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  dt_device_softmax_forward(ctx->stream, batch, dt_shape_size(&l->in_shape), x, y);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  (void)x;
  if (!dx) return;
  dt_device_softmax_backward(ctx->stream, batch, dt_shape_size(&l->in_shape), y, dy, dx);
}

const dt_layer_ops_t dt_layer_softmax = {
    .type = "softmax", .build = dt_activation_build, .forward = forward, .backward = backward};
