/* UpSampling2D (Keras', interpolation "nearest"): each pixel of (h, w, c) images is
 * repeated size = sh,sw times (or size = s for both; default 2,2), giving
 * (h sh, w sw, c). Backward sums the gradient over each block. */
#include <stdio.h>

#include "dtrain/layer.h"
#include "resize2d_common.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  int rc = dt_resize2d_check_input(l, cfg, section, err);
  if (rc) return rc;
  static const int forms[] = {1, 2};
  int v[4] = {0, 0, 0, 0}, n = 0;
  if ((rc = dt_resize2d_get_list(cfg, section, "size", "2,2", 1, forms, 2, v, &n, err))) return rc;
  dt_resize2d_t *r = calloc(1, sizeof *r);
  if (!(l->priv = r)) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building [%s]", section);
  *r = (dt_resize2d_t){.h = l->in_shape.dims[0], .w = l->in_shape.dims[1],
                       .c = l->in_shape.dims[2], .sh = v[0], .sw = n == 2 ? v[1] : v[0]};
  l->out_shape = dt_shape_3d(r->h * r->sh, r->w * r->sw, r->c);
  return 0;
}

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  dt_device_upsample2d_forward(ctx->stream, l->priv, batch, x, y);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (dx) dt_device_upsample2d_backward(ctx->stream, l->priv, batch, dy, dx);
}

const dt_layer_ops_t dt_layer_upsampling2d = {.type = "upsampling2d",
                                              .build = build,
                                              .forward = forward,
                                              .backward = backward,
                                              .backward_ignores_x = true,
                                              .backward_ignores_y = true};
