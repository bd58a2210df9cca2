/* The training loop: data, model, optimizer, schedule and communicator put together.
 *
 * One step: gather the rank's slice of the global batch into the model's input,
 * forward, loss, backward (which starts the gradient buckets' all-reduces as their
 * gradients become final), wait for the averaged gradients, optimizer update.
 * Nothing in the step allocates. */
#ifndef DTRAIN_WORKER_TRAINER_H
#define DTRAIN_WORKER_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/callbacks.h"
#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/data.h"
#include "dtrain/device.h"
#include "dtrain/grad_sync.h"
#include "dtrain/log.h"
#include "dtrain/model.h"
#include "dtrain/optim.h"
#include "dtrain/schedule.h"
#include "checkpointing.h"
#include "options.h"
#include "progress.h"
#include "ps_sync.h"
#include "train_log.h"

/* What a loss with float targets is trained against. */
/* bits: output i is trained on bit i of the label (the binary-addition task). */
typedef enum { TARGET_LABELS, TARGET_ONE_HOT, TARGET_INPUT, TARGET_BITS } target_kind;

typedef struct {
  double loss, accuracy; /* accuracy is NaN for losses without one */
  double exact;          /* target = bits: the share of samples with every bit right */
  size_t samples;
} eval_result_t;

typedef struct trainer {
  dt_config_t *cfg;
  run_options_t opt;
  ckpt_options_t ckpt;
  dt_log_t log;
  dt_comm_t *comm;
  dt_device_t *device; /* where the model lives; main()'s */
  progress_t progress;
  train_log_t tlog;

  dt_dataset_t train_file, test_file; /* own the loaded data */
  dt_dataset_t train, val, test;      /* views */

  dt_model_t model;
  target_kind target;
  dt_optim_t optim;
  dt_schedule_t schedule;
  dt_grad_sync_t sync; /* the bucketed gradient exchange, hooked into backward */
  ps_sync_t ps;        /* sync.mode = ps: gradients to parameter servers (opt.ps) */
  /* Keras-style callbacks: their decisions follow metrics reduced over all ranks, so
   * every rank decides the same. */
  dt_metric_mask metrics;  /* the epoch metrics this run produces */
  dt_early_stopping_t early_stopping;
  dt_reduce_lr_t reduce_lr;
  dt_csv_log_opts_t csv_opts;
  dt_csv_log_t csv;        /* rank 0, when csv_opts.path is set */
  double clipnorm;         /* [train] clipnorm: clip the global gradient norm (0: off) */
  float *best_weights;     /* (num_params + num_states) for restore_best_weights, or NULL */
  bool resumed;            /* this run continues a checkpoint */
  /* Test-only fault switch: this rank stops answering at this step (1-based; 0:
   * never), from DT_TEST_STALL_RANK and DT_TEST_STALL_AT_STEP. */
  long stall_at_step;

  uint32_t *perm;   /* (train.n) this epoch's order */
  int32_t *labels;  /* (capacity) labels of the current batch */
  float *targets;   /* (capacity, out) float targets, or NULL */
  dt_rng_t rng;     /* the rank's stream for dropout and other noise */
  long steps_per_epoch;
  long step;        /* global steps done */
  /* The position: the next batch to run is batch_in_epoch of epoch (both 0-based), and
   * the running sums of this rank's training metrics over the epoch so far. They are
   * what a checkpoint taken between two steps must hold to continue exactly. */
  long epoch, batch_in_epoch;
  double epoch_loss_sum, epoch_correct, epoch_total;
  long epoch_batches; /* batches in epoch_loss_sum (fewer than batch_in_epoch after a
                       * resume with another world size, whose sums start over) */
  long steps_run;     /* steps this process ran (not counting those before a resume) */
  /* The best value of checkpoint.monitor so far (save_best_only), if has_best. */
  double best_metric;
  bool has_best;
  long last_ckpt_step; /* -1: none written by this run yet */
  int ckpt_failures;   /* checkpoints that could not be written (reported, not fatal) */
  bool preempted;      /* stopped by SIGTERM/SIGINT after writing a checkpoint */
  double comm_wait_s, step_s; /* over the run: waiting for gradients after backward, and
                               * whole steps; their ratio is the exposed communication */
  eval_result_t test_result;
} trainer_t;

/* Reads the whole config (errors are DT_ERR_CONFIG/DT_ERR_SHAPE), loads the data and
 * builds everything, the model on dev; fails on any config key that nothing read. */
int trainer_setup(trainer_t *t, dt_config_t *cfg, const char *config_path, dt_comm_t *comm,
                  dt_device_t *dev, dt_log_t log, bool show_progress, dt_error_t *err);

/* Trains for the configured epochs, then evaluates on the test set (t->test_result).
 * A SIGTERM or SIGINT ends it early after a checkpoint, with t->preempted set. */
int trainer_run(trainer_t *t, dt_error_t *err);

/* Loss and accuracy of the model on ds, with this rank's share reduced across ranks. */
int trainer_evaluate(trainer_t *t, const dt_dataset_t *ds, eval_result_t *out, dt_error_t *err);

void trainer_free(trainer_t *t);

#endif
