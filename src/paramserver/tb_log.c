/* dtrain-ps's TensorBoard run (see tb_log.h). */
#define _POSIX_C_SOURCE 200809L
#include "tb_log.h"

#include <stdio.h>
#include <string.h>

/* A few scalars every few seconds: a small queue is plenty. */
static const dt_events_options_t options = {.queue_bytes = 256u << 10};

void ps_tb_init(ps_tb_t *t, const dt_ps_config_t *cfg, const dt_log_t *log, double now) {
  memset(t, 0, sizeof *t);
  t->cfg = cfg;
  t->log = log;
  t->start = t->last = now;
  t->last_step = -1;
}

static bool open_run(ps_tb_t *t, const ps_range_t *r) {
  char dir[DT_PS_PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s/ps-%u", t->cfg->logdir, r->index);
  dt_error_t err = {0};
  if (dt_events_open_opts(&t->ev, dir, &options, &err)) {
    dt_log_warn(t->log, "TensorBoard logging: %s (serving goes on without it)", err.msg);
    t->failed = true;
    return false;
  }
  dt_log_info(t->log, "TensorBoard logs: %s", dir);
  return true;
}

void ps_tb_update(ps_tb_t *t, const ps_core_t *core, double now, bool now_anyway) {
  if (!t->cfg->logdir[0] || t->failed) return;
  if (!now_anyway && now - t->last < t->cfg->log_every_s) return;
  const ps_range_t *r = ps_core_range(core);
  if (!r || (!t->ev && !open_run(t, r))) return;
  ps_stats_t st = ps_core_stats(core);
  double dt = now - t->last > 1e-3 ? now - t->last : 1e-3;
  /* Seconds since the server started: the curves' step axis is time, which goes on
   * while nobody pushes (live workers still change then). */
  int64_t step = (int64_t)(now - t->start);
  if (step <= t->last_step) step = t->last_step + 1;
  dt_events_scalar(t->ev, "updates_per_s", step, (double)(r->version - t->last_version) / dt,
                   NULL);
  dt_events_scalar(t->ev, "pushes_per_s", step, (double)(st.pushes - t->last_stats.pushes) / dt,
                   NULL);
  dt_events_scalar(t->ev, "live_workers", step, ps_core_nmembers(core), NULL);
  uint64_t pulls = st.pulls - t->last_stats.pulls;
  /* The staleness of the parameters it handed out: each answered pull's clock gap. */
  if (pulls)
    dt_events_scalar(t->ev, "staleness_mean", step,
                     (double)(st.gap_sum - t->last_stats.gap_sum) / (double)pulls, NULL);
  dt_events_scalar(t->ev, "staleness_max", step, (double)st.max_gap, NULL);
  dt_error_t err = {0};
  if (dt_events_poll_error(t->ev, &err))
    dt_log_warn(t->log, "TensorBoard logging: %s (serving goes on)", err.msg);
  t->last = now;
  t->last_step = step;
  t->last_version = r->version;
  t->last_stats = st;
}

void ps_tb_close(ps_tb_t *t) {
  if (!t->ev) return;
  dt_error_t err = {0};
  if (dt_events_close(t->ev, &err))
    dt_log_warn(t->log, "TensorBoard logging: %s", err.msg);
  t->ev = NULL;
}
