/* A GAN run: a run config with a [gan] section trains a generator and a discriminator
 * (gan_step.h) on the training images of [data], alternating d_steps discriminator
 * steps with one generator step, in one process or as the ranks of a synchronous MPI
 * job (both models' gradients averaged every step). Parameter servers are not
 * supported: sync.mode = ps is a config error.
 *
 * A step of the run is d_steps discriminator steps, each on the next global batch of
 * real images, and one generator step; an epoch is as many steps as its batches
 * allow. Checkpoints (gan_ckpt.h), progress and epoch lines, and TensorBoard (losses,
 * D(x), D(G(z)), and a grid of images G makes from a fixed set of z) follow the
 * [checkpoint] and [tensorboard] settings of an ordinary run. */
#ifndef DTRAIN_WORKER_GAN_TRAINER_H
#define DTRAIN_WORKER_GAN_TRAINER_H

#include <stdbool.h>

#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/device.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "trainer.h"

/* True when cfg describes a GAN run (it has a [gan] section). */
bool gan_is_run(const dt_config_t *cfg);

/* What main() hands a GAN run beside the config. */
typedef struct {
  const char *config_path;
  const trainer_flags_t *flags;
  const char *resume_dir;       /* --resume DIR (NULL: checkpoint.dir) when flags->resume */
  const char *save_params_path; /* --save-params: G's then D's parameters, raw float32 */
} gan_cli_t;

/* Sets up, resumes if asked, trains and saves; errors as trainer_setup's and
 * trainer_run's. */
int gan_main(dt_config_t *cfg, const gan_cli_t *cli, dt_comm_t *comm, dt_device_t *dev,
             dt_log_t log, dt_error_t *err);

#endif
