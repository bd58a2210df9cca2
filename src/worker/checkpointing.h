/* What a training checkpoint holds, when one is written, and resuming from one.
 *
 * A checkpoint (an atomic directory, see dtrain/checkpoint.h) of a run holds:
 *   model.safetensors      parameters and non-trainable state (batch norm's moving
 *                          averages, averaged over ranks); __metadata__: step, epoch,
 *                          world and the run's whole config
 *   optimizer.safetensors  the optimizer's moment buffers, one tensor per parameter
 *                          tensor and moment; __metadata__: its type and step count
 *   trainer.json           the shared position: step, epoch, batches done in the
 *                          epoch, samples done in the epoch, the world size, and the
 *                          callbacks' state
 *   preprocess.json        what the run computed about its data, so that prediction
 *                          repeats it: input shape, scaling (and standardization
 *                          statistics), class names, vocabulary, image size
 *   rank-N.safetensors     rank N's own state: its PRNG words, its running sums of the
 *                          epoch's metrics (__metadata__), its own copy of the
 *                          non-trainable state (tensors)
 * In a multi-rank job rank 0 writes the shared files and every rank its own file into
 * the same directory (on storage all ranks see); rank 0 commits once all succeeded.
 *
 * Parameters and optimizer state do not depend on the number of ranks, so a run may
 * resume with another world size: the position in the epoch is re-derived from the
 * samples done, and ranks without a state file of their own start fresh streams. */
#ifndef DTRAIN_WORKER_CHECKPOINTING_H
#define DTRAIN_WORKER_CHECKPOINTING_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/checkpoint.h"
#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/model.h"
#include "dtrain/optim.h"
#include "run_state.h"

typedef enum { MONITOR_MIN, MONITOR_MAX } monitor_mode;

typedef struct {
  char dir[DT_CKPT_PATH_MAX]; /* the checkpoint root; empty: no checkpoints */
  long every_steps;           /* 0: not by steps */
  long every_epochs;          /* 0: not by epochs */
  long keep_last;             /* 0: keep all */
  bool save_best_only;        /* epoch checkpoints only when the monitored metric improved */
  const char *monitor;        /* val_loss, val_accuracy, loss, accuracy */
  monitor_mode mode;
} ckpt_options_t;

/* Reads [checkpoint]. */
int ckpt_options_read(dt_config_t *cfg, ckpt_options_t *o, dt_error_t *err);

/* What checkpointing needs of the run besides its state, model and optimizer. */
typedef struct {
  const ckpt_options_t *opt;
  const dt_config_t *cfg; /* the run's config, stored in model.safetensors */
  dt_comm_t *comm;
  dt_log_t *log;
  uint64_t seed;          /* train.seed: the data order follows (seed, epoch) */
  long batch_size;        /* per rank */
  long steps_per_epoch;   /* in this world size */
  const char *preprocess_json; /* written as preprocess.json (NULL: none) */
} ckpt_env_t;

/* Writes a checkpoint of the run's current position (collective in a multi-rank job:
 * every rank calls it at the same step). `why` is logged ("every 100 steps",
 * "preempted"). On failure nothing becomes `latest`; every rank gets the error. On
 * success rs->last_ckpt_step is the step. */
int ckpt_save(const ckpt_env_t *env, run_state_t *rs, dt_model_t *m, const dt_optim_t *o,
              const char *why, dt_error_t *err);

/* Resumes from the newest good checkpoint under `from` (a root or one checkpoint's
 * directory): rank 0 finds and verifies it, every rank loads the same one into rs, m
 * and o. Sets *found = false (and changes nothing) when `from` holds no checkpoint at
 * all. Collective. */
int ckpt_resume(const ckpt_env_t *env, run_state_t *rs, dt_model_t *m, dt_optim_t *o,
                const char *from, bool *found, dt_error_t *err);

/* A model file's tensors (model.safetensors, in checkpoints and saved models): the
 * parameters (at params), then the layers' state (at state), each with its base
 * pointer. *tensors and *bases are allocated (free both); on failure nothing is. */
int ckpt_weight_tensors(const dt_model_t *m, float *params, float *state,
                        dt_param_info_t **tensors, float ***bases, int *n, dt_error_t *err);

/* The optimizer file's tensors: each moment of each parameter, "<param>.moment<k>", at the
 * parameter's offset in the optimizer's moment buffer. Allocated as above. */
int ckpt_optimizer_tensors(const dt_model_t *m, const dt_optim_t *o, dt_param_info_t **tensors,
                           float ***bases, int *n, dt_error_t *err);

#endif
