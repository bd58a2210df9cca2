/* The training loop: data, model, optimizer, schedule and the exchange put together.
 *
 * One step: gather the rank's slice of the global batch into the model's input,
 * forward, loss, backward (during which the exchange may start sending gradients),
 * the exchange's reduce (the gradients are averaged over replicas), clipping, the
 * exchange's update (the new parameters). Nothing in the step allocates, and nothing in
 * it depends on how the replicas exchange: that is the exchange's table (exchange.h),
 * chosen once at setup. What a checkpoint records of the run is its run state
 * (run_state.h). */
#ifndef DTRAIN_WORKER_TRAINER_H
#define DTRAIN_WORKER_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/callbacks.h"
#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/data.h"
#include "dtrain/device.h"
#include "dtrain/log.h"
#include "dtrain/model.h"
#include "dtrain/optim.h"
#include "dtrain/schedule.h"
#include "dtrain/test_hooks.h"
#include "checkpointing.h"
#include "exchange.h"
#include "latent.h"
#include "final_model.h"
#include "model_eval.h"
#include "multi_io.h"
#include "options.h"
#include "progress.h"
#include "run_data.h"
#include "run_state.h"
#include "train_log.h"

/* target_kind and eval_result_t are in model_eval.h. */

/* What the command line (main.c) decides about a run, beside its config. */
typedef struct {
  progress_mode progress; /* the display inside an epoch (progress.h) */
  double progress_every_s; /* PROGRESS_LINES: seconds between lines */
  bool resume;           /* --resume was given (every rank must agree on it) */
  bool config_only;      /* stop once every setting is read (--print-config): the data
                          * and the model's shape are loaded, nothing else is made */
  dt_test_hooks_t hooks; /* test-only switches (test_hooks.h) */
} trainer_flags_t;

typedef struct trainer {
  dt_config_t *cfg;
  run_options_t opt;
  ckpt_options_t ckpt;
  final_model_opts_t final_model; /* the model written at the end (final_model.h) */
  dt_test_hooks_t hooks; /* test-only fault switches (test_hooks.h) */
  dt_log_t log;
  dt_comm_t *comm;
  dt_device_t *device; /* where the model lives; main()'s */
  progress_t progress;
  train_log_t tlog;

  run_data_t data;         /* the splits, their scaling and preprocessing */
  char *preprocess_json;   /* run_data_preprocess_json, for every checkpoint */
  struct dt_loader *loader; /* prepares the next training batch (trainer_run) */

  dt_model_t model;
  target_kind target;
  dt_optim_t optim;
  dt_schedule_t schedule;
  exchange_t exchange;     /* how replicas stay in step: single, allreduce or ps */
  dt_metric_mask metrics;  /* the epoch metrics this run produces */
  dt_csv_log_opts_t csv_opts;
  dt_csv_log_t csv;        /* rank 0, when csv_opts.path is set */

  uint32_t *perm;   /* (train.n) this epoch's order */
  int32_t *labels;  /* (capacity) labels of the current batch */
  float *targets;   /* (capacity, out) float targets, or NULL */
  long steps_per_epoch;
  /* The position, metrics and callbacks: what a checkpoint holds besides the model and
   * the optimizer. Callback decisions follow metrics reduced over all ranks, so every
   * rank decides the same. */
  run_state_t run;
  exchange_stats_t stats; /* this process's steps and their timing */
  int ckpt_failures;   /* checkpoints that could not be written (reported, not fatal) */
  bool preempted;      /* stopped by SIGTERM/SIGINT after writing a checkpoint */
  eval_result_t test_result;
  /* A model whose layers add loss terms (a VAE): this process's sums of the epoch's
   * reconstruction and (weighted) KL terms over aux_batches batches, for the epoch line;
   * and where the prior samples of the TensorBoard picture come from. */
  bool has_aux;
  double epoch_recon_sum, epoch_kl_sum;
  long aux_batches;
  latent_t latent;
  bool has_latent;
  /* A model with several outputs (multi_io.h): the outputs' targets and this epoch's
   * per-output metrics of this process (not in checkpoints: after a resume they cover
   * the batches run since). */
  multi_io_t mio;
  multi_io_sums_t mio_sums;
  double mio_batches;
} trainer_t;

/* Reads the whole config (errors are DT_ERR_CONFIG/DT_ERR_SHAPE), loads the data and
 * builds everything, the model on dev; fails on any config key that nothing read. */
int trainer_setup(trainer_t *t, dt_config_t *cfg, const char *config_path, dt_comm_t *comm,
                  dt_device_t *dev, dt_log_t log, const trainer_flags_t *flags,
                  dt_error_t *err);

/* Continues from the newest good checkpoint under `from` (ckpt_resume); *found is false
 * when there is none. Collective. */
int trainer_resume(trainer_t *t, const char *from, bool *found, dt_error_t *err);

/* Trains for the configured epochs, writes the final model (final_model.h), then
 * evaluates on the test set (t->test_result). A SIGTERM or SIGINT ends it early after a
 * checkpoint (when checkpoint.dir is set) and the final model, with t->preempted set. */
int trainer_run(trainer_t *t, dt_error_t *err);

/* Loss and accuracy of the model on ds, with this rank's share reduced across ranks. */
int trainer_evaluate(trainer_t *t, const dt_dataset_t *ds, eval_result_t *out, dt_error_t *err);

void trainer_free(trainer_t *t);

#endif
