/* The saved models a GAN run leaves behind (final_model.h's, for two models): at its end,
 * and when a signal stops it, rank 0 writes
 *   <run folder>/model/          the generator, the model users sample from
 *   <run folder>/discriminator/  the discriminator
 * (with train.model_dir set: that folder and <model_dir>-discriminator; none with
 * train.save_model = false). A resumed run with nothing left to train writes them too.
 *
 * Each is an ordinary saved model (saved_model.h) that saved_model_load rebuilds alone:
 * its config is the model's own sections of the run's config without their prefix
 * ([generator.layer.N] become [layer.N], with [optimizer] and [schedule]), plus
 * [model] input (the generator: latent_dim; the discriminator: the image shape) and the
 * run's [train] batch_size and threads. The generator's preprocess.json says its input is
 * latent_dim unscaled values ("format": "numpy", "scale": "none"), so `generate` feeds it
 * z ~ N(0, 1), `predict` takes z from a .npy file, and `export` writes it as ONNX; the
 * discriminator's is the run's (it reads images as the run did). */
#ifndef DTRAIN_WORKER_GAN_MODEL_H
#define DTRAIN_WORKER_GAN_MODEL_H

#include <stdbool.h>

#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "final_model.h"
#include "gan_step.h"

/* What of the run goes into its models besides the two models. */
typedef struct {
  dt_comm_t *comm;
  const char *preprocess_json; /* the run's (the discriminator's input) */
  const char *run_dir;         /* the run folder */
  dt_log_t *log;
  long step, epoch;
} gan_model_run_t;

/* Writes both models as saved models (see above), with run_cfg's [train] in their
 * configs; `why` describes the weights ("final,
 * epoch 10", ...). With average_states, collective in a multi-rank job: each model's
 * layer state becomes the ranks' average first. A write that fails is logged and sets
 * o->failed; only a failed collective or a config that cannot be made is returned. */
int gan_model_save(final_model_opts_t *o, const dt_config_t *run_cfg, const gan_model_run_t *r,
                   gan_t *gan, const char *why, bool average_states, dt_error_t *err);

#endif
