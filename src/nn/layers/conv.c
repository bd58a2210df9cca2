/* The convolution layers' build (geometry from the config, as Keras computes it),
 * forward and backward (see conv.h); the work runs on the device. */
#include "conv.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int dt_conv_out_extent(int n, int k, int s, dt_pad_kind pad, int *pad_before) {
  switch (pad) {
    case DT_PAD_SAME: {
      const int out = (n + s - 1) / s, total = (out - 1) * s + k - n;
      *pad_before = total > 0 ? total / 2 : 0;
      return out;
    }
    case DT_PAD_CAUSAL:
      *pad_before = k - 1;
      return (n - 1) / s + 1;
    case DT_PAD_VALID:
    default:
      *pad_before = 0;
      return n >= k ? (n - k) / s + 1 : 0;
  }
}

int dt_conv_get_pair(dt_config_t *cfg, const char *section, const char *key, int def, int dims,
                     int *out, dt_error_t *err) {
  int v[2] = {def, def}, count;
  int rc = dt_config_get_int_list(cfg, section, key, v, dims, &count, err);
  if (rc) return rc;
  for (int i = 0; i < dims; i++) out[i] = count == 1 ? v[0] : v[i];
  return 0;
}

/* ---- the convolution layers ---- */

static const char *const pad_names[] = {"valid", "same", "causal", NULL};
static const char *const pad_names_2d[] = {"valid", "same", NULL};

static int shape_error(dt_layer_t *l, dt_config_t *cfg, const char *section, const char *what,
                       dt_error_t *err) {
  char s[64];
  return dt_error_set(err, DT_ERR_SHAPE, "%s: [%s] %s %s, got input %s",
                      dt_config_where(cfg, section, "type"), section, l->ops->type, what,
                      dt_shape_str(&l->in_shape, s, sizeof s));
}

int dt_conv_build(dt_layer_t *l, dt_config_t *cfg, const char *section, int dims,
                  bool transpose, dt_error_t *err) {
  if (l->in_shape.ndim != dims + 1)
    return shape_error(l, cfg, section,
                       dims == 2 ? "needs 3-d samples (height, width, channels); set [model] "
                                   "input = H,W,C or put a reshape layer before it"
                                 : "needs 2-d samples (steps, features); set [model] input = T,F "
                                   "or put a reshape layer before it",
                       err);
  if (!dt_config_has_key(cfg, section, "filters"))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: a %s layer needs 'filters'",
                        dt_config_where(cfg, section, NULL), l->ops->type);
  if (!dt_config_has_key(cfg, section, "kernel_size"))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: a %s layer needs 'kernel_size'",
                        dt_config_where(cfg, section, NULL), l->ops->type);
  long filters;
  int k[2], s[2], d[2], pad, rc;
  bool use_bias;
  dt_init_kind kinit, binit;
  if ((rc = dt_config_get_int(cfg, section, "filters", 0, 1, 1 << 20, &filters, err)) ||
      (rc = dt_conv_get_pair(cfg, section, "kernel_size", 1, dims, k, err)) ||
      (rc = dt_conv_get_pair(cfg, section, "strides", 1, dims, s, err)) ||
      (rc = dt_conv_get_pair(cfg, section, "dilation_rate", 1, dims, d, err)) ||
      (rc = dt_config_get_choice(cfg, section, "padding", "valid",
                                 dims == 1 && !transpose ? pad_names : pad_names_2d, &pad, err)) ||
      (rc = dt_config_get_bool(cfg, section, "use_bias", true, &use_bias, err)) ||
      (rc = dt_layer_get_init(cfg, section, "kernel_initializer", DT_INIT_GLOROT_UNIFORM, &kinit,
                              err)) ||
      (rc = dt_layer_get_init(cfg, section, "bias_initializer", DT_INIT_ZEROS, &binit, err)))
    return rc;

  /* A (T, F) sample is a (1, T, F) image convolved by a (1, k) kernel. */
  int in[3];
  if (dims == 1) {
    in[0] = 1, in[1] = l->in_shape.dims[0], in[2] = l->in_shape.dims[1];
    k[1] = k[0], s[1] = s[0], d[1] = d[0];
    k[0] = s[0] = d[0] = 1;
  } else {
    in[0] = l->in_shape.dims[0], in[1] = l->in_shape.dims[1], in[2] = l->in_shape.dims[2];
  }
  /* Filled here and copied to l->priv at the end: a layer whose build fails is not
   * counted by the model, which then would not free its priv. */
  dt_conv_t conv = {0}, *c = &conv;
  dt_conv_geom_t *g = &c->desc.g;
  g->kh = k[0], g->kw = k[1], g->sh = s[0], g->sw = s[1], g->dh = d[0], g->dw = d[1];
  const int ekh = (k[0] - 1) * d[0] + 1, ekw = (k[1] - 1) * d[1] + 1;
  int out[2];
  if (!transpose) {
    g->ih = in[0], g->iw = in[1], g->ic = in[2], g->oc = (int)filters;
    g->oh = dt_conv_out_extent(g->ih, ekh, g->sh, (dt_pad_kind)pad, &g->ph);
    g->ow = dt_conv_out_extent(g->iw, ekw, g->sw, (dt_pad_kind)pad, &g->pw);
    if (g->oh < 1 || g->ow < 1) {
      char sh[64];
      return dt_error_set(err, DT_ERR_SHAPE,
                          "%s: [%s] the kernel (%d x %d, dilated to %d x %d) is larger than "
                          "the input %s with padding = valid",
                          dt_config_where(cfg, section, "kernel_size"), section, k[0], k[1], ekh,
                          ekw, dt_shape_str(&l->in_shape, sh, sizeof sh));
    }
    out[0] = g->oh, out[1] = g->ow;
  } else {
    /* The adjoint of a convolution from the (larger) output to the input, with Keras'
     * output extents: n * s for same padding, n * s + max(k - s, 0) for valid. */
    g->oh = in[0], g->ow = in[1], g->oc = in[2], g->ic = (int)filters;
    g->ih = in[0] * s[0] + (pad == DT_PAD_SAME || ekh <= s[0] ? 0 : ekh - s[0]);
    g->iw = in[1] * s[1] + (pad == DT_PAD_SAME || ekw <= s[1] ? 0 : ekw - s[1]);
    /* Those extents are exactly the ones that the convolution maps back to n. */
    const int oh = dt_conv_out_extent(g->ih, ekh, g->sh, (dt_pad_kind)pad, &g->ph);
    const int ow = dt_conv_out_extent(g->iw, ekw, g->sw, (dt_pad_kind)pad, &g->pw);
    assert(oh == g->oh && ow == g->ow);
    (void)oh, (void)ow;
    out[0] = g->ih, out[1] = g->iw;
  }
  c->desc.transpose = transpose;
  c->use_bias = use_bias;

  if (!(l->priv = malloc(sizeof conv)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  memcpy(l->priv, &conv, sizeof conv);
  const int f = (int)filters;
  l->out_shape = dims == 1 ? (dt_shape_t){2, {out[1], f, 1, 1}} : dt_shape_3d(out[0], out[1], f);
  /* Keras' fans for a kernel (kh, kw, a, b): a * kh * kw in, b * kh * kw out. */
  const int taps = k[0] * k[1];
  dt_shape_t kshape;
  if (dims == 1)
    kshape = (dt_shape_t){3, {k[1], transpose ? f : in[2], transpose ? in[2] : f, 1}};
  else
    kshape = (dt_shape_t){4, {k[0], k[1], transpose ? f : in[2], transpose ? in[2] : f}};
  dt_layer_declare_param(l, "kernel", kshape, kinit, taps * kshape.dims[kshape.ndim - 2],
                         taps * kshape.dims[kshape.ndim - 1], true);
  if (use_bias)
    dt_layer_declare_param(l, "bias", dt_shape_1d(f), binit, taps * kshape.dims[kshape.ndim - 2],
                           taps * kshape.dims[kshape.ndim - 1], false);
  return 0;
}

size_t dt_conv_scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch) {
  const dt_conv_t *c = l->priv;
  return dt_device_conv_workspace(dev, &c->desc, batch);
}

void dt_conv_forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     float *y) {
  const dt_conv_t *c = l->priv;
  dt_device_conv_forward(ctx->stream, &c->desc, batch, x, l->w[0], c->use_bias ? l->w[1] : NULL,
                         y, l->scratch);
}

void dt_conv_backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                      const float *y, const float *dy, float *dx) {
  (void)y;
  const dt_conv_t *c = l->priv;
  dt_device_conv_backward(ctx->stream, &c->desc, batch, x, l->w[0], dy, l->g[0],
                          c->use_bias ? l->g[1] : NULL, dx, l->scratch);
}
