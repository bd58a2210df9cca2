/* How the replicas of the model stay in step: one table of operations per way of
 * exchanging (single process, all-reduce across ranks, parameter servers), chosen once
 * at setup. The training loop calls the same operations in every mode:
 *
 *   setup:   exchange_setup (reads the mode's settings; a PS worker narrows the training
 *            set to its part), exchange_prepare (the model and optimizer exist: hook into
 *            backward, check the ranks agree), exchange_start (after any resume: a PS
 *            worker connects, learns its id if the servers assign it, and takes the
 *            servers' parameters), exchange_log_name (after start: where this process
 *            logs to TensorBoard inside the run)
 *   a step:  exchange_begin_step, forward, backward (the grads_ready hook sees each
 *            layer's final gradients), exchange_reduce (the gradients are the average
 *            over replicas), clipping, exchange_update (the new parameters: the local
 *            optimizer, or a push to and pull from the servers)
 *   between: exchange_agree_stop (every replica stops at the same step on a signal),
 *            exchange_sync_state (the layers' non-trainable state agrees at epoch end)
 *   the end: exchange_leave (stopped by a signal) or exchange_finish (after the last
 *            step), exchange_report (the exchange's statistics), exchange_free
 *
 * An implementation fills the operations it needs; a NULL entry does nothing (for
 * agree_stop: the local request decides). */
#ifndef DTRAIN_WORKER_EXCHANGE_H
#define DTRAIN_WORKER_EXCHANGE_H

#include <stdbool.h>

#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/data.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/model.h"
#include "dtrain/optim.h"
#include "dtrain/test_hooks.h"
#include "options.h"

/* What an exchange works on: the trainer's objects, which outlive it. */
typedef struct {
  dt_config_t *cfg;
  const run_options_t *opt;
  dt_comm_t *comm;
  const dt_log_t *log;
  dt_model_t *model;
  dt_optim_t *optim;
  const dt_test_hooks_t *hooks;
} exchange_env_t;

/* The trainer's timing of the run's steps, for the report. */
typedef struct {
  long steps;    /* steps this process ran (not counting those before a resume) */
  double wait_s; /* waiting for the gradients after backward */
  double step_s; /* whole steps */
  double data_wait_s; /* waiting for the loader's next batch */
} exchange_stats_t;

typedef struct {
  const char *name;
  /* Reads the mode's settings and allocates *self. May narrow train to the part of the
   * training set this process trains on. */
  int (*open)(void **self, const exchange_env_t *env, dt_dataset_t *train, dt_error_t *err);
  /* The model's buffers and the optimizer exist. */
  int (*prepare)(void *self, long steps_per_epoch, dt_error_t *err);
  /* The model's on_grads_ready hook during backward (ctx is self). */
  dt_grads_ready_fn grads_ready;
  /* Before the first step, after a resume. */
  int (*start)(void *self, dt_error_t *err);
  /* After start: the folder of this process's own TensorBoard run inside the run's
   * folder ("worker-3"), where processes that train side by side each log their own
   * curves; NULL to log into the run's folder itself. */
  const char *(*log_name)(void *self);
  /* Step `step` (1-based) begins. */
  void (*begin_step)(void *self, long step);
  /* After backward: the model's gradients become the average over the replicas. */
  int (*reduce)(void *self, dt_error_t *err);
  /* After clipping: the model's parameters for the next step, with this learning rate. */
  int (*update)(void *self, float lr, dt_error_t *err);
  /* After step `step`: *stop says whether to stop now, given this process's request. */
  int (*agree_stop)(void *self, long step, bool requested, bool *stop, dt_error_t *err);
  /* At the end of an epoch: the layers' non-trainable state is the same everywhere. */
  int (*sync_state)(void *self, dt_error_t *err);
  /* Stopping early, before the preemption checkpoint. */
  int (*leave)(void *self, dt_error_t *err);
  /* After the last step, before the final evaluation. */
  int (*finish)(void *self, dt_error_t *err);
  void (*report)(void *self, const exchange_stats_t *stats);
  void (*free)(void *self);
} exchange_ops_t;

extern const exchange_ops_t exchange_single_ops;    /* one process, no exchange */
extern const exchange_ops_t exchange_allreduce_ops; /* ranks average gradients (dt_grad_sync) */
extern const exchange_ops_t exchange_ps_ops;        /* parameter servers (ps_sync.h) */

typedef struct {
  const exchange_ops_t *ops;
  void *self;
  dt_model_t *model;
} exchange_t;

/* Chooses the exchange (sync.mode = ps: parameter servers; otherwise all-reduce with
 * several ranks, none with one) and opens it. */
int exchange_setup(exchange_t *x, const exchange_env_t *env, dt_dataset_t *train,
                   dt_error_t *err);

int exchange_prepare(exchange_t *x, long steps_per_epoch, dt_error_t *err);
int exchange_start(exchange_t *x, dt_error_t *err);
const char *exchange_log_name(exchange_t *x);
void exchange_begin_step(exchange_t *x, long step);
int exchange_reduce(exchange_t *x, dt_error_t *err);
int exchange_update(exchange_t *x, float lr, dt_error_t *err);
int exchange_agree_stop(exchange_t *x, long step, bool requested, bool *stop, dt_error_t *err);
int exchange_sync_state(exchange_t *x, dt_error_t *err);
int exchange_leave(exchange_t *x, dt_error_t *err);
int exchange_finish(exchange_t *x, dt_error_t *err);
void exchange_report(exchange_t *x, const exchange_stats_t *stats);
void exchange_free(exchange_t *x);

/* The optimizer's step over the whole flat vector, for the exchanges whose process runs
 * the optimizer itself. */
void exchange_optimizer_step(dt_model_t *m, dt_optim_t *o, float lr);

#endif
