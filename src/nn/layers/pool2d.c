/* 2-d max and average pooling over (height, width, channels) samples, as Keras'
 * MaxPooling2D / AveragePooling2D: pool_size, strides (default: the pool size), valid or
 * same padding. Padded positions take no part: a max ignores them and an average divides
 * by the number of real positions in its window (TensorFlow's rule). Max pooling keeps
 * the index of each output's maximum in its scratch, so backward routes the gradient to
 * it (the first maximum in window order when there are ties). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  char s[64];
  if (l->in_shape.ndim != 3)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] %s needs 3-d samples (height, width, channels), got input %s",
                        dt_config_where(cfg, section, "type"), section, l->ops->type,
                        dt_shape_str(&l->in_shape, s, sizeof s));
  static const char *const pads[] = {"valid", "same", NULL};
  int k[2], st[2], pad, rc;
  if ((rc = dt_conv_get_pair(cfg, section, "pool_size", 2, 2, k, err))) return rc;
  if (dt_config_has_key(cfg, section, "strides")) {
    if ((rc = dt_conv_get_pair(cfg, section, "strides", 1, 2, st, err))) return rc;
  } else {
    st[0] = k[0], st[1] = k[1];
  }
  if ((rc = dt_config_get_choice(cfg, section, "padding", "valid", pads, &pad, err))) return rc;
  /* Copied to l->priv only once the build has succeeded (the model frees the priv of
   * built layers only). */
  dt_conv_geom_t geom = {0}, *g = &geom;
  g->ih = l->in_shape.dims[0], g->iw = l->in_shape.dims[1], g->ic = g->oc = l->in_shape.dims[2];
  g->kh = k[0], g->kw = k[1], g->sh = st[0], g->sw = st[1], g->dh = g->dw = 1;
  g->oh = dt_conv_out_extent(g->ih, g->kh, g->sh, (dt_pad_kind)pad, &g->ph);
  g->ow = dt_conv_out_extent(g->iw, g->kw, g->sw, (dt_pad_kind)pad, &g->pw);
  if (g->oh < 1 || g->ow < 1)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] the pool (%d x %d) is larger than the input %s with "
                        "padding = valid",
                        dt_config_where(cfg, section, "pool_size"), section, k[0], k[1],
                        dt_shape_str(&l->in_shape, s, sizeof s));
  if (!(l->priv = malloc(sizeof geom)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  memcpy(l->priv, &geom, sizeof geom);
  l->out_shape = dt_shape_3d(g->oh, g->ow, g->ic);
  return 0;
}

static size_t max_scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch) {
  (void)dev;
  /* One int32 index (into the sample's input) per output value. */
  return (size_t)batch * dt_shape_size(&l->out_shape);
}

static void max_forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                        float *y) {
  dt_device_pool2d_forward(ctx->stream, DT_POOL_MAX, l->priv, batch, x, y,
                           (int32_t *)l->scratch);
}

static void max_backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                         const float *y, const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (!dx) return;
  dt_device_pool2d_backward(ctx->stream, DT_POOL_MAX, l->priv, batch, dy, dx,
                            (const int32_t *)l->scratch);
}

static void avg_forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                        float *y) {
  dt_device_pool2d_forward(ctx->stream, DT_POOL_AVG, l->priv, batch, x, y, NULL);
}

static void avg_backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                         const float *y, const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (!dx) return;
  dt_device_pool2d_backward(ctx->stream, DT_POOL_AVG, l->priv, batch, dy, dx, NULL);
}

const dt_layer_ops_t dt_layer_max_pool2d = {.type = "max_pool2d",
                                            .build = build,
                                            .scratch_floats = max_scratch_floats,
                                            .forward = max_forward,
                                            .backward = max_backward};

const dt_layer_ops_t dt_layer_avg_pool2d = {
    .type = "avg_pool2d", .build = build, .forward = avg_forward, .backward = avg_backward};
