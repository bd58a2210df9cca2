/* The core's shared steps (see core_state.h): emitting actions, failing connections,
 * answering pulls, letting members go, the checkpoint schedule. */
#define _POSIX_C_SOURCE 200809L
#include "core_state.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ps_actions_free(ps_actions_t *a) {
  free(a->v);
  a->v = NULL;
  a->n = a->cap = 0;
}

ps_action_t *ps_state_emit(ps_core_t *c, ps_actions_t *out, ps_action_kind kind,
                           ps_session_t *s) {
  ps_action_t *a = &c->scratch;
  if (out->n == out->cap) {
    int cap = out->cap ? 2 * out->cap : 16;
    ps_action_t *v = realloc(out->v, (size_t)cap * sizeof *v);
    if (v) {
      out->v = v;
      out->cap = cap;
    }
  }
  if (out->n < out->cap) a = &out->v[out->n++];
  else out->lost++;
  memset(a, 0, sizeof *a);
  a->kind = kind;
  a->session = s;
  return a;
}

void ps_state_detach(ps_core_t *c, ps_session_t *s) {
  ps_member_t *m = s->member;
  if (!m) return;
  m->session = NULL;
  m->pull_pending = false;
  s->member = NULL;
  if (!ps_member_counts(m)) c->recheck = true;
}

void ps_state_fail(ps_core_t *c, ps_actions_t *out, ps_session_t *s, int code, const char *fmt,
                   ...) {
  if (s->state == PS_SESSION_CLOSING) return;
  ps_action_t *a = ps_state_emit(c, out, PS_ACT_FAIL, s);
  a->fail.code = code;
  a->fail.has_worker = s->member || s->state == PS_SESSION_READY;
  a->fail.worker_id = s->worker_id;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->fail.message, sizeof a->fail.message, fmt, ap);
  va_end(ap);
  ps_state_detach(c, s);
  s->state = PS_SESSION_CLOSING;
}

bool ps_state_pull_ready(const ps_core_t *c, int64_t clock) {
  switch (c->cfg.consistency) {
    case DT_PS_SSP:
      return ps_members_min_pushed(&c->members, INT64_MAX) >= clock - c->cfg.staleness - 1;
    case DT_PS_SYNC: return c->rounds.round >= clock;
    default: return true;
  }
}

void ps_state_answer(ps_core_t *c, ps_actions_t *out, ps_session_t *s, int64_t clock) {
  int64_t slowest = ps_members_min_pushed(&c->members, clock - 1);
  int64_t gap = clock - 1 - slowest;
  if (gap < 0) gap = 0;
  if (gap > c->stats.max_gap) c->stats.max_gap = gap;
  c->stats.gap_hist[gap < 7 ? gap : 7]++;
  c->stats.gap_sum += (uint64_t)gap;
  c->stats.pulls++;
  ps_action_t *a = ps_state_emit(c, out, PS_ACT_PARAMS, s);
  a->params.version = c->range.version;
  a->params.min_clock = slowest;
  a->params.values = c->range.params;
  a->params.n = c->range.n;
  if (!c->answered) c->answered_version = c->range.version;
  c->answered = true;
}

void ps_state_serve_pulls(ps_core_t *c, ps_actions_t *out) {
  for (int i = 0; i < c->members.n; i++) {
    ps_member_t *m = c->members.v[i];
    if (!m->pull_pending || !m->session || !ps_state_pull_ready(c, m->pull_clock)) continue;
    m->pull_pending = false;
    ps_state_answer(c, out, m->session, m->pull_clock);
  }
}

void ps_state_settle(ps_core_t *c, ps_actions_t *out) {
  if (!c->initialized) return;
  if (c->cfg.consistency == DT_PS_SYNC) ps_rounds_advance(&c->rounds, &c->members, &c->range);
  ps_state_serve_pulls(c, out);
}

void ps_state_remove_member(ps_core_t *c, ps_member_t *m, const char *why) {
  if (m->session) m->session->member = NULL;
  uint32_t id = m->id;
  int64_t pushed = m->pushed;
  ps_members_remove(&c->members, m);
  dt_log_info(c->log, "worker %u %s at clock %" PRId64 "; %d live worker(s)", id, why, pushed,
              c->members.n);
}

void ps_state_maybe_checkpoint(ps_core_t *c, double now, ps_actions_t *out) {
  if (!c->cfg.checkpoint_dir[0] || !c->initialized || c->ckpt_pending ||
      c->range.version == c->last_ckpt_version)
    return;
  bool by_time = c->cfg.checkpoint_every_s > 0 &&
                 now - c->last_ckpt_time >= c->cfg.checkpoint_every_s;
  bool by_count = c->cfg.checkpoint_every_updates > 0 &&
                  c->range.version - c->last_ckpt_version >=
                      (uint64_t)c->cfg.checkpoint_every_updates;
  if (!by_time && !by_count) return;
  ps_state_emit(c, out, PS_ACT_CHECKPOINT, NULL);
  c->ckpt_pending = true;
}

int ps_state_start_range(ps_core_t *c, ps_range_t *r, dt_error_t *err) {
  if (c->cfg.consistency == DT_PS_SYNC) {
    int rc = ps_rounds_init(&c->rounds, r->n, c->log, err);
    if (rc) return rc;
  }
  c->range = *r;
  memset(r, 0, sizeof *r);
  c->initialized = true;
  return 0;
}
