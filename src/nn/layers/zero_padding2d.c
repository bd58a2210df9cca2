/* ZeroPadding2D (Keras'): rows and columns of zeros around (h, w, c) images. padding =
 * p (every side), or ph,pw (top and bottom ph, left and right pw), or
 * top,bottom,left,right; default 1. Backward keeps the inner part of the gradient. */
#include <stdio.h>

#include "dtrain/layer.h"
#include "resize2d_common.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  int rc = dt_resize2d_check_input(l, cfg, section, err);
  if (rc) return rc;
  static const int forms[] = {1, 2, 4};
  int v[4] = {0, 0, 0, 0}, n = 0;
  if ((rc = dt_resize2d_get_list(cfg, section, "padding", "1", 0, forms, 3, v, &n, err)))
    return rc;
  dt_resize2d_t *r = calloc(1, sizeof *r);
  if (!(l->priv = r)) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building [%s]", section);
  r->h = l->in_shape.dims[0];
  r->w = l->in_shape.dims[1];
  r->c = l->in_shape.dims[2];
  if (n == 1) {
    r->top = r->bottom = r->left = r->right = v[0];
  } else if (n == 2) {
    r->top = r->bottom = v[0];
    r->left = r->right = v[1];
  } else {
    r->top = v[0], r->bottom = v[1], r->left = v[2], r->right = v[3];
  }
  l->out_shape = dt_shape_3d(r->top + r->h + r->bottom, r->left + r->w + r->right, r->c);
  return 0;
}

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  dt_device_pad2d_forward(ctx->stream, l->priv, batch, x, y);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (dx) dt_device_pad2d_backward(ctx->stream, l->priv, batch, dy, dx);
}

const dt_layer_ops_t dt_layer_zero_padding2d = {.type = "zero_padding2d",
                                                .build = build,
                                                .forward = forward,
                                                .backward = backward,
                                                .backward_ignores_x = true,
                                                .backward_ignores_y = true};
