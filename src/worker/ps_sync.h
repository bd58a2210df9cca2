/* Training through parameter servers (sync.mode = ps): the trainer's side.
 *
 * In this mode the worker does not run the optimizer. After backward it hands the
 * gradient to the PS client (which pushes each server its range) and takes the
 * parameters the servers send back. With ps.overlap (and a consistency model that
 * allows one step of delay: async, or ssp with staleness >= 1) the exchange of step t
 * runs while step t+1 computes on the parameters pulled after step t-1; otherwise
 * each step waits for its own exchange (sync is then bulk synchronous).
 *
 * Clocks count pushes. The pull that follows push c is for clock c+1, or c+2 when it
 * overlaps the next step: the clock of the step that will use those parameters, which
 * is what SSP bounds. ps.push_every = k averages k local steps' gradients (computed on
 * the same parameters) into one push.
 *
 * Workers are separate processes, each with an id in [0, ps.num_workers): ps.worker_id,
 * or by default one that server 0 assigns when the worker connects. Each trains on its
 * own contiguous part of the training set, the one of its id. */
#ifndef DTRAIN_WORKER_PS_SYNC_H
#define DTRAIN_WORKER_PS_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/data.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/model.h"
#include "dtrain/optim.h"
#include "dtrain/ps.h"
#include "ps_client.h"

typedef struct {
  dt_ps_config_t cfg;
  dt_log_t log;
  ps_client_t *client;
  dt_dataset_t *train;  /* the trainer's training set, narrowed to this worker's part */
  dt_dataset_t full;    /* the whole of it */
  long worker_id;       /* this worker's id: ps.worker_id, or the assigned one after start */
  bool overlap;         /* in effect: configured and allowed by the consistency model */
  bool pending;         /* an exchange is in flight */
  long local_steps;     /* gradients summed into accum since the last push */
  float *accum;         /* (num_params) for push_every > 1, else NULL */
  float last_lr;        /* of the latest push, for the partial one at the end */
  uint64_t versions[DT_PS_MAX_SERVERS]; /* of the parameters in the model's buffer */
  long exchanges, pushes;
  double wait_s;        /* time the trainer waited for exchanges */
  double delay_s;       /* test switch DT_TEST_PS_DELAY_MS: sleep per step (test_hooks.h) */
} ps_sync_t;

/* Reads [ps] and narrows train to this worker's part; with an id still to be assigned,
 * to the part's size (ps_sync_start then moves it to the part of the id; train must
 * outlive ps). world is the communicator's size: a PS worker runs as a process of its
 * own (1). delay_ms is the test switch's wait per step (0: none). */
int ps_sync_setup(ps_sync_t *ps, dt_config_t *cfg, dt_dataset_t *train, int world,
                  double delay_ms, const dt_log_t *log, dt_error_t *err);

/* Connects to the servers (INIT from the model's initial parameters if a range is
 * empty) and loads the servers' parameters into the model.
 *
 * Every function here that takes the model reads its gradients or writes its parameters
 * on the host, through dt_model_to_host / dt_model_from_host. */
int ps_sync_start(ps_sync_t *ps, dt_model_t *m, const dt_optim_config_t *ocfg, double timeout_s,
                  dt_error_t *err);

/* After backward: the gradient in m->grad_buf goes to the servers with this step's
 * learning rate; m->param_buf gets the newest parameters for the next step. */
int ps_sync_step(ps_sync_t *ps, dt_model_t *m, float lr, dt_error_t *err);

/* After the last step: pushes what is left, loads the servers' final parameters into
 * the model and says BYE. */
int ps_sync_finish(ps_sync_t *ps, dt_model_t *m, dt_error_t *err);

/* Stopping early (a preemption signal): completes the exchange in flight (its
 * parameters become the model's) and says BYE, so that the servers stop counting on
 * this worker at once instead of after ps.heartbeat_timeout_s. Gradients summed for
 * ps.push_every and not pushed yet are dropped. */
int ps_sync_leave(ps_sync_t *ps, dt_model_t *m, dt_error_t *err);

/* Logs the exchanges, pushes and clock so far and how long the trainer waited. */
void ps_sync_report(const ps_sync_t *ps);

void ps_sync_free(ps_sync_t *ps);

#endif
