/* Sampling: the reparameterization layer of a variational autoencoder (Keras' VAE
 * example's Sampling layer, with its add_loss). Two inputs of one shape, z_mean and
 * z_log_var; the output z = z_mean + exp(z_log_var / 2) eps with eps ~ N(0, 1) drawn from
 * the model's stream of numbers (ctx->rng, in order, as dropout draws), so a resumed run
 * draws the same noise. The layer adds kl_weight times the KL divergence of
 * N(z_mean, exp(z_log_var)) from the prior N(0, 1), summed over the latent values of a
 * sample and averaged over the batch, to the loss (ops->aux_loss); its backward adds that
 * term's gradient to dL/dz_mean and dL/dz_log_var.
 *
 * Evaluation samples too when given a generator (Keras' Sampling always samples): the
 * negative ELBO a validation or test pass reports is then the usual one-sample estimate,
 * not the optimistic value at the mean. Without a generator (ctx->rng NULL) eps is 0 and
 * z = z_mean: the deterministic reconstructions that pictures of a VAE show. The trainer
 * gives evaluation a stream of its own, so evaluating never moves the training noise. */
#include <stdbool.h>
#include <stdlib.h>

#include "dtrain/layer.h"

typedef struct {
  float kl_weight;
} sampling_t;

static bool same_shape(const dt_shape_t *a, const dt_shape_t *b) {
  if (a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->dims[d] != b->dims[d]) return false;
  return true;
}

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  double w;
  int rc = dt_config_get_double(cfg, section, "kl_weight", 1.0, 0.0, 1e6, &w, err);
  if (rc) return rc;
  if (!same_shape(&l->in_shapes[0], &l->in_shapes[1])) {
    char s0[64], s1[64];
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] sampling needs z_mean and z_log_var of one shape, but '%s' "
                        "is %s and '%s' is %s",
                        dt_config_where(cfg, section, "inputs"), section, l->input_names[0],
                        dt_shape_str(&l->in_shapes[0], s0, sizeof s0), l->input_names[1],
                        dt_shape_str(&l->in_shapes[1], s1, sizeof s1));
  }
  sampling_t *p = calloc(1, sizeof *p);
  if (!(l->priv = p)) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building [%s]", section);
  p->kl_weight = (float)w;
  l->out_shape = l->in_shapes[0];
  return 0;
}

/* eps (batch, n), then the per-sample KL values (batch). */
static size_t scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch) {
  (void)dev;
  return (size_t)batch * (dt_shape_size(&l->out_shape) + 1);
}

/* The KL values of a batch of `batch`, after its eps. */
static float *kl_values(const dt_layer_t *l, int batch) {
  return l->scratch + (size_t)batch * dt_shape_size(&l->out_shape);
}


static void forward_multi(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,
                          const float *const *xs, float *y) {
  dt_device_gaussian_sample_forward(ctx->stream, batch, dt_shape_size(&l->out_shape), ctx->rng,
                                    xs[0], xs[1], l->scratch, y, kl_values(l, batch));
}

static void backward_multi(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,
                           const float *const *xs, const float *y, const float *dy,
                           float *const *dxs) {
  (void)y;
  const sampling_t *p = l->priv;
  dt_device_gaussian_sample_backward(ctx->stream, batch, dt_shape_size(&l->out_shape),
                                     p->kl_weight / (float)batch, xs[0], xs[1], l->scratch, dy,
                                     dxs[0], dxs[1]);
}

static const float *aux_loss(const dt_layer_t *l, int batch, float *weight) {
  *weight = ((const sampling_t *)l->priv)->kl_weight;
  return kl_values(l, batch);
}

const dt_layer_ops_t dt_layer_sampling = {.type = "sampling",
                                          .build = build,
                                          .scratch_floats = scratch_floats,
                                          .min_inputs = 2,
                                          .max_inputs = 2,
                                          .forward_multi = forward_multi,
                                          .backward_multi = backward_multi,
                                          .backward_ignores_y = true,
                                          .aux_loss = aux_loss};
