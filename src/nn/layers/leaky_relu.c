/* LeakyReLU: y = x for x > 0, alpha * x otherwise (Keras' default alpha is 0.3). */
#include <stdlib.h>

#include "activation_common.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  double alpha;
  int rc = dt_config_get_double(cfg, section, "alpha", 0.3, 0.0, 1e6, &alpha, err);
  if (rc) return rc;
  float *a = malloc(sizeof *a);
  if (!a) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  *a = (float)alpha;
  l->priv = a;
  return dt_activation_build(l, cfg, section, err);
}

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  dt_device_activation_forward(ctx->stream, DT_ACT_LEAKY_RELU,
                               (size_t)batch * dt_shape_size(&l->in_shape),
                               *(const float *)l->priv, x, y);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  if (!dx) return;
  dt_device_activation_backward(ctx->stream, DT_ACT_LEAKY_RELU,
                                (size_t)batch * dt_shape_size(&l->in_shape),
                                *(const float *)l->priv, x, y, dy, dx);
}

const dt_layer_ops_t dt_layer_leaky_relu = {
    .type = "leaky_relu", .build = build, .forward = forward, .backward = backward};
