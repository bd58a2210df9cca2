/* What each event does (ps_core_handle): sessions opening and closing, the data path
 * (PUSH, PULL, BYE), the timer and stopping. The handshake is in core_handshake.c.
 *
 *   async  every push is applied at once; pulls are answered at once.
 *   ssp    as async, but a pull at clock c waits until every live worker has pushed
 *          clock c-s-1 (Ho et al., NIPS'13).
 *   sync   round r sums every live worker's push of clock r and applies their mean
 *          once; a pull at clock c waits until round c-1 is applied (sync_rounds.c).
 *          A worker that leaves or is dropped no longer holds a round up. */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core_handshake.h"
#include "core_state.h"
#include "dtrain/hot.h"
#include "dtrain/ps_frame.h"

/* How many of g's n values are NaN or infinite, and where the first one is. Every
 * push goes through this before it is applied, so the common case (none) is one
 * branch-free pass that vectorizes (a float is NaN or infinite when its exponent bits
 * are all ones); the first bad one is looked for only when there is one. */
DT_HOT_LOOP static size_t count_nonfinite(const float *g, size_t n, size_t *first) {
  uint32_t bad = 0;
  size_t total = 0;
  for (size_t i = 0; i < n;) {
    /* Blocks keep the 32-bit count from overflowing on ranges over 4G values. */
    size_t end = n - i > (1u << 30) ? i + (1u << 30) : n;
    bad = 0;
    for (; i < end; i++) {
      uint32_t v;
      memcpy(&v, &g[i], sizeof v);
      bad += (v & 0x7f800000u) == 0x7f800000u;
    }
    total += bad;
  }
  *first = 0;
  if (total)
    for (size_t i = 0; i < n; i++)
      if (!isfinite(g[i])) {
        *first = i;
        break;
      }
  return total;
}

static void on_push(ps_core_t *c, ps_session_t *s, const ps_push_t *p, double now,
                    ps_actions_t *out) {
  if (!ps_handshake_ready(c, out, s, DT_PS_PUSH)) return;
  if (p->n != c->range.n) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__BAD_MESSAGE,
                  "a gradient of %zu floats for a range of %zu", p->n, c->range.n);
    return;
  }
  size_t first;
  size_t bad = count_nonfinite(p->grad, p->n, &first);
  if (bad) {
    /* One NaN applied would poison the range for good: every later pull, every
     * checkpoint. The worker checks before it pushes; this is for one that did not. */
    c->stats.nonfinite++;
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__BAD_MESSAGE,
                  "a gradient with %zu non-finite value(s) (the first at %zu of the range: %g); "
                  "not applied", bad, first, (double)p->grad[first]);
    return;
  }
  ps_member_t *m = s->member;
  m->pushed_any = true;
  if (p->clock <= m->last_push) {
    /* The worker lost the connection before our answer and sent this push again,
     * but the first copy had arrived: applying it twice would count it twice. */
    c->stats.repeated++;
    ps_state_serve_pulls(c, out);
    return;
  }
  c->stats.pushes++;
  float lr = p->lr;
  /* Staleness-aware learning rate (Zhang et al., IJCAI'16): a gradient computed on
   * parameters tau updates old moves them 1/tau as far. */
  if (c->cfg.staleness_lr && c->range.version > p->base_version + 1)
    lr /= (float)(c->range.version - p->base_version);
  if (c->cfg.consistency == DT_PS_SYNC) {
    ps_rounds_push(&c->rounds, &c->members, &c->range, m, p->clock, p->grad, lr);
  } else {
    if (p->clock > m->pushed) m->pushed = p->clock;
    m->last_push = p->clock;
    ps_range_apply(&c->range, p->grad, lr);
  }
  ps_state_serve_pulls(c, out);
  ps_state_maybe_checkpoint(c, now, out);
}

static void on_pull(ps_core_t *c, ps_session_t *s, int64_t clock, ps_actions_t *out) {
  if (!ps_handshake_ready(c, out, s, DT_PS_PULL)) return;
  ps_member_t *m = s->member;
  if (m->pull_pending) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__PROTOCOL,
                  "a second PULL before the first was answered");
    return;
  }
  if (c->cfg.consistency == DT_PS_SYNC && !m->joined) {
    /* Naming its first round may let the rounds before it be applied. */
    ps_rounds_announce(&c->rounds, m, clock);
    ps_rounds_advance(&c->rounds, &c->members, &c->range);
    ps_state_serve_pulls(c, out);
  }
  if (ps_state_pull_ready(c, clock)) {
    ps_state_answer(c, out, s, clock);
  } else {
    m->pull_pending = true;
    m->pull_clock = clock;
    c->stats.pulls_waited++;
  }
}

static void on_bye(ps_core_t *c, ps_session_t *s, ps_actions_t *out) {
  ps_member_t *m = s->member;
  ps_state_emit(c, out, PS_ACT_CLOSE, s);
  ps_state_detach(c, s);
  s->state = PS_SESSION_CLOSING;
  if (!m) return;
  ps_state_remove_member(c, m, "left (BYE)");
  ps_state_settle(c, out);
  ps_core_log_stats(c, "membership changed");
}

/* The wire type an event stands for, for messages that name it. */
static int wire_type(const ps_event_t *ev) {
  switch (ev->kind) {
    case PS_EV_HELLO: return DT_PS_HELLO;
    case PS_EV_INIT: return DT_PS_INIT;
    case PS_EV_PUSH: return DT_PS_PUSH;
    case PS_EV_PULL: return DT_PS_PULL;
    case PS_EV_HEARTBEAT: return DT_PS_HEARTBEAT;
    case PS_EV_BYE: return DT_PS_BYE;
    default: return ev->message_type;
  }
}

static void on_message(ps_core_t *c, const ps_event_t *ev, ps_actions_t *out) {
  ps_session_t *s = ev->session;
  if (!s->linked || s->state == PS_SESSION_CLOSING) return;
  if (s->member) s->member->last_seen = ev->now;
  if (s->state == PS_SESSION_NEW && ev->kind != PS_EV_HELLO) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__PROTOCOL,
                  "the first message must be HELLO, not %s",
                  dt_ps_type_name(wire_type(ev)));
    return;
  }
  switch (ev->kind) {
    case PS_EV_HELLO:
      if (s->state == PS_SESSION_READY)
        ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__PROTOCOL, "a second HELLO");
      else
        ps_handshake_hello(c, s, &ev->hello, ev->now, out);
      break;
    case PS_EV_INIT: ps_handshake_init(c, s, &ev->init, out); break;
    case PS_EV_PUSH: on_push(c, s, &ev->push, ev->now, out); break;
    case PS_EV_PULL: on_pull(c, s, ev->pull_clock, out); break;
    case PS_EV_HEARTBEAT:
      if (s->state == PS_SESSION_READY && s->member)
        ps_state_emit(c, out, PS_ACT_HEARTBEAT, s)->heartbeat.clock = s->member->pushed;
      break;
    case PS_EV_BYE: on_bye(c, s, out); break;
    default:
      ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__PROTOCOL,
                    "%s is a message for workers, not servers",
                    dt_ps_type_name(wire_type(ev)));
  }
}

/* ---- connections and time ---- */

static void on_open(ps_core_t *c, ps_session_t *s, double now) {
  s->prev = NULL;
  s->next = c->sessions;
  if (c->sessions) c->sessions->prev = s;
  c->sessions = s;
  s->linked = true;
  s->state = PS_SESSION_NEW;
  s->opened = now;
  s->member = NULL;
}

static void on_closed(ps_core_t *c, const ps_event_t *ev) {
  ps_session_t *s = ev->session;
  if (!s->linked) return;
  int code = ev->closed.code;
  if (ev->closed.failed && code != DTRAIN__PS__ERROR_CODE__TIMEOUT &&
      code != DTRAIN__PS__ERROR_CODE__REPLACED && code != DTRAIN__PS__ERROR_CODE__SHUTTING_DOWN)
    c->stats.bad_connections++;
  if (!ev->closed.failed && ev->closed.why && s->member)
    dt_log_info(c->log, "worker %u disconnected without BYE (%s); it stays a member for up to "
                "ps.heartbeat_timeout_s = %g s%s", s->worker_id, ev->closed.why,
                c->cfg.heartbeat_timeout_s,
                s->member->pushed_any ? "" : ", holding nobody back until it has pushed");
  ps_state_detach(c, s);
  s->state = PS_SESSION_CLOSING;
  if (s->prev) s->prev->next = s->next;
  else c->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = NULL;
  s->linked = false;
}

/* Drops members silent for longer than ps.heartbeat_timeout_s, closes connections
 * that said no HELLO within it, and checkpoints when the schedule says so. */
static void on_tick(ps_core_t *c, double now, ps_actions_t *out) {
  double t = c->cfg.heartbeat_timeout_s;
  int dropped = 0;
  for (int i = c->members.n - 1; i >= 0; i--) {
    if (i >= c->members.n) continue;
    ps_member_t *m = c->members.v[i];
    double silent = now - m->last_seen;
    if (silent <= t) continue;
    if (m->session)
      ps_state_fail(c, out, m->session, DTRAIN__PS__ERROR_CODE__TIMEOUT,
                    "nothing heard for %.1f s", silent);
    c->stats.dropped++;
    char why[160];
    snprintf(why, sizeof why, "dropped: nothing heard for %.1f s (ps.heartbeat_timeout_s = %g)",
             silent, t);
    ps_state_remove_member(c, m, why);
    dropped++;
  }
  /* All drops first: an update after a pull was answered would change the values
   * that answer points at. */
  if (dropped || c->recheck) {
    c->recheck = false;
    ps_state_settle(c, out);
  }
  if (dropped) ps_core_log_stats(c, "membership changed");
  for (ps_session_t *s = c->sessions; s; s = s->next)
    if (s->state == PS_SESSION_NEW && now - s->opened > t)
      ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__TIMEOUT, "no HELLO within %g s", t);
  ps_state_maybe_checkpoint(c, now, out);
}

static void on_stop(ps_core_t *c, ps_actions_t *out) {
  if (c->stopping) return;
  c->stopping = true;
  if (c->cfg.checkpoint_dir[0] && c->initialized && !c->ckpt_pending &&
      c->range.version != c->last_ckpt_version) {
    ps_action_t *a = ps_state_emit(c, out, PS_ACT_CHECKPOINT, NULL);
    a->checkpoint.final = true;
    c->ckpt_pending = true;
  }
}

void ps_core_handle(ps_core_t *c, const ps_event_t *ev, ps_actions_t *out) {
  c->answered = false;
  switch (ev->kind) {
    case PS_EV_OPEN: on_open(c, ev->session, ev->now); break;
    case PS_EV_CLOSED: on_closed(c, ev); break;
    case PS_EV_TICK: on_tick(c, ev->now, out); break;
    case PS_EV_STOP: on_stop(c, out); break;
    case PS_EV_CHECKPOINTED:
      c->ckpt_pending = false;
      c->last_ckpt_time = ev->now;
      if (ev->checkpointed.ok) c->last_ckpt_version = ev->checkpointed.version;
      break;
    default: on_message(c, ev, out);
  }
  /* PARAMS actions point at the live values, so nothing may change them after the
   * first pull of an event was answered. */
  assert(!c->answered || c->range.version == c->answered_version);
}
