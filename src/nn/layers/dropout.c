/* Inverted dropout: in training each input is kept with probability 1 - rate and
 * scaled by 1 / (1 - rate), so evaluation is the identity. The mask (already
 * scaled) lives in the layer's scratch for backward. */
#include <stdlib.h>

#include "activation_common.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  double rate;
  int rc = dt_config_get_double(cfg, section, "rate", 0.5, 0.0, 0.999, &rate, err);
  if (rc) return rc;
  float *r = malloc(sizeof *r);
  if (!r) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  *r = (float)rate;
  l->priv = r;
  return dt_activation_build(l, cfg, section, err);
}

static size_t scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch) {
  (void)dev;
  return (size_t)batch * dt_shape_size(&l->in_shape);
}

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  const float rate = *(const float *)l->priv;
  size_t n = (size_t)batch * dt_shape_size(&l->in_shape);
  float *mask = l->scratch;
  if (!ctx->training || rate == 0.0f) {
    dt_device_copy(ctx->stream, y, x, n * sizeof(float), DT_COPY_D2D);
    dt_device_fill(ctx->stream, mask, n, 1.0f);
    return;
  }
  dt_device_dropout_forward(ctx->stream, n, rate, ctx->rng, x, y, mask);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (!dx) return;
  dt_device_mul(ctx->stream, (size_t)batch * dt_shape_size(&l->in_shape), dy, l->scratch, dx);
}

const dt_layer_ops_t dt_layer_dropout = {.type = "dropout",
                                         .build = build,
                                         .scratch_floats = scratch_floats,
                                         .forward = forward,
                                         .backward = backward};
