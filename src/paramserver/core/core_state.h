/* The core's state (ps_core_t, whose fields only core/ sees) and what every handler of
 * an event does with it: emit actions, fail a connection, answer pulls, let members
 * go, keep the checkpoint schedule. The handlers are in core_events.c and
 * core_handshake.c; ps_core.h is the outside's view. */
#ifndef DTRAIN_PS_CORE_STATE_H
#define DTRAIN_PS_CORE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/ps.h"
#include "members.h"
#include "ps_core.h"
#include "range.h"
#include "sync_rounds.h"

struct ps_core {
  dt_ps_config_t cfg;
  const dt_log_t *log;
  bool initialized;
  bool stopping;
  ps_range_t range;         /* once INIT (or a checkpoint) has set it */
  ps_rounds_t rounds;       /* sync only */
  ps_members_t members;
  ps_session_t *sessions;   /* linked ones */
  ps_stats_t stats;
  double last_ckpt_time;
  uint64_t last_ckpt_version;
  bool ckpt_pending;        /* a CHECKPOINT action waits for its outcome */
  /* A member stopped holding others back (it lost its connection before pushing):
   * the next tick re-checks the rounds and the waiting pulls, since CLOSED may not
   * answer with actions. */
  bool recheck;
  /* The current event: whether it answered a pull, and at which version. */
  bool answered;
  uint64_t answered_version;
  ps_action_t scratch;      /* where actions go that found no memory */
};


/* A new action at the end of out (a scratch one, counted in out->lost, when there is
 * no memory: the caller need not check). */
ps_action_t *ps_state_emit(ps_core_t *c, ps_actions_t *out, ps_action_kind kind,
                           ps_session_t *s);
/* The session no longer speaks for its member (which stays, for a reconnect); a PULL
 * it had pending goes with it. */
void ps_state_detach(ps_core_t *c, ps_session_t *s);
/* ERROR(code) with a message, and the connection closes; PS_EV_CLOSED counts it. */
void ps_state_fail(ps_core_t *c, ps_actions_t *out, ps_session_t *s, int code, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

/* Whether a pull at `clock` may be answered now. */
bool ps_state_pull_ready(const ps_core_t *c, int64_t clock);
/* PARAMS with the range's current values, answering a pull at `clock`. */
void ps_state_answer(ps_core_t *c, ps_actions_t *out, ps_session_t *s, int64_t clock);
/* Answers every pending pull that may now be answered. */
void ps_state_serve_pulls(ps_core_t *c, ps_actions_t *out);
/* After members went: applies the rounds nobody holds up now, answers the pulls that
 * may go. */
void ps_state_settle(ps_core_t *c, ps_actions_t *out);
/* Takes m out (logging why); its session, if any, stays without a member. */
void ps_state_remove_member(ps_core_t *c, ps_member_t *m, const char *why);
/* A CHECKPOINT action when ps.checkpoint_every_s or _updates says so. */
void ps_state_maybe_checkpoint(ps_core_t *c, double now, ps_actions_t *out);
/* Takes over r (left empty) as the range, with the rounds over it in sync mode. */
int ps_state_start_range(ps_core_t *c, ps_range_t *r, dt_error_t *err);

#endif
