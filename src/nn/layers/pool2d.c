/* 2-d max and average pooling over (height, width, channels) samples, as Keras'
 * MaxPooling2D / AveragePooling2D: pool_size, strides (default: the pool size), valid or
 * same padding. Padded positions take no part: a max ignores them and an average divides
 * by the number of real positions in its window (TensorFlow's rule). Max pooling keeps
 * the index of each output's maximum in its scratch, so backward routes the gradient to
 * it (the first maximum in window order when there are ties). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/hot.h"
#include "im2col.h"

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

/* The window of output (oy, ox) clipped to the image: rows [*y0, *y1), columns [*x0, *x1). */
static void window(const dt_conv_geom_t *g, int oy, int ox, int *y0, int *y1, int *x0, int *x1) {
  const int ty = oy * g->sh - g->ph, tx = ox * g->sw - g->pw;
  *y0 = ty < 0 ? 0 : ty;
  *y1 = ty + g->kh < g->ih ? ty + g->kh : g->ih;
  *x0 = tx < 0 ? 0 : tx;
  *x1 = tx + g->kw < g->iw ? tx + g->kw : g->iw;
}

/* ---- max ---- */

static size_t max_scratch_floats(const dt_layer_t *l, int batch) {
  /* One int32 index (into the sample's input) per output value. */
  return (size_t)batch * dt_shape_size(&l->out_shape);
}

/* The maximum of each channel over one window, and its index into the sample; restrict
 * lets the channel loops vectorize without guarding against overlap. */
static inline void max_window(const dt_conv_geom_t *g, const float *restrict xn, int y0, int y1,
                              int x0, int x1, float *restrict y, int32_t *restrict idx) {
  const int c = g->ic;
  int32_t base = (int32_t)(((size_t)y0 * g->iw + x0) * c);
  for (int j = 0; j < c; j++) {
    y[j] = xn[base + j];
    idx[j] = base + j;
  }
  for (int iy = y0; iy < y1; iy++)
    for (int ix = iy == y0 ? x0 + 1 : x0; ix < x1; ix++) {
      base = (int32_t)(((size_t)iy * g->iw + ix) * c);
      const float *xi = xn + base;
      /* Selects rather than branches, so that the loop vectorizes; strict > keeps the
       * first maximum. */
      for (int j = 0; j < c; j++) {
        const bool gt = xi[j] > y[j];
        y[j] = gt ? xi[j] : y[j];
        idx[j] = gt ? base + j : idx[j];
      }
    }
}

DT_HOT_LOOP static void max_forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch,
                                    const float *x, float *y) {
  (void)ctx;
  const dt_conv_geom_t *g = l->priv;
  const int c = g->ic;
  const size_t in_size = (size_t)g->ih * g->iw * c;
  int32_t *idx = (int32_t *)l->scratch;
  for (int n = 0; n < batch; n++) {
    const float *xn = x + (size_t)n * in_size;
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++, y += c, idx += c) {
        int y0, y1, x0, x1;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        max_window(g, xn, y0, y1, x0, x1, y, idx);
      }
  }
}

/* True when the windows cover the image exactly once (stride = pool size, no padding,
 * no leftover rows or columns), so that backward can write every dx value directly. */
static bool tiles_exactly(const dt_conv_geom_t *g) {
  return g->sh == g->kh && g->sw == g->kw && g->oh * g->kh == g->ih && g->ow * g->kw == g->iw &&
         g->ph == 0 && g->pw == 0;
}

DT_HOT_LOOP static void max_backward(dt_layer_t *l, int batch, const float *x, const float *y,
                                     const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (!dx) return;
  const dt_conv_geom_t *g = l->priv;
  const int c = g->ic;
  const size_t in_size = (size_t)g->ih * g->iw * c, out_size = dt_shape_size(&l->out_shape);
  const int32_t *idx = (const int32_t *)l->scratch;
  if (tiles_exactly(g)) {
    /* Each input value belongs to one window: it gets that window's gradient if it was
     * the maximum, else zero. */
    for (int n = 0; n < batch; n++) {
      float *dxn = dx + (size_t)n * in_size;
      for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++, dy += c, idx += c)
          for (int iy = oy * g->kh; iy < (oy + 1) * g->kh; iy++)
            for (int ix = ox * g->kw; ix < (ox + 1) * g->kw; ix++) {
              const int32_t base = (int32_t)(((size_t)iy * g->iw + ix) * c);
              float *d = dxn + base;
              for (int j = 0; j < c; j++) d[j] = idx[j] == base + j ? dy[j] : 0.0f;
            }
    }
    return;
  }
  memset(dx, 0, sizeof(float) * (size_t)batch * in_size);
  for (int n = 0; n < batch; n++) {
    float *dxn = dx + (size_t)n * in_size;
    const float *dyn = dy + (size_t)n * out_size;
    const int32_t *in = idx + (size_t)n * out_size;
    for (size_t o = 0; o < out_size; o++) dxn[in[o]] += dyn[o];
  }
}

/* ---- average ---- */

DT_HOT_LOOP static void avg_forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch,
                                    const float *x, float *y) {
  (void)ctx;
  const dt_conv_geom_t *g = l->priv;
  const int c = g->ic;
  const size_t in_size = (size_t)g->ih * g->iw * c;
  for (int n = 0; n < batch; n++) {
    const float *xn = x + (size_t)n * in_size;
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++, y += c) {
        int y0, y1, x0, x1;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        memset(y, 0, sizeof(float) * (size_t)c);
        for (int iy = y0; iy < y1; iy++)
          for (int ix = x0; ix < x1; ix++) {
            const float *xi = xn + ((size_t)iy * g->iw + ix) * c;
            for (int j = 0; j < c; j++) y[j] += xi[j];
          }
        const float scale = 1.0f / (float)((y1 - y0) * (x1 - x0));
        for (int j = 0; j < c; j++) y[j] *= scale;
      }
  }
}

DT_HOT_LOOP static void avg_backward(dt_layer_t *l, int batch, const float *x, const float *y,
                                     const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (!dx) return;
  const dt_conv_geom_t *g = l->priv;
  const int c = g->ic;
  const size_t in_size = (size_t)g->ih * g->iw * c;
  memset(dx, 0, sizeof(float) * (size_t)batch * in_size);
  for (int n = 0; n < batch; n++) {
    float *dxn = dx + (size_t)n * in_size;
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++, dy += c) {
        int y0, y1, x0, x1;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        const float scale = 1.0f / (float)((y1 - y0) * (x1 - x0));
        for (int iy = y0; iy < y1; iy++)
          for (int ix = x0; ix < x1; ix++) {
            float *di = dxn + ((size_t)iy * g->iw + ix) * c;
            for (int j = 0; j < c; j++) di[j] += dy[j] * scale;
          }
      }
  }
}

const dt_layer_ops_t dt_layer_max_pool2d = {.type = "max_pool2d",
                                            .build = build,
                                            .scratch_floats = max_scratch_floats,
                                            .forward = max_forward,
                                            .backward = max_backward};

const dt_layer_ops_t dt_layer_avg_pool2d = {
    .type = "avg_pool2d", .build = build, .forward = avg_forward, .backward = avg_backward};
