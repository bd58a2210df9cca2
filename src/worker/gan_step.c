/* A GAN's two models and its alternating updates (see gan_step.h). */
#include "gan_step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/clip.h"
#include "dtrain/loss.h"

int gan_options_read(dt_config_t *cfg, gan_options_t *o, dt_error_t *err) {
  memset(o, 0, sizeof *o);
  int rc;
  if ((rc = dt_config_get_int(cfg, "gan", "latent_dim", 100, 1, 1L << 20, &o->latent_dim, err)) ||
      (rc = dt_config_get_int(cfg, "gan", "d_steps", 1, 1, 1000, &o->d_steps, err)) ||
      (rc = dt_config_get_double(cfg, "gan", "label_smoothing", 0.0, 0.0, 0.5,
                                 &o->label_smoothing, err)) ||
      (rc = dt_config_get_int(cfg, "gan", "samples", 64, 1, 1024, &o->samples, err)) ||
      (rc = dt_config_get_int(cfg, "gan", "sample_every", 1, 0, 1L << 20, &o->sample_every, err)))
    return rc;
  return 0;
}

/* One model's sections as a config of its own; its loss is set here, not by the user:
 * G's output is not compared with any target (mse fuses nothing, so a final sigmoid or
 * tanh runs in forward), D's is a logit for BCE (a final sigmoid is fused). */
static int model_config(dt_config_t *cfg, const char *name, const char *loss, dt_config_t **out,
                        dt_error_t *err) {
  dt_config_t *sub = dt_config_new();
  if (!(*out = sub)) return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading the config");
  int count, rc;
  if ((rc = dt_config_extract(sub, cfg, name, &count, err))) return rc;
  if (!dt_config_has_section(sub, "layer.1"))
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: a GAN run ([gan]) needs [%s.layer.1], [%s.layer.2], ... sections "
                        "for its %s", dt_config_where(cfg, "gan", NULL), name, name, name);
  char set[64];
  snprintf(set, sizeof set, "model.loss=%s", loss);
  return dt_config_override(sub, set, err);
}

static int build_one(gan_t *gan, dt_model_t *m, dt_config_t *cfg, const char *name,
                     dt_config_t *sub, dt_device_t *dev, dt_shape_t in, double default_lr,
                     dt_optim_config_t *ocfg, double *lr, dt_error_t *err) {
  (void)gan;
  (void)cfg;
  int rc;
  if ((rc = dt_model_build(m, dev, sub, in, err)) || (rc = dt_optim_config_read(sub, ocfg, err)) ||
      (rc = dt_config_get_double(sub, "optimizer", "lr", default_lr, 0.0, 1e6, lr, err)))
    return dt_error_prefix(err, "the %s: ", name);
  return 0;
}

int gan_build(gan_t *gan, dt_config_t *cfg, dt_device_t *dev, dt_shape_t image,
              double default_lr, dt_error_t *err) {
  memset(gan, 0, sizeof *gan);
  int rc;
  if ((rc = gan_options_read(cfg, &gan->opt, err))) return rc;
  gan->img = dt_shape_size(&image);
  if ((rc = model_config(cfg, "generator", "mse", &gan->gcfg, err)) ||
      (rc = model_config(cfg, "discriminator", "binary_crossentropy", &gan->dcfg, err)))
    return rc;
  dt_shape_t z = {1, {(int)gan->opt.latent_dim, 1, 1, 1}};
  if ((rc = build_one(gan, &gan->g, cfg, "generator", gan->gcfg, dev, z, default_lr,
                      &gan->g_ocfg, &gan->g_lr, err)) ||
      (rc = build_one(gan, &gan->d, cfg, "discriminator", gan->dcfg, dev, image, default_lr,
                      &gan->d_ocfg, &gan->d_lr, err)))
    return rc;
  char a[64], b[64];
  const dt_model_t *g = &gan->g, *d = &gan->d;
  if (dt_model_output_size(g) != gan->img) {
    const char *last = g->layers[g->nrun - 1].section;
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: the generator's last layer [generator.%s] makes %s (%zu values) "
                        "but the data's images are %s (%zu values)",
                        dt_config_where(gan->gcfg, last, NULL), last,
                        dt_shape_str(&g->out_shape, a, sizeof a), dt_model_output_size(g),
                        dt_shape_str(&image, b, sizeof b), gan->img);
  }
  if (dt_model_output_size(d) != 1) {
    const char *last = d->layers[d->nrun - 1].section;
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: the discriminator's last layer [discriminator.%s] has %zu outputs; "
                        "it must give one logit (units = 1)",
                        dt_config_where(gan->dcfg, last, NULL), last, dt_model_output_size(d));
  }
  return 0;
}

int gan_check_unused(gan_t *gan, dt_error_t *err) {
  int rc;
  if ((rc = dt_config_check_unused(gan->gcfg, err)))
    return dt_error_prefix(err, "the generator ([generator.*], named without the prefix "
                           "below): ");
  if ((rc = dt_config_check_unused(gan->dcfg, err)))
    return dt_error_prefix(err, "the discriminator ([discriminator.*], named without the "
                           "prefix below): ");
  return 0;
}

int gan_prepare(gan_t *gan, int batch, dt_error_t *err) {
  gan->batch = batch;
  int rc;
  /* D sees the real and the generated images as one batch; the generator step needs
   * the gradient of D's loss with respect to D's input. */
  gan->d.input_grad = true;
  if ((rc = dt_model_prepare(&gan->g, batch, err)) ||
      (rc = dt_model_prepare(&gan->d, 2 * batch, err)) ||
      (rc = dt_optim_init(&gan->g_opt, &gan->g_ocfg, gan->g.num_params, err)) ||
      (rc = dt_optim_init(&gan->d_opt, &gan->d_ocfg, gan->d.num_params, err)))
    return rc;
  if ((rc = dt_device_alloc(gan->d.dev, sizeof(float) * (size_t)batch * gan->img,
                            (void **)&gan->dx, err)))
    return rc;
  if (!(gan->targets = malloc(sizeof(float) * 2 * (size_t)batch)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the GAN's targets");
  return 0;
}

void gan_sample_z(const gan_t *gan, dt_rng_t *rng, float *z, int n) {
  for (size_t i = 0; i < (size_t)n * (size_t)gan->opt.latent_dim; i++) z[i] = dt_rng_normal(rng);
}

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The gradients averaged across ranks (if several), clipped, and the optimizer's step. */
static int update(gan_t *gan, dt_model_t *m, dt_optim_t *o, float lr, dt_error_t *err) {
  if (gan->comm && gan->comm->world > 1) {
    int rc = dt_comm_allreduce_avg(gan->comm, m->grad_buf, m->num_params, err);
    if (rc) return rc;
  }
  if (gan->clipnorm > 0) dt_clip_by_global_norm(m->grad_buf, m->num_params, (float)gan->clipnorm);
  dt_optim_begin_step(o);
  dt_optim_update(o, m->param_buf, m->grad_buf, 0, m->num_params, lr, m->params, m->nparams);
  return 0;
}

static int check_finite(double loss, const char *what, dt_error_t *err) {
  if (isfinite(loss)) return 0;
  return dt_error_set(err, DT_ERR_STATE, "the %s loss became %s; lower the learning rate or "
                      "check the data", what, isnan(loss) ? "NaN" : "infinite");
}

int gan_d_step(gan_t *gan, const float *real, const float *z, float lr, dt_rng_t *rng,
               gan_stats_t *stats, dt_error_t *err) {
  dt_model_t *g = &gan->g, *d = &gan->d;
  const int b = gan->batch;
  const size_t img = gan->img;
  memcpy(g->acts[0], z, sizeof(float) * (size_t)b * (size_t)gan->opt.latent_dim);
  const float *fake = dt_model_forward(g, b, true, rng);
  memcpy(d->acts[0], real, sizeof(float) * (size_t)b * img);
  memcpy(d->acts[0] + (size_t)b * img, fake, sizeof(float) * (size_t)b * img);
  for (int i = 0; i < b; i++) {
    gan->targets[i] = (float)(1.0 - gan->opt.label_smoothing);
    gan->targets[b + i] = 0.0f;
  }
  const float *y = dt_model_forward(d, 2 * b, true, rng);
  double loss = dt_loss_compute(DT_LOSS_BCE_LOGITS, y, 2 * b, 1, NULL, gan->targets, d->dout);
  double real_p = 0.0, fake_p = 0.0;
  for (int i = 0; i < b; i++) {
    real_p += sigmoid(y[i]);
    fake_p += sigmoid(y[b + i]);
  }
  dt_model_backward(d, 2 * b);
  int rc = update(gan, d, &gan->d_opt, lr, err);
  if (!rc) rc = check_finite(loss, "discriminator", err);
  if (rc) return rc;
  stats->d_loss += loss;
  stats->d_real += real_p / b;
  stats->d_fake += fake_p / b;
  return 0;
}

void gan_backward_to_input(dt_model_t *m, int batch, float *dx_in) {
  /* D is prepared with input_grad (gan_prepare): its backward also gives dL/d(input). */
  dt_model_backward(m, batch);
  dt_device_copy(m->stream, dx_in, dt_model_input_grad(m),
                 sizeof(float) * (size_t)batch * dt_model_input_size(m), DT_COPY_D2D);
}

int gan_g_step(gan_t *gan, const float *z, float lr, dt_rng_t *rng, gan_stats_t *stats,
               dt_error_t *err) {
  dt_model_t *g = &gan->g, *d = &gan->d;
  const int b = gan->batch;
  const size_t img = gan->img;
  memcpy(g->acts[0], z, sizeof(float) * (size_t)b * (size_t)gan->opt.latent_dim);
  const float *fake = dt_model_forward(g, b, true, rng);
  memcpy(d->acts[0], fake, sizeof(float) * (size_t)b * img);
  for (int i = 0; i < b; i++) gan->targets[i] = 1.0f;
  const float *y = dt_model_forward(d, b, true, rng);
  double loss = dt_loss_compute(DT_LOSS_BCE_LOGITS, y, b, 1, NULL, gan->targets, d->dout);
  /* D's parameter gradients are computed and dropped: D does not change in this step. */
  gan_backward_to_input(d, b, gan->dx);
  memcpy(g->dout, gan->dx, sizeof(float) * (size_t)b * img);
  dt_model_backward(g, b);
  int rc = update(gan, g, &gan->g_opt, lr, err);
  if (!rc) rc = check_finite(loss, "generator", err);
  if (rc) return rc;
  stats->g_loss += loss;
  return 0;
}

void gan_free(gan_t *gan) {
  if (gan->dx) dt_device_free(gan->d.dev, gan->dx);
  dt_model_free(&gan->g);
  dt_model_free(&gan->d);
  dt_optim_free(&gan->g_opt);
  dt_optim_free(&gan->d_opt);
  dt_config_free(gan->gcfg);
  dt_config_free(gan->dcfg);
  free(gan->targets);
  memset(gan, 0, sizeof *gan);
}
