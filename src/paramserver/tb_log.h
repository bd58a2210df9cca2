/* dtrain-ps's own TensorBoard run (ps.logdir, off by default): every ps.log_every_s, the
 * server's updates and pushes per second, its live workers and the staleness of the
 * pulls it answered, as scalars in <ps.logdir>/ps-<k>/ (k: its range of the split), so
 * that the servers of a job sit beside the workers' runs in one TensorBoard. The
 * events library writes on a thread of its own: the loop never waits for the disk. */
#ifndef DTRAIN_PS_TB_LOG_H
#define DTRAIN_PS_TB_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/ps_core.h"
#include "dtrain/events.h"
#include "dtrain/log.h"
#include "dtrain/ps.h"

typedef struct {
  const dt_ps_config_t *cfg;
  const dt_log_t *log;
  dt_events_t *ev;      /* once the range (and so k) is known */
  bool failed;          /* it could not be opened: said once, not tried again */
  double start, last;   /* when the server started, when the last point was written */
  int64_t last_step;
  uint64_t last_version;
  ps_stats_t last_stats;
} ps_tb_t;

void ps_tb_init(ps_tb_t *t, const dt_ps_config_t *cfg, const dt_log_t *log, double now);
/* A point of the scalars when ps.log_every_s has passed since the last (or at once with
 * `now_anyway`, before stopping); nothing before the range exists. */
void ps_tb_update(ps_tb_t *t, const ps_core_t *core, double now, bool now_anyway);
/* Writes what is queued and closes the run. */
void ps_tb_close(ps_tb_t *t);

#endif
