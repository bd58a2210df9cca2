/* Dense (fully connected) layer: y = x W + b, W of shape (in, units) as in Keras.
 * Inputs of any shape are flattened, unless time_distributed = true: then W applies to
 * the last axis of each sample, (T, F) -> (T, units), like Keras' Dense on a 3-d input
 * or TimeDistributed(Dense). All three products are GEMMs on the device. */
#include <stdlib.h>

#include "dtrain/layer.h"

typedef struct {
  int in, units;
  int rows; /* rows of `in` values per sample: 1, or T with time_distributed */
} dense_t;

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  long units;
  dt_init_kind kinit, binit;
  bool time_distributed;
  int rc;
  if (!dt_config_has_key(cfg, section, "units"))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: a dense layer needs 'units'",
                        dt_config_where(cfg, section, NULL));
  if ((rc = dt_config_get_int(cfg, section, "units", 0, 1, 1 << 24, &units, err)) ||
      (rc = dt_layer_get_init(cfg, section, "kernel_initializer", DT_INIT_GLOROT_UNIFORM, &kinit,
                              err)) ||
      (rc = dt_layer_get_init(cfg, section, "bias_initializer", DT_INIT_ZEROS, &binit, err)) ||
      (rc = dt_config_get_bool(cfg, section, "time_distributed", false, &time_distributed, err)))
    return rc;
  dense_t *d = malloc(sizeof *d);
  if (!d) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  d->units = (int)units;
  l->priv = d;
  if (time_distributed) {
    /* Every row along the last axis is one sample of a flat dense layer. */
    d->in = l->in_shape.dims[l->in_shape.ndim - 1];
    d->rows = (int)(dt_shape_size(&l->in_shape) / (size_t)d->in);
    l->out_shape = l->in_shape;
    l->out_shape.dims[l->out_shape.ndim - 1] = d->units;
  } else {
    d->in = (int)dt_shape_size(&l->in_shape);
    d->rows = 1;
    l->out_shape = dt_shape_1d(d->units);
  }
  dt_shape_t kshape = {2, {d->in, d->units, 1, 1}};
  dt_layer_declare_param(l, "kernel", kshape, kinit, d->in, d->units, true);
  dt_layer_declare_param(l, "bias", dt_shape_1d(d->units), binit, d->in, d->units, false);
  return 0;
}

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  const dense_t *d = l->priv;
  const int rows = batch * d->rows;
  /* Start from the bias in every row, then accumulate x W on top (beta = 1). */
  dt_device_broadcast_rows(ctx->stream, (size_t)rows, d->units, (size_t)d->units, l->w[1], y);
  dt_device_gemm(ctx->stream, DT_NO_TRANS, DT_NO_TRANS, rows, d->units, d->in, 1.0f, x, d->in,
                 l->w[0], d->units, 1.0f, y, d->units);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  (void)y;
  const dense_t *d = l->priv;
  const int rows = batch * d->rows;
  /* dW (in, units) = x^T dy */
  dt_device_gemm(ctx->stream, DT_TRANS, DT_NO_TRANS, d->in, d->units, rows, 1.0f, x, d->in, dy,
                 d->units, 0.0f, l->g[0], d->units);
  /* db = column sums of dy */
  dt_device_col_sums(ctx->stream, (size_t)rows, d->units, dy, l->g[1]);
  /* dx (batch, in) = dy W^T; skipped for the first layer, whose input needs no gradient. */
  if (dx)
    dt_device_gemm(ctx->stream, DT_NO_TRANS, DT_TRANS, rows, d->in, d->units, 1.0f, dy, d->units,
                   l->w[0], d->units, 0.0f, dx, d->in);
}

const dt_layer_ops_t dt_layer_dense = {
    .type = "dense", .build = build, .forward = forward, .backward = backward};
