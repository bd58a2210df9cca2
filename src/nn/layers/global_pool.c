/* Global average and max pooling, as Keras' GlobalAveragePooling2D/1D and
 * GlobalMaxPooling2D/1D: (H, W, C) -> (C), or (T, F) -> (F). Global max pooling keeps
 * the position of each channel's maximum (the first one on ties) in its scratch for
 * backward. */
#include <stdint.h>
#include <string.h>

#include "dtrain/hot.h"
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

DT_HOT_LOOP static void avg_forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch,
                                    const float *x, float *y) {
  (void)ctx;
  const size_t p = positions(l);
  const int c = l->out_shape.dims[0];
  const float scale = 1.0f / (float)p;
  for (int n = 0; n < batch; n++, y += c) {
    memset(y, 0, sizeof(float) * (size_t)c);
    for (size_t i = 0; i < p; i++, x += c)
      for (int j = 0; j < c; j++) y[j] += x[j];
    for (int j = 0; j < c; j++) y[j] *= scale;
  }
}

DT_HOT_LOOP static void avg_backward(dt_layer_t *l, int batch, const float *x, const float *y,
                                     const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (!dx) return;
  const size_t p = positions(l);
  const int c = l->out_shape.dims[0];
  const float scale = 1.0f / (float)p;
  for (int n = 0; n < batch; n++, dy += c)
    for (size_t i = 0; i < p; i++, dx += c)
      for (int j = 0; j < c; j++) dx[j] = dy[j] * scale;
}

static size_t max_scratch_floats(const dt_layer_t *l, int batch) {
  /* One int32 position per output value. */
  return (size_t)batch * dt_shape_size(&l->out_shape);
}

DT_HOT_LOOP static void max_forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch,
                                    const float *x, float *y) {
  (void)ctx;
  const size_t p = positions(l);
  const int c = l->out_shape.dims[0];
  int32_t *idx = (int32_t *)l->scratch;
  for (int n = 0; n < batch; n++, y += c, idx += c) {
    memcpy(y, x, sizeof(float) * (size_t)c);
    memset(idx, 0, sizeof(int32_t) * (size_t)c);
    x += c;
    for (size_t i = 1; i < p; i++, x += c)
      for (int j = 0; j < c; j++) {
        const bool gt = x[j] > y[j];
        y[j] = gt ? x[j] : y[j];
        idx[j] = gt ? (int32_t)i : idx[j];
      }
  }
}

static void max_backward(dt_layer_t *l, int batch, const float *x, const float *y,
                         const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (!dx) return;
  const size_t p = positions(l);
  const int c = l->out_shape.dims[0];
  const int32_t *idx = (const int32_t *)l->scratch;
  memset(dx, 0, sizeof(float) * (size_t)batch * p * c);
  for (int n = 0; n < batch; n++, dy += c, idx += c, dx += p * c)
    for (int j = 0; j < c; j++) dx[(size_t)idx[j] * c + j] = dy[j];
}

const dt_layer_ops_t dt_layer_global_avg_pool = {
    .type = "global_avg_pool", .build = build, .forward = avg_forward, .backward = avg_backward};

const dt_layer_ops_t dt_layer_global_max_pool = {.type = "global_max_pool",
                                                 .build = build,
                                                 .scratch_floats = max_scratch_floats,
                                                 .forward = max_forward,
                                                 .backward = max_backward};
