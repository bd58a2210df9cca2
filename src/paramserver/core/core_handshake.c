/* The handshake (see core_handshake.h). Anything out of order is a PROTOCOL error that
 * closes the connection; a wrong token, model or split closes it with its own code. */
#define _POSIX_C_SOURCE 200809L
#include "core_handshake.h"

#include <inttypes.h>
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
  ps_member_t *m = ps_members_find(&c->members, h->worker_id);
  if (m && m->session)
    ps_state_fail(c, out, m->session, DTRAIN__PS__ERROR_CODE__REPLACED,
                  "worker %u connected again from %s", h->worker_id, peer);
  bool sync = c->cfg.consistency == DT_PS_SYNC;
  int64_t welcome_clock;
  if (m) {
    /* h is its latest push that every server answered: it is past that clock. */
    if (h->clock > m->pushed) m->pushed = h->clock;
    /* A newcomer that reconnects before naming its first round is offered the same
     * round again. */
    welcome_clock = sync && !m->joined ? m->join_min - 1 : m->pushed;
    dt_log_info(c->log, "worker %u reconnected from %s at clock %" PRId64, h->worker_id, peer,
                h->clock);
  } else {
    /* A newcomer continues from the slowest live worker's clock, so that SSP does not
     * hold everyone back until it has caught up from 0. */
    int64_t start = ps_members_min_pushed(&c->members, h->clock);
    if (h->clock > start) start = h->clock;
    dt_error_t err = {0};
    if (!(m = ps_members_add(&c->members, h->worker_id, start, now, &err))) {
      ps_state_fail(c, out, s, 0, "%s", err.msg);
      return;
    }
    m->last_push = h->clock;
    /* A clock past 0 means it pushed before (it was dropped, or this server restarted
     * without it): it is a worker of this job, not a passing client. */
    m->pushed_any = h->clock > 0;
    welcome_clock = sync ? ps_rounds_hello(&c->rounds, m, h->clock) : start;
    dt_log_info(c->log, "worker %u joined from %s at clock %" PRId64 "; %d live worker(s)",
                h->worker_id, peer, welcome_clock, c->members.n);
  }
  m->session = s;
  m->last_seen = now;
  s->member = m;
  s->state = PS_SESSION_READY;

  ps_action_t *a = ps_state_emit(c, out, PS_ACT_WELCOME, s);
  a->welcome.worker_id = h->worker_id;
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
