/* Bulk-synchronous rounds (see sync_rounds.h), indexed by the workers' clocks so that
 * every server puts the same workers into the same round.
 *
 * Round r sums the pushes of clock r and applies their mean once. A worker belongs to
 * the rounds from its join clock on. Deciding membership by arrival time instead
 * would let two servers disagree: a worker joining mid-run reaches server A just
 * before round r completes there and server B just after, so A counts it into r and
 * B into r+1, and the ranges drift a round apart.
 *
 * The join clock is the worker's to name, in its first PULL (or PUSH): it takes the
 * largest clock any server offered in WELCOME, so no server has applied that round
 * yet. Until it is named, the server holds back every round from the one it offered
 * on (ps_rounds_hello's join_min): that round may turn out to be the worker's. The
 * wait lasts one message and ends anyway when the worker is dropped as silent.
 *
 * A worker holds round r up while it belongs to r and has not pushed clock r. A push
 * for a later round (a worker that went on while this server restarted from a
 * checkpoint) is held until its round comes; one for a round already applied is
 * discarded. A round nobody pushed into and nobody owes is skipped, which is how a
 * restored server catches up with the workers' clocks.
 *
 * A member that has not pushed yet holds rounds up only while it is connected
 * (ps_member_counts): a client that says HELLO and goes away must not stall the
 * others until it is dropped. If it comes back after its round went by, its push for
 * that round is discarded like any late one. */
#define _POSIX_C_SOURCE 200809L
#include "sync_rounds.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int ps_rounds_init(ps_rounds_t *r, size_t n, const dt_log_t *log, dt_error_t *err) {
  memset(r, 0, sizeof *r);
  r->log = log;
  r->n = n;
  r->round = 1;
  if (!(r->accum = calloc(n ? n : 1, sizeof *r->accum)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a range of %zu parameters", n);
  return 0;
}

void ps_rounds_free(ps_rounds_t *r) {
  free(r->accum);
  r->accum = NULL;
}

int64_t ps_rounds_hello(const ps_rounds_t *r, ps_member_t *m, int64_t h) {
  int64_t offered = r->round - 1 > h ? r->round - 1 : h;
  m->joined = false;
  m->join_min = offered + 1;
  return offered;
}

void ps_rounds_announce(const ps_rounds_t *r, ps_member_t *m, int64_t clock) {
  if (m->joined) return;
  m->joined = true;
  m->join_clock = clock;
  /* It is in no round before its first: as far as rounds go it is past them. */
  if (clock - 1 > m->pushed) m->pushed = clock - 1;
  dt_log_info(r->log, "worker %u takes part from round %" PRId64 " on (this server is at round %"
              PRId64 ")", m->id, clock, r->round);
}

static bool holds_up(const ps_member_t *m, int64_t round) {
  if (!ps_member_counts(m)) return false;
  if (!m->joined) return m->join_min <= round;
  return m->join_clock <= round && m->pushed < round;
}

/* The earliest round m can still push into. */
static int64_t next_round_of(const ps_member_t *m) {
  if (m->held) return m->held_clock;
  if (!m->joined) return m->join_min;
  return m->join_clock > m->pushed + 1 ? m->join_clock : m->pushed + 1;
}

static void add_to_round(ps_rounds_t *r, const float *grad, float lr) {
  if (r->ncontrib == 0) memcpy(r->accum, grad, r->n * sizeof *grad);
  else
    for (size_t i = 0; i < r->n; i++) r->accum[i] += grad[i];
  r->ncontrib++;
  r->lr_sum += lr;
}

void ps_rounds_advance(ps_rounds_t *r, ps_members_t *t, ps_range_t *range) {
  for (;;) {
    int64_t round = r->round;
    for (int i = 0; i < t->n; i++)
      if (holds_up(t->v[i], round)) return;
    if (r->ncontrib > 0) {
      float scale = 1.0f / (float)r->ncontrib;
      for (size_t i = 0; i < r->n; i++) r->accum[i] *= scale;
      ps_range_apply(range, r->accum, (float)(r->lr_sum / r->ncontrib));
      r->ncontrib = 0;
      r->lr_sum = 0.0;
      r->round = round + 1;
    } else {
      /* Nobody pushed into the round and nobody owes it a push: go to the first round
       * that someone can still push into. */
      int64_t next = INT64_MAX;
      for (int i = 0; i < t->n; i++) {
        if (!ps_member_counts(t->v[i])) continue;
        int64_t x = next_round_of(t->v[i]);
        if (x < next) next = x;
      }
      if (next == INT64_MAX) return; /* nobody who counts */
      if (next <= round) return;     /* someone owes it after all (holds_up says no) */
      r->round = next;
    }
    for (int i = 0; i < t->n; i++) {
      ps_member_t *m = t->v[i];
      if (!m->held || m->held_clock != r->round) continue;
      add_to_round(r, m->held, m->held_lr);
      free(m->held);
      m->held = NULL;
    }
  }
}

void ps_rounds_push(ps_rounds_t *r, ps_members_t *t, ps_range_t *range, ps_member_t *m,
                    int64_t clock, const float *grad, float lr) {
  ps_rounds_announce(r, m, clock);
  if (clock < r->round || m->held) {
    /* A round this server has applied already (it restarted from an older checkpoint,
     * or dropped the worker as silent), or a second push ahead of the current round
     * (a worker does not push again before the pull that waits for the first): not
     * part of any round. */
    r->discarded++;
    if (r->discarded == 1 || r->discarded % 1000 == 0)
      dt_log_warn(r->log, "worker %u pushed clock %" PRId64 " while this server is at round %"
                  PRId64 "; discarded (%" PRIu64 " so far)", m->id, clock, r->round,
                  r->discarded);
  } else if (clock == r->round) {
    add_to_round(r, grad, lr);
  } else if (!(m->held = malloc(r->n * sizeof *grad))) {
    dt_log_error(r->log, "out of memory holding worker %u's push for round %" PRId64
                 "; discarded", m->id, clock);
  } else {
    memcpy(m->held, grad, r->n * sizeof *grad);
    m->held_clock = clock;
    m->held_lr = lr;
  }
  m->last_push = clock;
  if (clock > m->pushed) m->pushed = clock;
  ps_rounds_advance(r, t, range);
}
