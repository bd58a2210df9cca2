/* Flatten, as Keras' Flatten: any sample shape to one vector of the same values (the
 * data are already laid out row-major, so forward and backward are copies). */
#include <string.h>

#include "dtrain/layer.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  (void)cfg;
  (void)section;
  (void)err;
  l->out_shape = dt_shape_1d((int)dt_shape_size(&l->in_shape));
  return 0;
}

static void forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch, const float *x, float *y) {
  (void)ctx;
  memcpy(y, x, sizeof(float) * (size_t)batch * dt_shape_size(&l->in_shape));
}

static void backward(dt_layer_t *l, int batch, const float *x, const float *y, const float *dy,
                     float *dx) {
  (void)x;
  (void)y;
  if (dx) memcpy(dx, dy, sizeof(float) * (size_t)batch * dt_shape_size(&l->in_shape));
}

const dt_layer_ops_t dt_layer_flatten = {
    .type = "flatten", .build = build, .forward = forward, .backward = backward};
