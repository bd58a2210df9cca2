/* Global average and max pooling, as Keras' GlobalAveragePooling2D/1D and
 * GlobalMaxPooling2D/1D: (H, W, C) -> (C), or (T, F) -> (F). Global max pooling keeps
 * the position of each channel's maximum (the first one on ties) in its scratch for
 * backward. */
#include <stdint.h>

#include "dtrain/layer.h"

/* Positions per sample (all axes but the last) and channels (the last axis). */
static size_t positions(const dt_layer_t *l) {
  return dt_shape_size(&l->in_shape) / (size_t)l->in_shape.dims[l->in_shape.ndim - 1];
}

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  if (l->in_shape.ndim != 2 && l->in_shape.ndim != 3) {
    char s[64];
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] %s needs (height, width, channels) or (steps, features) "
                        "samples, got input %s",
                        dt_config_where(cfg, section, "type"), section, l->ops->type,
                        dt_shape_str(&l->in_shape, s, sizeof s));
  }
  l->out_shape = dt_shape_1d(l->in_shape.dims[l->in_shape.ndim - 1]);
  return 0;
}

static void avg_forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                        float *y) {
  dt_device_global_pool_forward(ctx->stream, DT_POOL_AVG, batch, positions(l),
                                l->out_shape.dims[0], x, y, NULL);
}

static void avg_backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                         const float *y, const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (!dx) return;
  dt_device_global_pool_backward(ctx->stream, DT_POOL_AVG, batch, positions(l),
                                 l->out_shape.dims[0], dy, dx, NULL);
}

static size_t max_scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch) {
  (void)dev;
  /* One int32 position per output value. */
  return (size_t)batch * dt_shape_size(&l->out_shape);
}

static void max_forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                        float *y) {
  dt_device_global_pool_forward(ctx->stream, DT_POOL_MAX, batch, positions(l),
                                l->out_shape.dims[0], x, y, (int32_t *)l->scratch);
}

static void max_backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                         const float *y, const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (!dx) return;
  dt_device_global_pool_backward(ctx->stream, DT_POOL_MAX, batch, positions(l),
                                 l->out_shape.dims[0], dy, dx, (const int32_t *)l->scratch);
}

const dt_layer_ops_t dt_layer_global_avg_pool = {
    .type = "global_avg_pool", .build = build, .forward = avg_forward, .backward = avg_backward};

const dt_layer_ops_t dt_layer_global_max_pool = {.type = "global_max_pool",
                                                 .build = build,
                                                 .scratch_floats = max_scratch_floats,
                                                 .forward = max_forward,
                                                 .backward = max_backward};
