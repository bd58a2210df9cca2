/* Checkpoints of a GAN run: both models, both optimizers, the position and every
 * rank's noise streams, so that a run killed at any moment and resumed ends with the
 * same bits as one that never stopped.
 *
 * A GAN checkpoint is a checkpoint directory (dtrain/checkpoint.h: atomic, with a
 * manifest of sizes and CRC32Cs) holding
 *   generator.safetensors                 G's parameters and non-trainable state
 *   discriminator.safetensors             D's
 *   generator_optimizer.safetensors       G's optimizer moments ("<param>.moment1/2")
 *   discriminator_optimizer.safetensors   D's
 *   gan.json                              step, epoch, batch in the epoch, world, seed,
 *                                         both optimizers' type and step count, the
 *                                         shared z stream, and per rank: its noise
 *                                         stream and the epoch's running sums
 * Rank 0 writes every file (the ranks' few numbers are gathered to it). A GAN run
 * resumes only with the world size it was saved with. The single-model format
 * (checkpointing.h) is unchanged. */
#ifndef DTRAIN_WORKER_GAN_CKPT_H
#define DTRAIN_WORKER_GAN_CKPT_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpointing.h"
#include "dtrain/comm.h"
#include "dtrain/log.h"
#include "dtrain/rng.h"
#include "gan_step.h"

/* Where a GAN run is, and what of it is not in the models and optimizers. */
typedef struct {
  long step, epoch, batch_in_epoch; /* global steps done; the next batch (0-based) */
  double sums[4];   /* this rank's epoch sums: d_loss, g_loss, D(x), D(G(z)) */
  long batches;     /* steps in sums */
  dt_rng_t rng;     /* this rank's noise for stochastic layers */
  dt_rng_t zrng;    /* z for the whole global batch: the same on every rank */
} gan_position_t;

typedef struct {
  const ckpt_options_t *opt;
  const dt_config_t *cfg; /* stored in gan.json's neighbour files' metadata */
  dt_comm_t *comm;
  dt_log_t *log;
  uint64_t seed;
} gan_ckpt_env_t;

/* Writes checkpoint ckpt-<step> under opt->dir (collective). */
int gan_ckpt_save(const gan_ckpt_env_t *env, gan_t *gan, const gan_position_t *pos,
                  const char *why, dt_error_t *err);

/* Loads the newest good checkpoint under `from` (a root or one checkpoint) into gan
 * and pos (collective); *found false when there is none. */
int gan_ckpt_resume(const gan_ckpt_env_t *env, gan_t *gan, gan_position_t *pos,
                    const char *from, bool *found, dt_error_t *err);

#endif
