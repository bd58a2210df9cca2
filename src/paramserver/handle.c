/* What each message from a worker does (see ps_server.h): the handshake and its
 * checks, INIT, PUSH, PULL, HEARTBEAT and BYE. Anything out of order or not meant
 * for a server is a PROTOCOL error that closes the connection. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ps_server.h"

static void send_msg(conn_t *c, int type, const ProtobufCMessage *m) {
  uint8_t head[512];
  size_t len = dt_ps_encode_head(type, m, 0, head);
  ps_conn_send(c, head, len, NULL, 0);
}

/* A worker's HELLO must describe the model and split this server holds. */
static bool check_model(conn_t *c) {
  ps_server_t *s = c->srv;
  if (!s->initialized) return true;
  if (c->num_params != s->num_params || c->server_index != s->index ||
      c->num_servers != s->nservers) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__BAD_SHARD,
                 "worker %u expects server %u of %u over %" PRIu64 " parameters; this server is "
                 "%u of %u over %" PRIu64 " (check the order of ps.servers)",
                 c->worker_id, c->server_index, c->num_servers, c->num_params, s->index,
                 s->nservers, s->num_params);
    return false;
  }
  if (c->signature != s->signature) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__BAD_SIGNATURE,
                 "worker %u's model signature %016" PRIx64 " differs from this server's %016" PRIx64
                 " (another model, parameter shapes or optimizer settings)",
                 c->worker_id, c->signature, s->signature);
    return false;
  }
  return true;
}

static void handle_hello(conn_t *c, const Dtrain__Ps__Hello *h) {
  ps_server_t *s = c->srv;
  if (h->protocol != DT_PS_PROTOCOL_VERSION) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__PROTOCOL,
                 "protocol version %u; this server speaks version %d", h->protocol,
                 DT_PS_PROTOCOL_VERSION);
    return;
  }
  c->worker_id = h->worker_id;
  if (s->cfg.has_token &&
      !dt_ps_token_equal(s->cfg.token, s->cfg.token_len, h->token.data, h->token.len)) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__BAD_TOKEN, "worker %u sent a wrong token",
                 h->worker_id);
    return;
  }
  c->signature = h->signature;
  c->num_params = h->num_params;
  c->server_index = h->server_index;
  c->num_servers = h->num_servers;
  if (!check_model(c)) return;

  dt_error_t err;
  member_t *m = ps_member_find(s, h->worker_id);
  if (m && m->conn) {
    conn_t *old = m->conn;
    ps_conn_fail(old, DTRAIN__PS__ERROR_CODE__REPLACED, "worker %u connected again from %s",
                 h->worker_id, c->peer);
  }
  bool sync = s->cfg.consistency == DT_PS_SYNC;
  int64_t welcome_clock;
  if (m) {
    /* h is its latest push that every server answered: it is past that clock. */
    if (h->clock > m->pushed) m->pushed = h->clock;
    /* A newcomer that reconnects before naming its first round is offered the same
     * round again. */
    welcome_clock = sync && !m->joined ? m->join_min - 1 : m->pushed;
    dt_log_info(&s->log, "worker %u reconnected from %s at clock %" PRId64, h->worker_id, c->peer,
                h->clock);
  } else {
    /* A newcomer continues from the slowest live worker's clock, so that SSP does not
     * hold everyone back until it has caught up from 0. */
    int64_t start = ps_min_pushed(s, h->clock);
    if (h->clock > start) start = h->clock;
    if (!(m = ps_member_add(s, h->worker_id, start, &err))) {
      ps_conn_fail(c, 0, "%s", err.msg);
      return;
    }
    m->last_push = h->clock;
    welcome_clock = sync ? ps_sync_hello(s, m, h->clock) : start;
    dt_log_info(&s->log, "worker %u joined from %s at clock %" PRId64 "; %d live worker(s)",
                h->worker_id, c->peer, welcome_clock, s->nmembers);
  }
  m->conn = c;
  m->last_seen = ps_now();
  c->member = m;
  c->state = CONN_READY;

  Dtrain__Ps__Welcome w = DTRAIN__PS__WELCOME__INIT;
  w.protocol = DT_PS_PROTOCOL_VERSION;
  w.initialized = s->initialized;
  w.version = s->version;
  w.consistency = (Dtrain__Ps__Consistency)s->cfg.consistency;
  w.staleness = (uint32_t)s->cfg.staleness;
  w.clock = welcome_clock;
  w.heartbeat_timeout_s = s->cfg.heartbeat_timeout_s;
  send_msg(c, DT_PS_WELCOME, &w.base);
  /* A reconnecting worker's clock may be ahead of what a checkpoint restored: SSP
   * pulls that waited for it may go now. */
  if (s->initialized) ps_serve_pulls(s);
}

static void handle_init(conn_t *c, const dt_ps_msg_t *msg) {
  ps_server_t *s = c->srv;
  const Dtrain__Ps__Init *in = msg->m.init;
  /* Several workers may find the range empty and send INIT; the first one wins. */
  if (s->initialized) return;
  if (in->num_params != c->num_params || in->server_index != c->server_index ||
      in->num_servers != c->num_servers || in->signature != c->signature) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__BAD_SHARD,
                 "INIT (server %u of %u, %" PRIu64 " parameters, signature %016" PRIx64
                 ") does not match the same worker's HELLO",
                 in->server_index, in->num_servers, in->num_params, in->signature);
    return;
  }
  dt_error_t err = {0};
  int rc = ps_shard_init(s, in, msg->payload, &err);
  if (rc) {
    ps_conn_fail(c, rc == DT_ERR_MISMATCH ? DTRAIN__PS__ERROR_CODE__BAD_SIGNATURE : 0, "%s",
                 err.msg);
    return;
  }
  dt_log_info(&s->log, "initialized by worker %u: server %u of %u, parameters [%" PRIu64
              ", %" PRIu64 ") of %" PRIu64 ", optimizer %s, consistency %s", c->worker_id,
              s->index, s->nservers, s->begin, s->end, s->num_params,
              dt_optim_names[s->ocfg.kind], dt_ps_consistency_names[s->cfg.consistency]);
  /* Connections that said HELLO before the range existed were not checked yet. */
  for (conn_t *o = s->conns, *next; o; o = next) {
    next = o->next;
    if (o->state == CONN_READY) check_model(o);
  }
}

/* PUSH and PULL need the range and a model that matches it. */
static bool ready_for_data(conn_t *c, int type) {
  if (!c->srv->initialized) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__NOT_INITIALIZED,
                 "%s before any worker sent INIT", dt_ps_type_name(type));
    return false;
  }
  return check_model(c);
}

static void handle_push(conn_t *c, const dt_ps_msg_t *msg) {
  ps_server_t *s = c->srv;
  if (!ready_for_data(c, DT_PS_PUSH)) return;
  if (msg->npayload != s->n) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__BAD_MESSAGE,
                 "a gradient of %zu floats for a range of %zu", msg->npayload, s->n);
    return;
  }
  ps_shard_push(s, c->member, msg->m.push, msg->payload);
}

static void handle_pull(conn_t *c, const Dtrain__Ps__Pull *p) {
  ps_server_t *s = c->srv;
  if (!ready_for_data(c, DT_PS_PULL)) return;
  member_t *m = c->member;
  if (m->pull_pending) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__PROTOCOL, "a second PULL before the first was answered");
    return;
  }
  if (s->cfg.consistency == DT_PS_SYNC && !m->joined) {
    /* Naming its first round may let the rounds before it be applied. */
    ps_sync_announce(s, m, p->clock);
    ps_sync_advance(s);
    ps_serve_pulls(s);
  }
  if (ps_pull_ready(s, p->clock)) {
    ps_send_params(c, p->clock);
  } else {
    m->pull_pending = true;
    m->pull_clock = p->clock;
    s->stats.pulls_waited++;
  }
}

void ps_send_params(conn_t *c, int64_t clock) {
  ps_server_t *s = c->srv;
  int64_t slowest = ps_min_pushed(s, clock - 1);
  int64_t gap = clock - 1 - slowest;
  if (gap < 0) gap = 0;
  if (gap > s->stats.max_gap) s->stats.max_gap = gap;
  s->stats.gap_hist[gap < 7 ? gap : 7]++;
  s->stats.pulls++;
  Dtrain__Ps__Params p = DTRAIN__PS__PARAMS__INIT;
  p.version = s->version;
  p.min_clock = slowest;
  uint8_t head[128];
  size_t hlen = dt_ps_encode_head(DT_PS_PARAMS, &p.base, s->n, head);
  ps_conn_send(c, head, hlen, s->params, s->n * sizeof(float));
}

void ps_handle_frame(conn_t *c, int type, const uint8_t *body, size_t len) {
  ps_server_t *s = c->srv;
  dt_ps_msg_t msg;
  dt_error_t err = {0};
  int code = 0;
  if (dt_ps_decode(type, body, len, &msg, &code, &err)) {
    ps_conn_fail(c, code, "%s", err.msg);
    return;
  }
  if (c->member) c->member->last_seen = ps_now();
  if (c->state == CONN_NEW && type != DT_PS_HELLO) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__PROTOCOL, "the first message must be HELLO, not %s",
                 dt_ps_type_name(type));
  } else {
    switch (type) {
      case DT_PS_HELLO:
        if (c->state == CONN_READY)
          ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__PROTOCOL, "a second HELLO");
        else
          handle_hello(c, msg.m.hello);
        break;
      case DT_PS_INIT: handle_init(c, &msg); break;
      case DT_PS_PUSH: handle_push(c, &msg); break;
      case DT_PS_PULL: handle_pull(c, msg.m.pull); break;
      case DT_PS_HEARTBEAT: break;
      case DT_PS_BYE: {
        member_t *m = c->member;
        ps_conn_close(c);
        if (m) ps_member_remove(s, m, "left (BYE)");
        break;
      }
      default:
        ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__PROTOCOL, "%s is a message for workers, not servers",
                     dt_ps_type_name(type));
    }
  }
  dt_ps_msg_free(&msg);
}
