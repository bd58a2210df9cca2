/* The handshake (see core_handshake.h). Anything out of order is a PROTOCOL error that
 * closes the connection; a wrong token, model or split closes it with its own code. */
#define _POSIX_C_SOURCE 200809L
#include "core_handshake.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dtrain/ps_frame.h"

bool ps_handshake_check(ps_core_t *c, ps_actions_t *out, ps_session_t *s) {
  if (!c->initialized) return true;
  const ps_range_t *r = &c->range;
  if (s->num_params != r->num_params || s->server_index != r->index ||
      s->num_servers != r->nservers) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__BAD_SHARD,
                  "worker %u expects server %u of %u over %" PRIu64 " parameters; this server is "
                  "%u of %u over %" PRIu64 " (check the order of ps.servers)",
                  s->worker_id, s->server_index, s->num_servers, s->num_params, r->index,
                  r->nservers, r->num_params);
    return false;
  }
  if (s->signature != r->signature) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__BAD_SIGNATURE,
                  "worker %u's model signature %016" PRIx64
                  " differs from this server's %016" PRIx64
                  " (another model, parameter shapes or optimizer settings)",
                  s->worker_id, s->signature, r->signature);
    return false;
  }
  return true;
}

/* The id for a HELLO that asks for one: the id its own process holds already (it asks
 * again after losing the answer), else the lowest below num_workers that no member
 * holds. A member whose connection is gone still holds its id, for a reconnect, until
 * it is dropped. False, and s failed, when every id is held. */
static bool pick_id(ps_core_t *c, ps_actions_t *out, ps_session_t *s, const ps_hello_t *h,
                    uint32_t *id) {
  for (int i = 0; i < c->members.n && h->nonce; i++)
    if (c->members.v[i]->nonce == h->nonce) {
      *id = c->members.v[i]->id;
      return true;
    }
  for (uint32_t w = 0; w < h->num_workers; w++)
    if (!ps_members_find(&c->members, w)) {
      *id = w;
      dt_log_info(c->log, "assigned worker id %u of %u to %s", w, h->num_workers,
                  h->peer ? h->peer : "?");
      return true;
    }
  int connected = 0, away = 0;
  for (int i = 0; i < c->members.n; i++) {
    if (c->members.v[i]->id >= h->num_workers) continue;
    if (c->members.v[i]->session) connected++;
    else away++;
  }
  ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__WORKER_ID_TAKEN,
                "all %u worker ids (ps.num_workers) are held: %d by connected workers, %d by "
                "workers that may reconnect for up to ps.heartbeat_timeout_s = %g s; raise "
                "ps.num_workers, or start this worker when one has left", h->num_workers,
                connected, away, c->cfg.heartbeat_timeout_s);
  return false;
}

void ps_handshake_hello(ps_core_t *c, ps_session_t *s, const ps_hello_t *h, double now,
                        ps_actions_t *out) {
  if (h->protocol != DT_PS_PROTOCOL_VERSION) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__PROTOCOL,
                  "protocol version %u; this server speaks version %d", h->protocol,
                  DT_PS_PROTOCOL_VERSION);
    return;
  }
  s->worker_id = h->worker_id;
  if (c->cfg.has_token &&
      !dt_ps_token_equal(c->cfg.token, c->cfg.token_len, h->token, h->token_len)) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__BAD_TOKEN, "worker %u sent a wrong token",
                  h->worker_id);
    return;
  }
  s->signature = h->signature;
  s->num_params = h->num_params;
  s->server_index = h->server_index;
  s->num_servers = h->num_servers;
  if (!ps_handshake_check(c, out, s)) return;

  const char *peer = h->peer ? h->peer : "?";
  uint32_t id = h->worker_id;
  if (h->assign_id && !pick_id(c, out, s, h, &id)) return;
  s->worker_id = id;
  ps_member_t *m = ps_members_find(&c->members, id);
  if (m && m->session && m->nonce != h->nonce) {
    /* Two processes with one id would push for one member: each one's pushes dropped
     * as repeats of the other's, and both training on the same part of the data. */
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__WORKER_ID_TAKEN,
                  "worker id %u is held by another live process (connected from %s); give "
                  "every worker its own ps.worker_id, or leave it out to have one assigned",
                  id, m->peer);
    return;
  }
  /* The same process again (its nonce): the old connection is dead or dying. */
  if (m && m->session)
    ps_state_fail(c, out, m->session, DTRAIN__PS__ERROR_CODE__REPLACED,
                  "worker %u connected again from %s", id, peer);
  bool sync = c->cfg.consistency == DT_PS_SYNC;
  int64_t welcome_clock;
  if (m) {
    /* h is its latest push that every server answered: it is past that clock. */
    if (h->clock > m->pushed) m->pushed = h->clock;
    /* A newcomer that reconnects before naming its first round is offered the same
     * round again. */
    welcome_clock = sync && !m->joined ? m->join_min - 1 : m->pushed;
    dt_log_info(c->log, "worker %u reconnected from %s at clock %" PRId64, id, peer,
                h->clock);
  } else {
    /* A newcomer continues from the slowest live worker's clock, so that SSP does not
     * hold everyone back until it has caught up from 0. */
    int64_t start = ps_members_min_pushed(&c->members, h->clock);
    if (h->clock > start) start = h->clock;
    dt_error_t err = {0};
    if (!(m = ps_members_add(&c->members, id, start, now, &err))) {
      ps_state_fail(c, out, s, 0, "%s", err.msg);
      return;
    }
    m->last_push = h->clock;
    /* A clock past 0 means it pushed before (it was dropped, or this server restarted
     * without it): it is a worker of this job, not a passing client. */
    m->pushed_any = h->clock > 0;
    welcome_clock = sync ? ps_rounds_hello(&c->rounds, m, h->clock) : start;
    dt_log_info(c->log, "worker %u joined from %s at clock %" PRId64 "; %d live worker(s)",
                id, peer, welcome_clock, c->members.n);
  }
  m->session = s;
  m->last_seen = now;
  m->nonce = h->nonce;
  snprintf(m->peer, sizeof m->peer, "%s", peer);
  s->member = m;
  s->state = PS_SESSION_READY;

  ps_action_t *a = ps_state_emit(c, out, PS_ACT_WELCOME, s);
  a->welcome.worker_id = id;
  a->welcome.initialized = c->initialized;
  a->welcome.version = c->range.version;
  a->welcome.consistency = c->cfg.consistency;
  a->welcome.staleness = (uint32_t)c->cfg.staleness;
  a->welcome.clock = welcome_clock;
  a->welcome.heartbeat_timeout_s = c->cfg.heartbeat_timeout_s;
  /* A reconnecting worker's clock may be ahead of what a checkpoint restored: SSP
   * pulls that waited for it may go now. */
  if (c->initialized) ps_state_serve_pulls(c, out);
}

void ps_handshake_init(ps_core_t *c, ps_session_t *s, const ps_init_t *in,
                       ps_actions_t *out) {
  /* Several workers may find the range empty and send INIT; the first one wins. */
  if (c->initialized) return;
  const ps_model_t *m = &in->model;
  if (m->num_params != s->num_params || m->server_index != s->server_index ||
      m->num_servers != s->num_servers || m->signature != s->signature) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__BAD_SHARD,
                  "INIT (server %u of %u, %" PRIu64 " parameters, signature %016" PRIx64
                  ") does not match the same worker's HELLO",
                  m->server_index, m->num_servers, m->num_params, m->signature);
    return;
  }
  uint64_t b, e;
  dt_ps_range(m->num_params, m->num_servers, m->server_index, &b, &e);
  if (in->nparams != e - b) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__BAD_MESSAGE,
                  "INIT carries %zu floats for a range of %" PRIu64, in->nparams, e - b);
    return;
  }
  dt_error_t err = {0};
  ps_range_t r;
  int rc = ps_range_init(&r, m, in->params, &err);
  if (rc == 0 && (rc = ps_state_start_range(c, &r, &err)) != 0) ps_range_free(&r);
  if (rc) {
    ps_state_fail(c, out, s, rc == DT_ERR_MISMATCH ? DTRAIN__PS__ERROR_CODE__BAD_SIGNATURE : 0,
                  "%s",
                  err.msg);
    return;
  }
  const ps_range_t *g = &c->range;
  dt_log_info(c->log, "initialized by worker %u: server %u of %u, parameters [%" PRIu64
              ", %" PRIu64 ") of %" PRIu64 ", optimizer %s, consistency %s", s->worker_id,
              g->index, g->nservers, g->begin, g->end, g->num_params, dt_optim_names[g->ocfg.kind],
              dt_ps_consistency_names[c->cfg.consistency]);
  /* Connections that said HELLO before the range existed were not checked yet. */
  for (ps_session_t *o = c->sessions, *next; o; o = next) {
    next = o->next;
    if (o->state == PS_SESSION_READY) ps_handshake_check(c, out, o);
  }
}

bool ps_handshake_ready(ps_core_t *c, ps_actions_t *out, ps_session_t *s, int type) {
  if (!c->initialized) {
    ps_state_fail(c, out, s, DTRAIN__PS__ERROR_CODE__NOT_INITIALIZED,
                  "%s before any worker sent INIT",
                  dt_ps_type_name(type));
    return false;
  }
  return ps_handshake_check(c, out, s);
}
