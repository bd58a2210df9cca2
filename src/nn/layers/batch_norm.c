/* Batch normalization over the last axis (Keras BatchNormalization, axis = -1): the
 * features of (N, F), the channels of channels-last (H, W, C) or (T, F) inputs.
 *
 * Training: each channel is normalized with the mean and biased variance of the batch
 * over every other axis, y = gamma * (x - mean) / sqrt(var + epsilon) + beta, and the
 * moving averages move towards them:
 *   moving_mean     = momentum * moving_mean     + (1 - momentum) * mean
 *   moving_variance = momentum * moving_variance + (1 - momentum) * var
 * The variance fed to the moving average is the biased one (divided by the number of
 * values), as in Keras 3 and in TF2 Keras' non-fused path (tf.nn.moments); TF's fused
 * 4-D kernel and PyTorch use the unbiased one there instead. Using the same statistic
 * for normalizing and for the average keeps evaluation consistent with training, and
 * for the batch sizes that matter the two differ by a factor M / (M - 1) of 1.00002
 * (64 images of 28x28) or 1.016 (64 dense rows).
 *
 * Evaluation: the moving averages take the place of the batch statistics.
 *
 * The kernels are the device's (dt_device_batch_norm_forward/backward): they keep the
 * statistics of the last forward in the layer's scratch for backward. */
#include <stdlib.h>

#include "dtrain/layer.h"
#include "dtrain/layer_info.h"
#include "info_parts.h"

typedef struct {
  dt_batch_norm_desc_t desc;
  size_t rows;     /* per sample: input size / C */
  int gamma, beta; /* parameter indices, -1 when scale / center is off */
} batch_norm_t;

static size_t scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch) {
  (void)batch;
  const batch_norm_t *bn = l->priv;
  return dt_device_batch_norm_workspace(dev, bn->desc.channels);
}

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  double momentum, epsilon;
  bool center, scale;
  int rc;
  if ((rc = dt_config_get_double(cfg, section, "momentum", 0.99, 0.0, 1.0, &momentum, err)) ||
      (rc = dt_config_get_double(cfg, section, "epsilon", 1e-3, 1e-12, 1.0, &epsilon, err)) ||
      (rc = dt_config_get_bool(cfg, section, "center", true, &center, err)) ||
      (rc = dt_config_get_bool(cfg, section, "scale", true, &scale, err)))
    return rc;
  batch_norm_t *bn = malloc(sizeof *bn);
  if (!bn) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  const int channels = l->in_shape.dims[l->in_shape.ndim - 1];
  bn->desc = (dt_batch_norm_desc_t){channels, momentum, (float)epsilon};
  bn->rows = dt_shape_size(&l->in_shape) / (size_t)channels;
  bn->gamma = bn->beta = -1;
  l->priv = bn;
  l->out_shape = l->in_shape;
  const dt_shape_t cs = dt_shape_1d(channels);
  /* Keras' names and order; neither takes weight decay. */
  if (scale) {
    bn->gamma = l->nparams;
    dt_layer_declare_param(l, "gamma", cs, DT_INIT_ONES, channels, channels, false);
  }
  if (center) {
    bn->beta = l->nparams;
    dt_layer_declare_param(l, "beta", cs, DT_INIT_ZEROS, channels, channels, false);
  }
  dt_layer_declare_state(l, "moving_mean", cs, DT_INIT_ZEROS);
  dt_layer_declare_state(l, "moving_variance", cs, DT_INIT_ONES);
  return 0;
}

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  const batch_norm_t *bn = l->priv;
  dt_device_batch_norm_forward(ctx->stream, &bn->desc, ctx->training,
                               (size_t)batch * bn->rows * (size_t)bn->desc.channels, x,
                               bn->gamma >= 0 ? l->w[bn->gamma] : NULL,
                               bn->beta >= 0 ? l->w[bn->beta] : NULL, l->s[0], l->s[1], y,
                               l->scratch);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  (void)y;
  const batch_norm_t *bn = l->priv;
  dt_device_batch_norm_backward(ctx->stream, &bn->desc,
                                (size_t)batch * bn->rows * (size_t)bn->desc.channels, x, dy,
                                bn->gamma >= 0 ? l->w[bn->gamma] : NULL,
                                bn->gamma >= 0 ? l->g[bn->gamma] : NULL,
                                bn->beta >= 0 ? l->g[bn->beta] : NULL, dx, l->scratch);
}

const dt_layer_ops_t dt_layer_batch_norm = {.type = "batch_norm",
                                            .build = build,
                                            .scratch_floats = scratch_floats,
                                            .forward = forward,
                                            .backward = backward};

void dt_batch_norm_info(const dt_layer_t *l, dt_layer_info_t *out) {
  const batch_norm_t *bn = l->priv;
  out->epsilon = bn->desc.epsilon;
  out->gamma = bn->gamma;
  out->beta = bn->beta;
}
