/* A GAN's two models and its alternating updates (DCGAN, Radford et al.; the
 * non-saturating loss of Goodfellow et al.).
 *
 * The generator G and the discriminator D are ordinary models (dtrain/model.h), each
 * built from its own sections of the run's config: [generator.layer.N] and
 * [discriminator.layer.N] become [layer.N] of a config of their own
 * (dt_config_extract), with their own [*.optimizer] and [*.schedule]. G maps z
 * (latent_dim values drawn from N(0, 1)) to an image of the data's sample shape; D maps
 * an image to one logit.
 *
 * One discriminator step: D sees `batch` real images and `batch` images G makes, as one
 * batch of 2 x batch with targets 1 - label_smoothing (real) and 0 (fake); the loss is
 * binary cross-entropy on the logits, averaged over the 2 x batch samples. One
 * generator step: G makes `batch` images from new z, D (unchanged) scores them, and the
 * loss is the BCE against target 1 (the non-saturating loss -log D(G(z))); the gradient
 * flows through D to its input and from there back through G. Only G's parameters
 * change in it.
 *
 * With a communicator of several ranks, each model's gradients are averaged across
 * ranks before its optimizer step, so every replica stays the same. */
#ifndef DTRAIN_WORKER_GAN_STEP_H
#define DTRAIN_WORKER_GAN_STEP_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/device.h"
#include "dtrain/error.h"
#include "dtrain/model.h"
#include "dtrain/optim.h"
#include "dtrain/rng.h"

/* [gan]: what the two models are trained with. */
typedef struct {
  long latent_dim;        /* values of z */
  long d_steps;           /* discriminator steps per generator step */
  double label_smoothing; /* real targets are 1 - this (one-sided smoothing) */
  long samples;           /* images in the TensorBoard grid (a square number fits best) */
  long sample_every;      /* epochs between grids (0: none) */
} gan_options_t;

/* Reads [gan]. */
int gan_options_read(dt_config_t *cfg, gan_options_t *o, dt_error_t *err);

typedef struct {
  dt_model_t g, d;
  dt_config_t *gcfg, *dcfg; /* each model's own sections, renamed ([layer.N], [optimizer]) */
  dt_optim_config_t g_ocfg, d_ocfg;
  double g_lr, d_lr;        /* [generator.optimizer] lr, [discriminator.optimizer] lr */
  dt_optim_t g_opt, d_opt;
  gan_options_t opt;
  size_t img;               /* values per image */
  int batch;                /* real (and fake) images per rank and step */
  double clipnorm;          /* clip each model's global gradient norm (0: off) */
  dt_comm_t *comm;          /* averages gradients when world > 1; NULL: one process */
  float *dx;                /* (batch, img) dL/d(D's input) in the generator step */
  float *targets;           /* (2 batch) */
} gan_t;

/* What one step measured: the mean losses and the mean D output (a probability) on
 * the real and the generated images of the discriminator step. */
typedef struct {
  double d_loss, g_loss, d_real, d_fake;
} gan_stats_t;

/* Builds G and D on dev from cfg's [generator.*] and [discriminator.*] sections, for
 * images of shape `image`; reads each model's optimizer (and `lr`, default
 * default_lr). Errors name the sections. gan->gcfg and gan->dcfg keep the sections
 * for the schedules; gan_check_unused checks what nobody read. */
int gan_build(gan_t *gan, dt_config_t *cfg, dt_device_t *dev, dt_shape_t image,
              double default_lr, dt_error_t *err);

/* Fails on a key of the two models' sections that nothing read. */
int gan_check_unused(gan_t *gan, dt_error_t *err);

/* Activations for `batch` images per step, the optimizers' state, scratch. */
int gan_prepare(gan_t *gan, int batch, dt_error_t *err);

/* Fills z (n, latent_dim) from rng. */
void gan_sample_z(const gan_t *gan, dt_rng_t *rng, float *z, int n);

/* One discriminator step on real (batch, img) and G(z), z (batch, latent_dim); rng is
 * the noise of stochastic layers. Adds d_loss, d_real, d_fake to *stats. */
int gan_d_step(gan_t *gan, const float *real, const float *z, float lr, dt_rng_t *rng,
               gan_stats_t *stats, dt_error_t *err);

/* One generator step from z (batch, latent_dim). Sets stats->g_loss. */
int gan_g_step(gan_t *gan, const float *z, float lr, dt_rng_t *rng, gan_stats_t *stats,
               dt_error_t *err);

/* D's backward that also writes dL/d(input) (batch, D's input size) into dx_in: what
 * the generator step needs. m must have been prepared with input_grad set (gan_prepare
 * does that for D). */
void gan_backward_to_input(dt_model_t *m, int batch, float *dx_in);

void gan_free(gan_t *gan);

#endif
