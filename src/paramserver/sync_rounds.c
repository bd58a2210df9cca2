/* Bulk-synchronous rounds through the servers (ps.consistency = sync), indexed by
 * the workers' clocks so that every server puts the same workers into the same round.
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
 * on (ps_sync_hello's join_min): that round may turn out to be the worker's. The
 * wait lasts one message and ends anyway when the worker is dropped as silent.
 *
 * A worker holds round r up while it belongs to r and has not pushed clock r. A push
 * for a later round (a worker that went on while this server restarted from a
 * checkpoint) is held until its round comes; one for a round already applied is
 * discarded. A round nobody pushed into and nobody owes is skipped, which is how a
 * restored server catches up with the workers' clocks. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ps_server.h"

int64_t ps_sync_hello(ps_server_t *s, member_t *m, int64_t h) {
  int64_t offered = s->round_clock - 1 > h ? s->round_clock - 1 : h;
  m->joined = false;
  m->join_min = offered + 1;
  return offered;
}

void ps_sync_announce(ps_server_t *s, member_t *m, int64_t clock) {
  if (m->joined) return;
  m->joined = true;
  m->join_clock = clock;
  /* It is in no round before its first: as far as rounds go it is past them. */
  if (clock - 1 > m->pushed) m->pushed = clock - 1;
  dt_log_info(&s->log, "worker %u takes part from round %" PRId64 " on (this server is at round %"
              PRId64 ")", m->id, clock, s->round_clock);
}

static bool holds_up(const member_t *m, int64_t round) {
  if (!m->joined) return m->join_min <= round;
  return m->join_clock <= round && m->pushed < round;
}

/* The earliest round m can still push into. */
static int64_t next_round_of(const member_t *m) {
  if (m->held) return m->held_clock;
  if (!m->joined) return m->join_min;
  return m->join_clock > m->pushed + 1 ? m->join_clock : m->pushed + 1;
}

static void add_to_round(ps_server_t *s, const float *grad, float lr) {
  if (s->ncontrib == 0) memcpy(s->accum, grad, s->n * sizeof *grad);
  else
    for (size_t i = 0; i < s->n; i++) s->accum[i] += grad[i];
  s->ncontrib++;
  s->lr_sum += lr;
}

void ps_sync_advance(ps_server_t *s) {
  for (;;) {
    int64_t r = s->round_clock;
    for (int i = 0; i < s->nmembers; i++)
      if (holds_up(s->members[i], r)) return;
    if (s->ncontrib > 0) {
      float scale = 1.0f / (float)s->ncontrib;
      for (size_t i = 0; i < s->n; i++) s->accum[i] *= scale;
      ps_shard_apply(s, s->accum, (float)(s->lr_sum / s->ncontrib));
      s->ncontrib = 0;
      s->lr_sum = 0.0;
      s->round_clock = r + 1;
    } else {
      /* Nobody pushed into r and nobody owes it a push: go to the first round that
       * someone can still push into. */
      if (s->nmembers == 0) return;
      int64_t next = INT64_MAX;
      for (int i = 0; i < s->nmembers; i++) {
        int64_t x = next_round_of(s->members[i]);
        if (x < next) next = x;
      }
      if (next <= r) return; /* someone owes r after all (holds_up says no) */
      s->round_clock = next;
    }
    for (int i = 0; i < s->nmembers; i++) {
      member_t *m = s->members[i];
      if (!m->held || m->held_clock != s->round_clock) continue;
      add_to_round(s, m->held, m->held_lr);
      free(m->held);
      m->held = NULL;
    }
  }
}

void ps_sync_push(ps_server_t *s, member_t *m, int64_t clock, const float *grad, float lr) {
  ps_sync_announce(s, m, clock);
  if (clock < s->round_clock || m->held) {
    /* A round this server has applied already (it restarted from an older checkpoint,
     * or dropped the worker as silent), or a second push ahead of the current round
     * (a worker does not push again before the pull that waits for the first): not
     * part of any round. */
    s->stats.discarded++;
    if (s->stats.discarded == 1 || s->stats.discarded % 1000 == 0)
      dt_log_warn(&s->log, "worker %u pushed clock %" PRId64 " while this server is at round %"
                  PRId64 "; discarded (%" PRIu64 " so far)", m->id, clock, s->round_clock,
                  s->stats.discarded);
  } else if (clock == s->round_clock) {
    add_to_round(s, grad, lr);
  } else if (!(m->held = malloc(s->n * sizeof *grad))) {
    dt_log_error(&s->log, "out of memory holding worker %u's push for round %" PRId64
                 "; discarded", m->id, clock);
  } else {
    memcpy(m->held, grad, s->n * sizeof *grad);
    m->held_clock = clock;
    m->held_lr = lr;
  }
  m->last_push = clock;
  if (clock > m->pushed) m->pushed = clock;
  ps_sync_advance(s);
}
