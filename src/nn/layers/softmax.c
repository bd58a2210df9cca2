/* Softmax over the features of each sample. When it is the last layer and the loss
 * is cross-entropy, the model skips it and uses the fused, numerically stable
 * softmax cross-entropy on its input instead (see model.c); this standalone form
 * serves every other placement. */
#include <math.h>

#include "activation_common.h"

static void forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch, const float *x, float *y) {
  (void)ctx;
  size_t dim = dt_shape_size(&l->in_shape);
  for (int b = 0; b < batch; b++) {
    const float *xr = x + (size_t)b * dim;
    float *yr = y + (size_t)b * dim;
    float mx = xr[0];
    for (size_t i = 1; i < dim; i++) mx = xr[i] > mx ? xr[i] : mx;
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) sum += (yr[i] = expf(xr[i] - mx));
    float inv = 1.0f / sum;
    for (size_t i = 0; i < dim; i++) yr[i] *= inv;
  }
}

static void backward(dt_layer_t *l, int batch, const float *x, const float *y, const float *dy,
                     float *dx) {
  (void)x;
  if (!dx) return;
  size_t dim = dt_shape_size(&l->in_shape);
  /* dx_i = y_i (dy_i - sum_j dy_j y_j) */
  for (int b = 0; b < batch; b++) {
    const float *yr = y + (size_t)b * dim, *dyr = dy + (size_t)b * dim;
    float *dxr = dx + (size_t)b * dim;
    float dot = 0.0f;
    for (size_t i = 0; i < dim; i++) dot += dyr[i] * yr[i];
    for (size_t i = 0; i < dim; i++) dxr[i] = yr[i] * (dyr[i] - dot);
  }
}

const dt_layer_ops_t dt_layer_softmax = {
    .type = "softmax", .build = dt_activation_build, .forward = forward, .backward = backward};
