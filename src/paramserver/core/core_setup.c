/* The core's life and what the outside may read of it (see ps_core.h): creating and
 * freeing it, --resume, what a checkpoint holds, the queries and the stats line. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core_state.h"

ps_core_t *ps_core_new(const dt_ps_config_t *cfg, const dt_log_t *log, dt_error_t *err) {
  ps_core_t *c = calloc(1, sizeof *c);
  if (!c) {
    dt_error_set(err, DT_ERR_NOMEM, "out of memory for the server's state");
    return NULL;
  }
  c->cfg = *cfg;
  c->log = log;
  return c;
}

void ps_core_free(ps_core_t *c) {
  if (!c) return;
  for (ps_session_t *s = c->sessions; s; s = s->next) {
    s->member = NULL;
    s->linked = false;
  }
  ps_members_free(&c->members);
  ps_rounds_free(&c->rounds);
  ps_range_free(&c->range);
  free(c);
}

int ps_core_restore(ps_core_t *c, ps_range_t *range, const ps_snapshot_t *st, double now,
                    dt_error_t *err) {
  if (c->initialized)
    return dt_error_set(err, DT_ERR_ARG, "the range is initialized already");
  int rc = ps_state_start_range(c, range, err);
  if (rc) return rc;
  if (c->cfg.consistency == DT_PS_SYNC) c->rounds.round = st->round > 0 ? st->round : 1;
  for (int i = 0; i < st->nmembers; i++) {
    const ps_member_clock_t *mc = &st->members[i];
    if (ps_members_find(&c->members, mc->id)) continue;
    ps_member_t *m = ps_members_add(&c->members, mc->id, mc->clock, now, err);
    if (!m) {
      ps_members_free(&c->members);
      ps_rounds_free(&c->rounds);
      ps_range_free(&c->range);
      c->initialized = false;
      return DT_ERR_NOMEM;
    }
    /* sync: it was in the rounds before, and is in the ones to come. */
    m->joined = true;
    m->last_push = mc->clock;
    m->pushed_any = true;
  }
  c->last_ckpt_version = c->range.version;
  c->last_ckpt_time = now;
  return 0;
}

int ps_core_snapshot(const ps_core_t *c, ps_snapshot_t *out, dt_error_t *err) {
  bool sync = c->cfg.consistency == DT_PS_SYNC;
  out->round = sync ? c->rounds.round : 1;
  out->nmembers = c->members.n;
  out->members = malloc((size_t)(c->members.n ? c->members.n : 1) * sizeof *out->members);
  if (!out->members) {
    out->nmembers = 0;
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
  }
  for (int i = 0; i < c->members.n; i++) {
    const ps_member_t *m = c->members.v[i];
    /* In sync mode the pushes of the round being summed are not in the saved values:
     * their workers send them again after a restart. */
    int64_t clock = m->pushed;
    if (sync && clock > out->round - 1) clock = out->round - 1;
    out->members[i] = (ps_member_clock_t){.id = m->id, .clock = clock};
  }
  return 0;
}

const ps_range_t *ps_core_range(const ps_core_t *c) { return c->initialized ? &c->range : NULL; }

ps_stats_t ps_core_stats(const ps_core_t *c) {
  ps_stats_t st = c->stats;
  st.discarded = c->rounds.discarded;
  return st;
}

int ps_core_nmembers(const ps_core_t *c) { return c->members.n; }

const ps_member_t *ps_core_member(const ps_core_t *c, uint32_t id) {
  return ps_members_find(&c->members, id);
}

int64_t ps_core_round(const ps_core_t *c) {
  return c->cfg.consistency == DT_PS_SYNC && c->initialized ? c->rounds.round : 1;
}

void ps_core_log_stats(const ps_core_t *c, const char *when) {
  ps_stats_t st = ps_core_stats(c);
  dt_log_info(c->log, "stats (%s): version %" PRIu64 ", %" PRIu64 " pushes, %" PRIu64
              " pulls (%" PRIu64 " waited), max clock gap %" PRId64 " (%s%s), gaps 0..7+: %" PRIu64
              " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
              ", %d live worker(s), %" PRIu64 " dropped, %" PRIu64 " bad connection(s), %" PRIu64
              " repeated and %" PRIu64 " late push(es) not applied, %" PRIu64
              " non-finite push(es) refused",
              when, c->range.version, st.pushes, st.pulls, st.pulls_waited, st.max_gap,
              dt_ps_consistency_names[c->cfg.consistency],
              c->cfg.consistency == DT_PS_SSP ? "" : ", unbounded", st.gap_hist[0],
              st.gap_hist[1], st.gap_hist[2], st.gap_hist[3], st.gap_hist[4], st.gap_hist[5],
              st.gap_hist[6], st.gap_hist[7], c->members.n, st.dropped, st.bad_connections,
              st.repeated, st.discarded, st.nonfinite);
}
