/* Training through parameter servers: the trainer's side (see ps_sync.h). */
#define _POSIX_C_SOURCE 200809L
#include "ps_sync.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtrain/clock.h"
#include "preempt.h"

/* The training set becomes samples [begin, end) of the whole one. */
static void take_part(ps_sync_t *ps, size_t begin, size_t end) {
  *ps->train = dt_dataset_view(&ps->full, begin, end - begin);
}

int ps_sync_setup(ps_sync_t *ps, dt_config_t *cfg, dt_dataset_t *train, int world,
                  double delay_ms, const dt_log_t *log, dt_error_t *err) {
  memset(ps, 0, sizeof *ps);
  ps->log = *log;
  int rc = dt_ps_config_read(cfg, &ps->cfg, err);
  if (rc) return rc;
  if (world > 1)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: sync.mode = ps: start each worker as a process "
                        "of its own (not under mpirun/srun), with ps.worker_id and "
                        "ps.num_workers", dt_config_where(cfg, "sync", "mode"));
  if (ps->cfg.nservers == 0)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: sync.mode = ps needs [ps] servers = "
                        "host:port,... (the parameter servers, in the same order for every "
                        "worker)", dt_config_where(cfg, "ps", "servers"));
  /* Each worker takes a contiguous part of the training set, as a view. */
  ps->train = train;
  ps->full = dt_dataset_view(train, 0, train->n);
  size_t n = train->n, nw = (size_t)ps->cfg.num_workers;
  ps->worker_id = ps->cfg.worker_id;
  if (ps->cfg.worker_id != DT_PS_ASSIGNED) {
    size_t w = (size_t)ps->cfg.worker_id;
    take_part(ps, n * w / nw, n * (w + 1) / nw);
    dt_log_info(&ps->log, "PS worker %ld of %ld: training samples [%zu, %zu) of %zu",
                ps->cfg.worker_id, ps->cfg.num_workers, n * w / nw, n * (w + 1) / nw, n);
  } else {
    /* Which part is known once server 0 has assigned the id (ps_sync_start); until then
     * the size, the same for every id: the smallest part's, so that every assigned
     * worker runs the same steps per epoch (a part may lose its last sample). */
    train->n = n / nw;
    dt_log_info(&ps->log, "PS worker (id to be assigned by the servers) of %ld: %zu training "
                "samples of %zu", ps->cfg.num_workers, n / nw, n);
  }
  /* A fault switch for tests: a slow worker, to show what SSP holds back. */
  if (delay_ms > 0) {
    ps->delay_s = delay_ms / 1000.0;
    dt_log_warn(&ps->log, "DT_TEST_PS_DELAY_MS: each step waits %g ms (a switch for tests)",
                ps->delay_s * 1e3);
  }
  return 0;
}

/* The servers' parameters of the finished exchange become the model's. */
static int install(ps_sync_t *ps, dt_model_t *m, dt_error_t *err) {
  float *params;
  int rc = dt_model_to_host(m, DT_MODEL_PARAMS, &params, err);
  if (rc) return rc;
  memcpy(params, ps_client_params(ps->client), m->num_params * sizeof(float));
  if ((rc = dt_model_from_host(m, DT_MODEL_PARAMS, err))) return rc;
  for (int k = 0; k < ps_client_num_servers(ps->client); k++)
    ps->versions[k] = ps_client_version(ps->client, k);
  return 0;
}

static int wait_exchange(ps_sync_t *ps, dt_model_t *m, dt_error_t *err) {
  double t0 = dt_now_s();
  int rc = ps_client_wait(ps->client, err);
  ps->wait_s += dt_now_s() - t0;
  ps->pending = false;
  if (rc) return rc;
  return install(ps, m, err);
}

/* Starts an exchange; the pull is for the step that will use its result. */
static int post(ps_sync_t *ps, bool push, float lr, uint32_t steps, const uint64_t *base,
                bool overlapped, dt_error_t *err) {
  int64_t clock = ps_client_clock(ps->client) + (push ? 1 : 0);
  int64_t pull_clock = clock + (overlapped ? 2 : 1);
  int rc = ps_client_exchange(ps->client, push, lr, steps, base, pull_clock, err);
  if (rc) return rc;
  ps->pending = true;
  ps->exchanges++;
  ps->pushes += push;
  return 0;
}

int ps_sync_start(ps_sync_t *ps, dt_model_t *m, const dt_optim_config_t *ocfg, double timeout_s,
                  dt_error_t *err) {
  if (ps->cfg.push_every > 1 && !(ps->accum = malloc(m->num_params * sizeof(float))))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for ps.push_every");
  bool assigned = ps->cfg.worker_id == DT_PS_ASSIGNED;
  ps_client_opts_t o = {.cfg = &ps->cfg, .worker_id = assigned ? 0 : (uint32_t)ps->cfg.worker_id,
                        .assign_id = assigned, .num_workers = (uint32_t)ps->cfg.num_workers,
                        .num_params = m->num_params, .tensors = m->params,
                        .ntensors = m->nparams, .optim = ocfg, .timeout_s = timeout_s,
                        .log = ps->log, .interrupted = preempt_signal};
  ps_client_info_t info;
  float *params;
  int rc = dt_model_to_host(m, DT_MODEL_PARAMS, &params, err);
  if (rc) return rc;
  rc = ps_client_start(&ps->client, &o, params, &info, err);
  if (rc) return dt_error_prefix(err, "connecting to the parameter servers: ");
  ps->worker_id = info.worker_id;
  if (assigned) {
    /* Its part of the data follows the id it was given: [n*w/nw, ...), of the size
     * every assigned worker takes (ps_sync_setup). */
    size_t n = ps->full.n, w = info.worker_id, nw = (size_t)ps->cfg.num_workers;
    if (w >= nw)
      return dt_error_set(err, DT_ERR_CONFIG, "the parameter servers assigned worker id %zu, "
                          "not below ps.num_workers = %zu", w, nw);
    take_part(ps, n * w / nw, n * w / nw + ps->train->n);
    dt_log_info(&ps->log, "PS worker %zu of %zu (id assigned by the servers): training samples "
                "[%zu, %zu) of %zu", w, nw, n * w / nw, n * w / nw + ps->train->n, n);
  }
  if (info.mixed)
    dt_log_warn(&ps->log, "the parameter servers differ in ps.consistency or ps.staleness; "
                "going by server 0's (%s, %ld)", dt_ps_consistency_names[info.consistency],
                info.staleness);
  /* One step of delay is staleness 1: allowed by async, and by ssp with s >= 1. */
  ps->overlap = ps->cfg.overlap && (info.consistency == DT_PS_ASYNC ||
                                    (info.consistency == DT_PS_SSP && info.staleness >= 1));
  char stale[48] = "";
  if (info.consistency == DT_PS_SSP) snprintf(stale, sizeof stale, ", staleness %ld", info.staleness);
  dt_log_info(&ps->log, "parameter servers: %d, consistency %s%s, clock %" PRId64 ", push every "
              "%ld step(s), exchange %s the next step, model signature %016" PRIx64,
              ps_client_num_servers(ps->client), dt_ps_consistency_names[info.consistency], stale,
              info.clock, ps->cfg.push_every, ps->overlap ? "overlapping" : "before",
              dt_ps_signature(m->params, m->nparams, m->num_params, ocfg));
  if ((rc = post(ps, false, 0.0f, 1, NULL, false, err)) || (rc = wait_exchange(ps, m, err)))
    return dt_error_prefix(err, "the first pull from the parameter servers: ");
  return 0;
}

/* The gradient to push into the send buffer: this step's, or the mean over the steps
 * accumulated since the last push. grads are the model's (num_params), on the host.
 * false while still accumulating. */
static bool stage_gradient(ps_sync_t *ps, const float *grads, size_t n) {
  float *send = ps_client_send_buffer(ps->client);
  if (!ps->accum) {
    memcpy(send, grads, n * sizeof(float));
    return true;
  }
  if (ps->local_steps == 0) memcpy(ps->accum, grads, n * sizeof(float));
  else
    for (size_t i = 0; i < n; i++) ps->accum[i] += grads[i];
  if (++ps->local_steps < ps->cfg.push_every) return false;
  float scale = 1.0f / (float)ps->local_steps;
  for (size_t i = 0; i < n; i++) send[i] = ps->accum[i] * scale;
  return true;
}

/* The servers apply what this worker pushes for every worker: a NaN or an infinity
 * would poison the shared parameters for good, so a diverging worker stops here,
 * before it pushes, as a diverging all-reduce run stops at its loss. */
static int check_finite(const ps_sync_t *ps, const float *grads, size_t n, dt_error_t *err) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < n; i++) {
    if (isfinite(grads[i])) continue;
    if (!bad) first = i;
    bad++;
  }
  if (!bad) return 0;
  return dt_error_set(err, DT_ERR_STATE, "the gradient after %ld push(es) has %zu non-finite "
                      "value(s) (the first at parameter %zu: %g); not pushed to the parameter "
                      "servers: lower train.lr or check the data", ps->pushes, bad, first,
                      (double)grads[first]);
}

int ps_sync_step(ps_sync_t *ps, dt_model_t *m, float lr, dt_error_t *err) {
  if (ps->delay_s > 0) {
    struct timespec ts = {(time_t)ps->delay_s, (long)((ps->delay_s - (double)(time_t)ps->delay_s) * 1e9)};
    nanosleep(&ts, NULL);
  }
  float *grads;
  int rc = dt_model_to_host(m, DT_MODEL_GRADS, &grads, err);
  if (rc) return rc;
  if ((rc = check_finite(ps, grads, m->num_params, err))) return rc;
  if (ps->accum && ps->local_steps + 1 < ps->cfg.push_every) {
    stage_gradient(ps, grads, m->num_params);
    return 0;
  }
  /* The gradient was computed on the parameters of these versions. */
  uint64_t base[DT_PS_MAX_SERVERS];
  memcpy(base, ps->versions, sizeof base);
  uint32_t steps = (uint32_t)(ps->accum ? ps->local_steps + 1 : 1);
  /* Overlapping: the previous exchange's parameters are for the next step, and the
   * send buffer is the client's until that exchange is done. */
  if (ps->pending && (rc = wait_exchange(ps, m, err))) return rc;
  stage_gradient(ps, grads, m->num_params);
  ps->local_steps = 0;
  ps->last_lr = lr;
  if ((rc = post(ps, true, lr, steps, base, ps->overlap, err))) return rc;
  return ps->overlap ? 0 : wait_exchange(ps, m, err);
}

int ps_sync_finish(ps_sync_t *ps, dt_model_t *m, dt_error_t *err) {
  int rc;
  if (!ps->client) return 0;
  if (ps->pending && (rc = wait_exchange(ps, m, err))) return rc;
  if (ps->accum && ps->local_steps > 0) {
    float *send = ps_client_send_buffer(ps->client);
    float scale = 1.0f / (float)ps->local_steps;
    for (size_t i = 0; i < m->num_params; i++) send[i] = ps->accum[i] * scale;
    uint32_t steps = (uint32_t)ps->local_steps;
    ps->local_steps = 0;
    if ((rc = post(ps, true, ps->last_lr, steps, ps->versions, false, err)) ||
        (rc = wait_exchange(ps, m, err)))
      return rc;
  }
  /* The servers' latest parameters are the model this worker evaluates. */
  if ((rc = post(ps, false, 0.0f, 1, NULL, false, err)) || (rc = wait_exchange(ps, m, err)))
    return rc;
  return ps_client_stop(ps->client, err);
}

void ps_sync_report(const ps_sync_t *ps) {
  if (!ps->client) return;
  dt_log_info(&ps->log, "PS: %ld exchanges, %ld pushes, clock %" PRId64 "; the trainer waited "
              "%.3f ms per exchange", ps->exchanges, ps->pushes, ps_client_clock(ps->client),
              ps->exchanges ? 1e3 * ps->wait_s / (double)ps->exchanges : 0.0);
}

int ps_sync_leave(ps_sync_t *ps, dt_model_t *m, dt_error_t *err) {
  int rc;
  if (!ps->client) return 0;
  if (ps->pending && (rc = wait_exchange(ps, m, err))) return rc;
  dt_log_info(&ps->log, "PS: leaving at clock %" PRId64 " after %ld pushes",
              ps_client_clock(ps->client), ps->pushes);
  return ps_client_stop(ps->client, err);
}

void ps_sync_free(ps_sync_t *ps) {
  ps_client_free(ps->client);
  free(ps->accum);
  memset(ps, 0, sizeof *ps);
}
