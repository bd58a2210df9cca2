/* The parameter server's core (src/paramserver/core/ps_core.h) without sockets: each
 * test plays workers' messages, timer ticks and closed connections into one or two
 * cores as events and checks the actions that come back and the state they leave.
 *
 * The model is one tensor of 4 floats with plain SGD (no momentum, no decay), and
 * every push has lr 1: after updates the parameters are exactly their start minus
 * the gradients applied, so every value below is checked exactly (tolerance 0). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/ps.h"
#include "ps_core.h"
#include "test_util.h"

enum { NPARAMS = 4 };

/* A worker's connection, and what the server's actions told it. */
typedef struct {
  ps_session_t sess;
  int welcomes, params, fails, closes, heartbeats;
  int64_t welcome_clock;
  uint32_t welcome_id;
  bool welcome_initialized;
  uint64_t version;        /* of its latest PARAMS */
  int64_t min_clock;
  float values[NPARAMS];
  size_t n;
  int fail_code;
  char fail_msg[PS_FAIL_MSG_MAX];
} peer_t;

/* One core and what a test needs around it: the I/O's part, played here. */
typedef struct {
  ps_core_t *core;
  dt_ps_config_t cfg;
  dt_log_t log;
  FILE *logf;
  char *logbuf;
  size_t loglen;
  ps_actions_t acts;
  uint32_t index, nservers;
  uint64_t signature;
  dt_param_info_t tensor;
  int checkpoints, final_checkpoints;
  double now;
} srv_t;

static void srv_start(srv_t *s, int consistency, long staleness, uint32_t index,
                      uint32_t nservers) {
  memset(s, 0, sizeof *s);
  s->cfg.consistency = consistency;
  s->cfg.staleness = staleness;
  s->cfg.heartbeat_timeout_s = 10.0;
  s->cfg.max_connections = 256;
  s->index = index;
  s->nservers = nservers;
  snprintf(s->tensor.name, sizeof s->tensor.name, "w");
  s->tensor.shape = dt_shape_1d(NPARAMS);
  s->tensor.count = NPARAMS;
  dt_optim_config_t o = dt_optim_defaults(DT_OPT_SGD);
  s->signature = dt_ps_signature(&s->tensor, 1, NPARAMS, &o);
  s->logf = open_memstream(&s->logbuf, &s->loglen);
  s->log = dt_log_make(0, 1);
  s->log.out = s->log.err = s->logf;
}

static void srv_core(srv_t *s) {
  dt_error_t err = {0};
  s->core = ps_core_new(&s->cfg, &s->log, &err);
  if (!s->core) {
    fprintf(stderr, "ps_core_new: %s\n", err.msg);
    exit(1);
  }
}

static void srv_stop(srv_t *s) {
  ps_core_free(s->core);
  ps_actions_free(&s->acts);
  fclose(s->logf);
  free(s->logbuf);
}

/* The server's log so far. */
static const char *srv_log(srv_t *s) {
  fflush(s->logf);
  return s->logbuf;
}

/* An event that answers with no actions, as the I/O feeds them while it works. */
static void notify(srv_t *s, ps_event_t ev) {
  ps_actions_t none = {0};
  ev.now = s->now;
  ps_core_handle(s->core, &ev, &none);
  CHECK_INT_EQ(none.n, 0);
  ps_actions_free(&none);
}

/* Feeds ev and carries out its actions the way server.c does: a FAIL or CLOSE ends
 * the connection (PS_EV_CLOSED), a CHECKPOINT succeeds (PS_EV_CHECKPOINTED). PARAMS
 * values are copied at once, as the I/O sends them before the next event. */
static void feed(srv_t *s, ps_event_t ev) {
  ev.now = s->now;
  s->acts.n = 0;
  ps_core_handle(s->core, &ev, &s->acts);
  for (int i = 0; i < s->acts.n; i++) {
    const ps_action_t *a = &s->acts.v[i];
    peer_t *p = a->session ? a->session->io : NULL;
    switch (a->kind) {
      case PS_ACT_WELCOME:
        p->welcomes++;
        p->welcome_clock = a->welcome.clock;
        p->welcome_id = a->welcome.worker_id;
        p->welcome_initialized = a->welcome.initialized;
        break;
      case PS_ACT_PARAMS:
        p->params++;
        p->version = a->params.version;
        p->min_clock = a->params.min_clock;
        p->n = a->params.n;
        memcpy(p->values, a->params.values, a->params.n * sizeof(float));
        break;
      case PS_ACT_HEARTBEAT: p->heartbeats++; break;
      case PS_ACT_FAIL:
        p->fails++;
        p->fail_code = a->fail.code;
        snprintf(p->fail_msg, sizeof p->fail_msg, "%s", a->fail.message);
        notify(s, (ps_event_t){.kind = PS_EV_CLOSED, .session = a->session,
                               .closed = {.failed = true, .code = a->fail.code}});
        break;
      case PS_ACT_CLOSE:
        p->closes++;
        notify(s, (ps_event_t){.kind = PS_EV_CLOSED, .session = a->session});
        break;
      case PS_ACT_CHECKPOINT:
        s->checkpoints++;
        s->final_checkpoints += a->checkpoint.final;
        notify(s, (ps_event_t){.kind = PS_EV_CHECKPOINTED,
                               .checkpointed = {.ok = true,
                                                .version = ps_core_range(s->core)->version}});
        break;
    }
  }
  CHECK_INT_EQ(s->acts.lost, 0);
}

static void connect_peer(srv_t *s, peer_t *p) {
  memset(p, 0, sizeof *p);
  p->sess.io = p;
  feed(s, (ps_event_t){.kind = PS_EV_OPEN, .session = &p->sess});
}

static void hello(srv_t *s, peer_t *p, uint32_t worker, int64_t clock) {
  feed(s, (ps_event_t){.kind = PS_EV_HELLO, .session = &p->sess,
                       .hello = {.protocol = DT_PS_PROTOCOL_VERSION, .worker_id = worker,
                                 .signature = s->signature, .num_params = NPARAMS,
                                 .server_index = s->index, .num_servers = s->nservers,
                                 .clock = clock, .peer = "10.0.0.1:5000"}});
}

/* A new connection that says HELLO. */
static void join(srv_t *s, peer_t *p, uint32_t worker, int64_t clock) {
  connect_peer(s, p);
  hello(s, p, worker, clock);
}

/* INIT with the range's part of `all` (NPARAMS floats). */
static void init(srv_t *s, peer_t *p, const float *all) {
  uint64_t b, e;
  dt_ps_range(NPARAMS, s->nservers, s->index, &b, &e);
  ps_model_t m = {.signature = s->signature, .num_params = NPARAMS, .server_index = s->index,
                  .num_servers = s->nservers, .tensors = &s->tensor, .ntensors = 1,
                  .optim = dt_optim_defaults(DT_OPT_SGD)};
  feed(s, (ps_event_t){.kind = PS_EV_INIT, .session = &p->sess,
                       .init = {.model = m, .params = all + b, .nparams = (size_t)(e - b)}});
}

/* A push of clock `clock` whose gradient is g everywhere. */
static void push(srv_t *s, peer_t *p, int64_t clock, float g) {
  float grad[NPARAMS];
  for (int i = 0; i < NPARAMS; i++) grad[i] = g;
  const ps_range_t *r = ps_core_range(s->core);
  feed(s, (ps_event_t){.kind = PS_EV_PUSH, .session = &p->sess,
                       .push = {.clock = clock, .lr = 1.0f, .grad = grad, .n = r ? r->n : 0}});
}

static void pull(srv_t *s, peer_t *p, int64_t clock) {
  feed(s, (ps_event_t){.kind = PS_EV_PULL, .session = &p->sess, .pull_clock = clock});
}

static void bye(srv_t *s, peer_t *p) {
  feed(s, (ps_event_t){.kind = PS_EV_BYE, .session = &p->sess});
}

static void heartbeat(srv_t *s, peer_t *p) {
  feed(s, (ps_event_t){.kind = PS_EV_HEARTBEAT, .session = &p->sess});
}

static void tick(srv_t *s, double now) {
  s->now = now;
  feed(s, (ps_event_t){.kind = PS_EV_TICK});
}

/* The peer hung up without BYE. */
static void hang_up(srv_t *s, peer_t *p) {
  notify(s, (ps_event_t){.kind = PS_EV_CLOSED, .session = &p->sess,
                         .closed = {.why = "end of stream"}});
}

static int64_t pushed_of(srv_t *s, uint32_t id) {
  const ps_member_t *m = ps_core_member(s->core, id);
  return m ? m->pushed : -1;
}

static float param(srv_t *s, int i) { return ps_core_range(s->core)->params[i]; }

static const float ZEROS[NPARAMS] = {0};

/* Join, leave (BYE), drop after the heartbeat timeout, rejoin, reconnect, hang up,
 * and the handshake's refusals. */
static void test_membership(void) {
  srv_t s;
  srv_start(&s, DT_PS_ASYNC, 0, 0, 1);
  srv_core(&s);
  peer_t a, b, a2, a3, c, d;
  join(&s, &a, 7, 0);
  CHECK_INT_EQ(a.welcomes, 1);
  CHECK_INT_EQ(a.welcome_initialized, 0);
  CHECK_INT_EQ(a.welcome_clock, 0);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 1);
  CHECK(ps_core_range(s.core) == NULL);
  const float start[NPARAMS] = {1, 2, 3, 4};
  init(&s, &a, start);
  CHECK(ps_core_range(s.core) != NULL);
  CHECK_INT_EQ(ps_core_range(s.core)->n, NPARAMS);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 0);
  CHECK_NEAR(param(&s, 3), 4.0, 0);
  CHECK_STR_CONTAINS(srv_log(&s), "initialized by worker 7: server 0 of 1, parameters [0, 4) of 4");

  /* Anything but HELLO first is a PROTOCOL error. */
  connect_peer(&s, &c);
  pull(&s, &c, 1);
  CHECK_INT_EQ(c.fails, 1);
  CHECK_INT_EQ(c.fail_code, DTRAIN__PS__ERROR_CODE__PROTOCOL);
  CHECK_STR_CONTAINS(c.fail_msg, "the first message must be HELLO, not PULL");
  CHECK_INT_EQ(ps_core_stats(s.core).bad_connections, 1);

  s.now = 1;
  join(&s, &b, 8, 0);
  CHECK_INT_EQ(b.welcomes, 1);
  CHECK_INT_EQ(b.welcome_initialized, 1);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 2);
  /* A second HELLO on the same connection. */
  hello(&s, &b, 8, 0);
  CHECK_INT_EQ(b.fail_code, DTRAIN__PS__ERROR_CODE__PROTOCOL);
  CHECK_STR_CONTAINS(b.fail_msg, "a second HELLO");
  CHECK_INT_EQ(ps_core_nmembers(s.core), 2); /* the worker stays: it may reconnect */
  join(&s, &b, 8, 0);
  bye(&s, &b);
  CHECK_INT_EQ(b.closes, 1);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 1);
  CHECK(ps_core_member(s.core, 8) == NULL);
  CHECK_STR_CONTAINS(srv_log(&s), "worker 8 left (BYE) at clock 0; 1 live worker(s)");

  /* Silence: kept up to the timeout (10 s after the last message), dropped after. */
  s.now = 5;
  heartbeat(&s, &a);
  tick(&s, 14.9);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 1);
  CHECK_INT_EQ(a.fails, 0);
  tick(&s, 15.5);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 0);
  CHECK_INT_EQ(a.fails, 1);
  CHECK_INT_EQ(a.fail_code, DTRAIN__PS__ERROR_CODE__TIMEOUT);
  CHECK_STR_CONTAINS(a.fail_msg, "nothing heard for 10.5 s");
  CHECK_INT_EQ(ps_core_stats(s.core).dropped, 1);
  CHECK_STR_CONTAINS(srv_log(&s), "worker 7 dropped: nothing heard for 10.5 s "
                                  "(ps.heartbeat_timeout_s = 10) at clock 0; 0 live worker(s)");
  /* A timeout is not bad input: still the PULL before HELLO and the second HELLO. */
  CHECK_INT_EQ(ps_core_stats(s.core).bad_connections, 2);

  /* Rejoin: a newcomer again, continuing from its own clock. */
  s.now = 16;
  join(&s, &a2, 7, 3);
  CHECK_INT_EQ(a2.welcomes, 1);
  CHECK_INT_EQ(a2.welcome_clock, 3);
  CHECK_INT_EQ(pushed_of(&s, 7), 3);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 1);
  CHECK_STR_CONTAINS(srv_log(&s),
                     "worker 7 joined from 10.0.0.1:5000 at clock 3; 1 live worker(s)");
  /* The same worker on a new connection replaces the old one. */
  join(&s, &a3, 7, 3);
  CHECK_INT_EQ(a2.fail_code, DTRAIN__PS__ERROR_CODE__REPLACED);
  CHECK_INT_EQ(a3.welcomes, 1);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 1);
  CHECK(ps_core_member(s.core, 7)->session == &a3.sess);
  CHECK_INT_EQ(ps_core_stats(s.core).bad_connections, 2);
  /* A connection that ends without BYE leaves the member in place. */
  hang_up(&s, &a3);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 1);
  CHECK(ps_core_member(s.core, 7)->session == NULL);
  CHECK_STR_CONTAINS(srv_log(&s), "worker 7 disconnected without BYE (end of stream)");

  /* Without a connection the member is dropped 10 s after its last word (16), and
   * a connection that never says HELLO is closed 10 s after it opened (20). */
  s.now = 20;
  connect_peer(&s, &d);
  tick(&s, 25.0);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 1);
  tick(&s, 26.5);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 0);
  CHECK_INT_EQ(ps_core_stats(s.core).dropped, 2);
  CHECK_INT_EQ(d.fails, 0);
  tick(&s, 30.5);
  CHECK_INT_EQ(d.fails, 1);
  CHECK_INT_EQ(d.fail_code, DTRAIN__PS__ERROR_CODE__TIMEOUT);
  CHECK_STR_CONTAINS(d.fail_msg, "no HELLO within 10 s");
  CHECK_INT_EQ(ps_core_stats(s.core).bad_connections, 2);
  srv_stop(&s);
}

/* The handshake's checks: token, split, signature, data before INIT. */
static void test_hello_checks(void) {
  srv_t s;
  srv_start(&s, DT_PS_ASYNC, 0, 0, 1);
  s.cfg.has_token = true;
  memcpy(s.cfg.token, "secret", 6);
  s.cfg.token_len = 6;
  srv_core(&s);
  peer_t a, b, c, d;
  connect_peer(&s, &a);
  feed(&s, (ps_event_t){.kind = PS_EV_HELLO, .session = &a.sess,
                        .hello = {.protocol = DT_PS_PROTOCOL_VERSION, .worker_id = 1,
                                  .token = (const uint8_t *)"secreT", .token_len = 6}});
  CHECK_INT_EQ(a.fail_code, DTRAIN__PS__ERROR_CODE__BAD_TOKEN);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 0);
  connect_peer(&s, &b);
  feed(&s, (ps_event_t){.kind = PS_EV_HELLO, .session = &b.sess,
                        .hello = {.protocol = DT_PS_PROTOCOL_VERSION, .worker_id = 2,
                                  .signature = s.signature, .num_params = NPARAMS,
                                  .num_servers = 1, .token = (const uint8_t *)"secret",
                                  .token_len = 6}});
  CHECK_INT_EQ(b.welcomes, 1);
  /* PUSH before the range exists. */
  push(&s, &b, 1, 1.0f);
  CHECK_INT_EQ(b.fail_code, DTRAIN__PS__ERROR_CODE__NOT_INITIALIZED);
  connect_peer(&s, &c);
  feed(&s, (ps_event_t){.kind = PS_EV_HELLO, .session = &c.sess,
                        .hello = {.protocol = DT_PS_PROTOCOL_VERSION, .worker_id = 2,
                                  .signature = s.signature, .num_params = NPARAMS,
                                  .num_servers = 1, .token = (const uint8_t *)"secret",
                                  .token_len = 6}});
  init(&s, &c, ZEROS);
  CHECK(ps_core_range(s.core) != NULL);
  /* After INIT: another split, another signature. */
  connect_peer(&s, &d);
  feed(&s, (ps_event_t){.kind = PS_EV_HELLO, .session = &d.sess,
                        .hello = {.protocol = DT_PS_PROTOCOL_VERSION, .worker_id = 3,
                                  .signature = s.signature, .num_params = NPARAMS + 1,
                                  .num_servers = 1, .token = (const uint8_t *)"secret",
                                  .token_len = 6}});
  CHECK_INT_EQ(d.fail_code, DTRAIN__PS__ERROR_CODE__BAD_SHARD);
  connect_peer(&s, &d);
  feed(&s, (ps_event_t){.kind = PS_EV_HELLO, .session = &d.sess,
                        .hello = {.protocol = DT_PS_PROTOCOL_VERSION, .worker_id = 3,
                                  .signature = s.signature ^ 1, .num_params = NPARAMS,
                                  .num_servers = 1, .token = (const uint8_t *)"secret",
                                  .token_len = 6}});
  CHECK_INT_EQ(d.fail_code, DTRAIN__PS__ERROR_CODE__BAD_SIGNATURE);
  /* A gradient of the wrong length. */
  float g[2] = {1, 1};
  feed(&s, (ps_event_t){.kind = PS_EV_PUSH, .session = &c.sess,
                        .push = {.clock = 1, .lr = 1.0f, .grad = g, .n = 2}});
  CHECK_INT_EQ(c.fail_code, DTRAIN__PS__ERROR_CODE__BAD_MESSAGE);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 0);
  /* Bad token, NOT_INITIALIZED, BAD_SHARD, BAD_SIGNATURE, BAD_MESSAGE. */
  CHECK_INT_EQ(ps_core_stats(s.core).bad_connections, 5);
  srv_stop(&s);
}

/* async: each push is applied at once, a pull answered at once. */
static void test_async(void) {
  srv_t s;
  srv_start(&s, DT_PS_ASYNC, 0, 0, 1);
  srv_core(&s);
  peer_t a, b;
  join(&s, &a, 0, 0);
  const float start[NPARAMS] = {1, 2, 3, 4};
  init(&s, &a, start);
  join(&s, &b, 1, 0);
  push(&s, &a, 1, 0.5f);
  push(&s, &b, 1, 0.25f);
  push(&s, &a, 2, 0.125f);
  pull(&s, &a, 3);
  CHECK_INT_EQ(a.params, 1);
  CHECK_INT_EQ(a.version, 3);
  CHECK_INT_EQ(a.n, NPARAMS);
  CHECK_NEAR(a.values[0], 0.125, 0);
  CHECK_NEAR(a.values[3], 3.125, 0);
  CHECK_INT_EQ(a.min_clock, 1);
  ps_stats_t st = ps_core_stats(s.core);
  CHECK_INT_EQ(st.pushes, 3);
  CHECK_INT_EQ(st.pulls, 1);
  CHECK_INT_EQ(st.pulls_waited, 0);
  /* Its gap: pull clock 3 - 1 - slowest pushed clock 1. */
  CHECK_INT_EQ(st.max_gap, 1);
  CHECK_INT_EQ(st.gap_hist[1], 1);
  srv_stop(&s);
}

/* ssp with staleness 1: a pull at clock c waits until every live worker has pushed
 * c-2, and goes as soon as the slow one pushes (or is dropped). */
static void test_ssp_wait(void) {
  srv_t s;
  srv_start(&s, DT_PS_SSP, 1, 0, 1);
  srv_core(&s);
  peer_t a, b;
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  join(&s, &b, 1, 0);
  push(&s, &a, 1, 1.0f);
  pull(&s, &a, 2); /* needs clock 0 from everyone: goes */
  CHECK_INT_EQ(a.params, 1);
  CHECK_INT_EQ(a.version, 1);
  push(&s, &a, 2, 1.0f);
  pull(&s, &a, 3); /* needs clock 1 from B, which has pushed none */
  CHECK_INT_EQ(a.params, 1);
  CHECK_INT_EQ(ps_core_stats(s.core).pulls_waited, 1);
  push(&s, &b, 1, 2.0f);
  CHECK_INT_EQ(a.params, 2); /* released by B's push, in the same event */
  CHECK_INT_EQ(a.version, 3);
  CHECK_NEAR(a.values[0], -4.0, 0);
  CHECK_INT_EQ(a.min_clock, 1);
  CHECK_INT_EQ(pushed_of(&s, 1), 1);
  CHECK_INT_EQ(b.params, 0);

  /* A waits for B again (clock 4 needs 2); B goes silent and is dropped. */
  s.now = 1;
  push(&s, &a, 3, 1.0f);
  pull(&s, &a, 4);
  CHECK_INT_EQ(a.params, 2);
  /* Asking again before the answer is a protocol error. */
  pull(&s, &a, 4);
  CHECK_INT_EQ(a.fail_code, DTRAIN__PS__ERROR_CODE__PROTOCOL);
  CHECK_STR_CONTAINS(a.fail_msg, "a second PULL before the first was answered");
  /* The failed connection took A's pull with it; A reconnects and asks again. */
  join(&s, &a, 0, 3);
  pull(&s, &a, 4);
  CHECK_INT_EQ(a.params, 0);
  tick(&s, 10.5); /* B's last word came at 0 */
  CHECK_INT_EQ(ps_core_nmembers(s.core), 1);
  CHECK_INT_EQ(a.params, 1);
  CHECK_INT_EQ(a.version, 4);
  CHECK_NEAR(a.values[2], -5.0, 0);
  srv_stop(&s);
}

/* sync: a round is applied once, when every participant has pushed; pulls wait for
 * the round before theirs. */
static void test_sync_round(void) {
  srv_t s;
  srv_start(&s, DT_PS_SYNC, 0, 0, 1);
  srv_core(&s);
  peer_t a, b;
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  join(&s, &b, 1, 0);
  pull(&s, &a, 1);
  pull(&s, &b, 1);
  CHECK_INT_EQ(a.params, 1);
  CHECK_INT_EQ(b.params, 1);
  push(&s, &a, 1, 1.0f);
  pull(&s, &a, 2);
  CHECK_INT_EQ(a.params, 1);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 0);
  CHECK_INT_EQ(ps_core_round(s.core), 1);
  push(&s, &b, 1, 3.0f);
  /* The mean of 1 and 3, once; A's pull goes in the same event. */
  CHECK_INT_EQ(ps_core_range(s.core)->version, 1);
  CHECK_INT_EQ(ps_core_round(s.core), 2);
  CHECK_INT_EQ(a.params, 2);
  CHECK_INT_EQ(a.version, 1);
  CHECK_NEAR(a.values[0], -2.0, 0);
  pull(&s, &b, 2);
  CHECK_INT_EQ(b.version, 1);
  CHECK_NEAR(b.values[3], -2.0, 0);
  /* Nothing more comes of round 1: more events, same version. */
  heartbeat(&s, &a);
  tick(&s, 1.0);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 1);

  /* Round 2: B leaves after A pushed; the round is A's alone, applied at B's BYE. */
  push(&s, &a, 2, 4.0f);
  pull(&s, &a, 3);
  CHECK_INT_EQ(a.params, 2);
  bye(&s, &b);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 2);
  CHECK_INT_EQ(a.params, 3);
  CHECK_NEAR(a.values[1], -6.0, 0);
  CHECK_INT_EQ(ps_core_stats(s.core).pushes, 3);
  srv_stop(&s);
}

/* tests/tools/ps_sync_rounds.c's script against two cores: a newcomer's HELLO reaches
 * server 0 after its round 1 and server 1 before; the newcomer's first round is
 * decided by clock (the largest WELCOME offer), so both servers apply round 1 from
 * A alone and round 2 from both, and the two halves of the model agree. */
static void test_sync_late_joiner(void) {
  srv_t s[2];
  peer_t a[2], b[2];
  for (int k = 0; k < 2; k++) {
    srv_start(&s[k], DT_PS_SYNC, 0, (uint32_t)k, 2);
    srv_core(&s[k]);
    /* 1: A joins both, INITs them to 0 and pulls clock 1. */
    join(&s[k], &a[k], 0, 0);
    CHECK_INT_EQ(a[k].welcome_clock, 0);
    init(&s[k], &a[k], ZEROS);
    CHECK_INT_EQ(ps_core_range(s[k].core)->n, 2);
    pull(&s[k], &a[k], 1);
    CHECK_INT_EQ(a[k].params, 1);
    CHECK_INT_EQ(a[k].version, 0);
  }
  /* 2: A pushes clock 1 to server 0 only: its round 1 is applied. */
  push(&s[0], &a[0], 1, 1.0f);
  pull(&s[0], &a[0], 2);
  CHECK_INT_EQ(a[0].params, 2);
  CHECK_INT_EQ(a[0].version, 1);
  CHECK_NEAR(a[0].values[0], -1.0, 0);
  /* 3: B says HELLO to both: server 0 is at round 2, server 1 at round 1. */
  int64_t b_clock = 0;
  for (int k = 0; k < 2; k++) {
    join(&s[k], &b[k], 1, 0);
    if (b[k].welcome_clock > b_clock) b_clock = b[k].welcome_clock;
  }
  CHECK_INT_EQ(b[0].welcome_clock, 1);
  CHECK_INT_EQ(b[1].welcome_clock, 0);
  CHECK_INT_EQ(b_clock, 1);
  /* 4: A pushes clock 1 to server 1, which holds the round: B may still be in it. */
  push(&s[1], &a[1], 1, 1.0f);
  pull(&s[1], &a[1], 2);
  CHECK_INT_EQ(ps_core_range(s[1].core)->version, 0);
  CHECK_INT_EQ(a[1].params, 1);
  /* 5: B's first pull names round 2; round 1 is A's alone on both servers. */
  for (int k = 0; k < 2; k++) {
    pull(&s[k], &b[k], b_clock + 1);
    CHECK_INT_EQ(b[k].params, 1);
    CHECK_INT_EQ(b[k].version, 1);
    CHECK_NEAR(b[k].values[0], -1.0, 0);
    CHECK_NEAR(b[k].values[1], -1.0, 0);
  }
  CHECK_INT_EQ(a[1].params, 2);
  CHECK_INT_EQ(a[1].version, 1);
  CHECK_NEAR(a[1].values[1], -1.0, 0);
  CHECK_STR_CONTAINS(srv_log(&s[0]),
                     "worker 1 takes part from round 2 on (this server is at round 2)");
  CHECK_STR_CONTAINS(srv_log(&s[1]),
                     "worker 1 takes part from round 2 on (this server is at round 1)");
  /* 6: A pushes 2 and B pushes 4 for clock 2: round 2 is their mean, 3. */
  for (int k = 0; k < 2; k++) {
    push(&s[k], &a[k], 2, 2.0f);
    pull(&s[k], &a[k], 3);
    push(&s[k], &b[k], 2, 4.0f);
    pull(&s[k], &b[k], 3);
  }
  for (int k = 0; k < 2; k++) {
    CHECK_INT_EQ(a[k].version, 2);
    CHECK_NEAR(a[k].values[0], -4.0, 0);
    CHECK_INT_EQ(b[k].version, 2);
    CHECK_NEAR(b[k].values[1], -4.0, 0);
  }
  /* 7: B leaves; A is alone in round 3. */
  for (int k = 0; k < 2; k++) bye(&s[k], &b[k]);
  for (int k = 0; k < 2; k++) {
    push(&s[k], &a[k], 3, 8.0f);
    pull(&s[k], &a[k], 4);
    CHECK_INT_EQ(a[k].version, 3);
    CHECK_NEAR(a[k].values[0], -12.0, 0);
    CHECK_NEAR(a[k].values[1], -12.0, 0);
    CHECK_INT_EQ(ps_core_stats(s[k].core).pushes, 4);
    CHECK_INT_EQ(ps_core_range(s[k].core)->version, 3);
    srv_stop(&s[k]);
  }
}

/* A push sent again after a reconnect (same clock) is dropped, not applied twice:
 * in async mode and inside a sync round. */
static void test_repeated_push(void) {
  srv_t s;
  srv_start(&s, DT_PS_ASYNC, 0, 0, 1);
  srv_core(&s);
  peer_t a;
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  push(&s, &a, 1, 1.0f);
  hang_up(&s, &a);
  /* Its answer was lost: the latest push every server answered is still 0. */
  join(&s, &a, 0, 0);
  push(&s, &a, 1, 1.0f);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 1);
  CHECK_NEAR(param(&s, 0), -1.0, 0);
  CHECK_INT_EQ(ps_core_stats(s.core).repeated, 1);
  CHECK_INT_EQ(ps_core_stats(s.core).pushes, 1);
  push(&s, &a, 2, 1.0f);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 2);
  srv_stop(&s);

  srv_start(&s, DT_PS_SYNC, 0, 0, 1);
  srv_core(&s);
  peer_t b;
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  join(&s, &b, 1, 0);
  pull(&s, &a, 1);
  pull(&s, &b, 1);
  push(&s, &a, 1, 1.0f);
  hang_up(&s, &a);
  join(&s, &a, 0, 0);
  push(&s, &a, 1, 1.0f);
  CHECK_INT_EQ(ps_core_stats(s.core).repeated, 1);
  push(&s, &b, 1, 3.0f);
  /* mean(1, 3), not mean(1, 1, 3). */
  CHECK_INT_EQ(ps_core_range(s.core)->version, 1);
  CHECK_NEAR(param(&s, 0), -2.0, 0);
  srv_stop(&s);
}

/* A late push: the server dropped a silent worker and applied the round without it;
 * that worker's push for the round comes afterwards and is discarded. */
static void test_late_push(void) {
  srv_t s;
  srv_start(&s, DT_PS_SYNC, 0, 0, 1);
  srv_core(&s);
  peer_t a, b;
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  join(&s, &b, 1, 0);
  pull(&s, &a, 1);
  pull(&s, &b, 1);
  push(&s, &a, 1, 1.0f);
  push(&s, &b, 1, 1.0f);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 1);
  s.now = 5;
  push(&s, &a, 2, 2.0f);
  pull(&s, &a, 3);
  CHECK_INT_EQ(a.params, 1);
  tick(&s, 10.5); /* B was last heard at 0 */
  CHECK_INT_EQ(ps_core_nmembers(s.core), 1);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 2);
  CHECK_INT_EQ(a.params, 2);
  CHECK_NEAR(a.values[0], -3.0, 0);
  /* B comes back and sends its push of clock 2: round 2 is applied already. */
  join(&s, &b, 1, 1);
  CHECK_INT_EQ(b.welcome_clock, 2);
  push(&s, &b, 2, 100.0f);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 2);
  CHECK_NEAR(param(&s, 0), -3.0, 0);
  CHECK_INT_EQ(ps_core_stats(s.core).discarded, 1);
  CHECK_STR_CONTAINS(srv_log(&s), "worker 1 pushed clock 2 while this server is at round 3; "
                                  "discarded (1 so far)");
  srv_stop(&s);
}

/* A server restored from a checkpoint at round 1 while its workers went on to clock
 * 3: their pushes for round 3 are held, the rounds nobody pushes into are skipped,
 * and round 3 is applied once from both. */
static void test_restore_catch_up(void) {
  srv_t s;
  srv_start(&s, DT_PS_SYNC, 0, 0, 1);
  srv_core(&s);
  ps_model_t m = {.signature = s.signature, .num_params = NPARAMS, .num_servers = 1,
                  .tensors = &s.tensor, .ntensors = 1, .optim = dt_optim_defaults(DT_OPT_SGD)};
  ps_range_t r;
  dt_error_t err = {0};
  CHECK_INT_EQ(ps_range_init(&r, &m, ZEROS, &err), 0);
  r.version = 7;
  ps_member_clock_t mc[2] = {{.id = 0, .clock = 0}, {.id = 1, .clock = 0}};
  ps_snapshot_t st = {.round = 1, .members = mc, .nmembers = 2};
  CHECK_INT_EQ(ps_core_restore(s.core, &r, &st, 0.0, &err), 0);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 2);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 7);
  peer_t a, b;
  join(&s, &a, 0, 2);
  join(&s, &b, 1, 2);
  push(&s, &a, 3, 1.0f);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 7);
  push(&s, &b, 3, 3.0f);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 8);
  CHECK_INT_EQ(ps_core_round(s.core), 4);
  CHECK_NEAR(param(&s, 0), -2.0, 0);
  CHECK_INT_EQ(ps_core_stats(s.core).discarded, 0);
  /* What a checkpoint now holds besides the range. */
  ps_snapshot_t out;
  CHECK_INT_EQ(ps_core_snapshot(s.core, &out, &err), 0);
  CHECK_INT_EQ(out.round, 4);
  CHECK_INT_EQ(out.nmembers, 2);
  CHECK_INT_EQ(out.members[0].clock, 3);
  CHECK_INT_EQ(out.members[1].clock, 3);
  ps_snapshot_free(&out);
  srv_stop(&s);
}

/* The checkpoint schedule: every 2 updates, and one more before stopping. */
static void test_checkpoint_schedule(void) {
  srv_t s;
  srv_start(&s, DT_PS_ASYNC, 0, 0, 1);
  snprintf(s.cfg.checkpoint_dir, sizeof s.cfg.checkpoint_dir, "/nonexistent/never-touched");
  s.cfg.checkpoint_every_updates = 2;
  srv_core(&s);
  peer_t a;
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  push(&s, &a, 1, 1.0f);
  CHECK_INT_EQ(s.checkpoints, 0);
  push(&s, &a, 2, 1.0f);
  CHECK_INT_EQ(s.checkpoints, 1);
  push(&s, &a, 3, 1.0f);
  tick(&s, 1.0);
  CHECK_INT_EQ(s.checkpoints, 1);
  push(&s, &a, 4, 1.0f);
  CHECK_INT_EQ(s.checkpoints, 2);
  feed(&s, (ps_event_t){.kind = PS_EV_STOP});
  CHECK_INT_EQ(s.final_checkpoints, 0); /* nothing new since version 4 */
  srv_stop(&s);

  srv_start(&s, DT_PS_ASYNC, 0, 0, 1);
  snprintf(s.cfg.checkpoint_dir, sizeof s.cfg.checkpoint_dir, "/nonexistent/never-touched");
  s.cfg.checkpoint_every_updates = 100;
  srv_core(&s);
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  push(&s, &a, 1, 1.0f);
  feed(&s, (ps_event_t){.kind = PS_EV_STOP});
  CHECK_INT_EQ(s.checkpoints, 1);
  CHECK_INT_EQ(s.final_checkpoints, 1);
  srv_stop(&s);
}

/* A push with a NaN or an infinity is refused with an ERROR (BAD_MESSAGE) and
 * counted; nothing of it is applied, in async mode or into a sync round (issue 14,
 * defect 5). */
static void test_nonfinite_push(void) {
  srv_t s;
  srv_start(&s, DT_PS_ASYNC, 0, 0, 1);
  srv_core(&s);
  peer_t a, b;
  join(&s, &a, 0, 0);
  const float start[NPARAMS] = {1, 2, 3, 4};
  init(&s, &a, start);
  float grad[NPARAMS] = {0.5f, 0.5f, NAN, 0.5f};
  feed(&s, (ps_event_t){.kind = PS_EV_PUSH, .session = &a.sess,
                        .push = {.clock = 1, .lr = 1.0f, .grad = grad, .n = NPARAMS}});
  CHECK_INT_EQ(a.fails, 1);
  CHECK_INT_EQ(a.fail_code, DTRAIN__PS__ERROR_CODE__BAD_MESSAGE);
  CHECK_STR_CONTAINS(a.fail_msg, "a gradient with 1 non-finite value(s) (the first at 2");
  CHECK_INT_EQ(ps_core_range(s.core)->version, 0);
  for (int i = 0; i < NPARAMS; i++) CHECK_NEAR(param(&s, i), start[i], 0);
  CHECK_INT_EQ(ps_core_stats(s.core).nonfinite, 1);
  CHECK_INT_EQ(ps_core_stats(s.core).pushes, 0);
  CHECK_INT_EQ(ps_core_stats(s.core).bad_connections, 1);
  /* The worker may come back: its next good push is applied. */
  join(&s, &a, 0, 0);
  push(&s, &a, 1, 1.0f);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 1);
  CHECK_NEAR(param(&s, 0), 0.0, 0);
  ps_core_log_stats(s.core, "now");
  CHECK_STR_CONTAINS(srv_log(&s), "0 late push(es) not applied, 1 non-finite push(es) refused");
  srv_stop(&s);

  /* sync: an infinity does not go into the round, which waits for a good push. */
  srv_start(&s, DT_PS_SYNC, 0, 0, 1);
  srv_core(&s);
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  join(&s, &b, 1, 0);
  pull(&s, &a, 1);
  pull(&s, &b, 1);
  push(&s, &a, 1, 1.0f);
  float inf[NPARAMS] = {INFINITY, -INFINITY, 1.0f, 1.0f};
  feed(&s, (ps_event_t){.kind = PS_EV_PUSH, .session = &b.sess,
                        .push = {.clock = 1, .lr = 1.0f, .grad = inf, .n = NPARAMS}});
  CHECK_INT_EQ(b.fail_code, DTRAIN__PS__ERROR_CODE__BAD_MESSAGE);
  CHECK_STR_CONTAINS(b.fail_msg, "a gradient with 2 non-finite value(s) (the first at 0");
  CHECK_INT_EQ(ps_core_range(s.core)->version, 0);
  join(&s, &b, 1, 0);
  push(&s, &b, 1, 3.0f);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 1);
  CHECK_NEAR(param(&s, 0), -2.0, 0);
  CHECK_INT_EQ(ps_core_stats(s.core).nonfinite, 1);
  srv_stop(&s);
}

/* Throwaway clients (issue 14, defect 7): a member that said HELLO and went away before
 * it pushed stays a member until ps.heartbeat_timeout_s, but holds back neither an SSP
 * pull nor a sync round meanwhile; one that has pushed still does while it
 * reconnects. */
static void test_throwaway_clients(void) {
  srv_t s;
  srv_start(&s, DT_PS_SSP, 1, 0, 1);
  srv_core(&s);
  peer_t a, b, c, d;
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  join(&s, &b, 50, 0);
  hang_up(&s, &b);
  CHECK_STR_CONTAINS(srv_log(&s), "worker 50 disconnected without BYE (end of stream); it stays "
                                  "a member for up to ps.heartbeat_timeout_s = 10 s, holding "
                                  "nobody back until it has pushed");
  push(&s, &a, 1, 1.0f);
  push(&s, &a, 2, 1.0f);
  pull(&s, &a, 3); /* needs clock 1 of everyone who counts: A alone */
  CHECK_INT_EQ(a.params, 1);
  CHECK_INT_EQ(a.version, 2);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 2);
  /* A pull that waits for a newcomer goes at the next tick once the newcomer is gone,
   * long before it is dropped. */
  join(&s, &c, 51, 0);
  CHECK_INT_EQ(pushed_of(&s, 51), 2);
  push(&s, &a, 3, 1.0f);
  push(&s, &a, 4, 1.0f);
  pull(&s, &a, 5); /* needs clock 3 of C, which has pushed 2 */
  CHECK_INT_EQ(a.params, 1);
  hang_up(&s, &c);
  CHECK_INT_EQ(a.params, 1); /* CLOSED answers with no actions */
  tick(&s, 0.5);
  CHECK_INT_EQ(a.params, 2);
  CHECK_INT_EQ(a.version, 4);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 3);
  /* A member that has pushed holds the wait while it reconnects, until dropped. */
  join(&s, &d, 52, 0);
  push(&s, &d, 5, 1.0f);
  hang_up(&s, &d);
  push(&s, &a, 5, 1.0f);
  push(&s, &a, 6, 1.0f);
  push(&s, &a, 7, 1.0f);
  pull(&s, &a, 8); /* needs clock 6 of D, which has pushed 5 */
  tick(&s, 1.0);
  CHECK_INT_EQ(a.params, 2);
  srv_stop(&s);

  /* sync: a newcomer that never pulled nor pushed and hung up holds no round. */
  srv_start(&s, DT_PS_SYNC, 0, 0, 1);
  srv_core(&s);
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  pull(&s, &a, 1);
  join(&s, &b, 50, 0);
  hang_up(&s, &b);
  push(&s, &a, 1, 1.0f);
  pull(&s, &a, 2);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 1);
  CHECK_INT_EQ(a.params, 2);
  /* Connected, it would: a newcomer holds the rounds from its offer on until its
   * first PULL names its round. */
  join(&s, &c, 51, 0);
  push(&s, &a, 2, 1.0f);
  pull(&s, &a, 3);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 1);
  hang_up(&s, &c);
  tick(&s, 0.5);
  CHECK_INT_EQ(ps_core_range(s.core)->version, 2);
  CHECK_INT_EQ(a.params, 3);
  CHECK_NEAR(param(&s, 0), -2.0, 0);
  srv_stop(&s);
}

/* The server answers a member's HEARTBEAT with one (issue 14, defect 8: the worker
 * takes a server silent for longer than the heartbeat timeout for dead); a connection
 * that has not said HELLO gets none. */
static void test_heartbeat_answer(void) {
  srv_t s;
  srv_start(&s, DT_PS_ASYNC, 0, 0, 1);
  srv_core(&s);
  peer_t a, b;
  join(&s, &a, 0, 0);
  init(&s, &a, ZEROS);
  heartbeat(&s, &a);
  heartbeat(&s, &a);
  CHECK_INT_EQ(a.heartbeats, 2);
  CHECK_INT_EQ(a.fails, 0);
  connect_peer(&s, &b);
  heartbeat(&s, &b);
  CHECK_INT_EQ(b.heartbeats, 0);
  CHECK_INT_EQ(b.fail_code, DTRAIN__PS__ERROR_CODE__PROTOCOL);
  srv_stop(&s);
}

/* A new connection of the process `nonce` that says HELLO as worker `id`, or asks for
 * an id among num_workers (assign). */
static void join_as(srv_t *s, peer_t *p, uint32_t id, uint64_t nonce, bool assign,
                    uint32_t num_workers) {
  connect_peer(s, p);
  feed(s, (ps_event_t){.kind = PS_EV_HELLO, .session = &p->sess,
                       .hello = {.protocol = DT_PS_PROTOCOL_VERSION, .worker_id = id,
                                 .signature = s->signature, .num_params = NPARAMS,
                                 .server_index = s->index, .num_servers = s->nservers,
                                 .nonce = nonce, .assign_id = assign,
                                 .num_workers = num_workers, .peer = "10.0.0.2:6000"}});
}

/* Worker ids (issue 14, defect 3): assigned by the server when asked (the lowest free
 * one, or the one the same process holds), the same id named to a second server, a
 * second live process claiming a held id refused, the same process reconnecting still
 * replacing its old connection, and a restarted process taking over an id whose
 * connection is gone. */
static void test_worker_ids(void) {
  srv_t s, s1;
  srv_start(&s, DT_PS_ASYNC, 0, 0, 2);
  srv_core(&s);
  srv_start(&s1, DT_PS_ASYNC, 0, 1, 2);
  srv_core(&s1);
  peer_t a, a1, b, a2, c, b2, d, e, f;
  join_as(&s, &a, 0, 11, true, 3);
  CHECK_INT_EQ(a.welcomes, 1);
  CHECK_INT_EQ(a.welcome_id, 0);
  CHECK_STR_CONTAINS(srv_log(&s), "assigned worker id 0 of 3 to 10.0.0.2:6000");
  /* Server 1 follows: the worker names the id server 0 gave it. */
  join_as(&s1, &a1, a.welcome_id, 11, false, 3);
  CHECK_INT_EQ(a1.welcome_id, 0);
  CHECK(ps_core_member(s1.core, 0) != NULL);
  join_as(&s, &b, 0, 22, true, 3);
  CHECK_INT_EQ(b.welcome_id, 1);
  /* The first process asks again (its WELCOME was lost): its own id, its old connection
   * replaced. */
  join_as(&s, &a2, 0, 11, true, 3);
  CHECK_INT_EQ(a2.welcome_id, 0);
  CHECK_INT_EQ(a.fail_code, DTRAIN__PS__ERROR_CODE__REPLACED);
  CHECK_INT_EQ(ps_core_nmembers(s.core), 2);
  /* Another process claims id 1, which B's live connection holds: refused, B stays. */
  join_as(&s, &c, 1, 33, false, 3);
  CHECK_INT_EQ(c.welcomes, 0);
  CHECK_INT_EQ(c.fail_code, DTRAIN__PS__ERROR_CODE__WORKER_ID_TAKEN);
  CHECK_STR_CONTAINS(c.fail_msg, "worker id 1 is held by another live process (connected from "
                                 "10.0.0.2:6000)");
  CHECK_INT_EQ(b.fails, 0);
  CHECK(ps_core_member(s.core, 1)->session == &b.sess);
  /* B's own process on a new connection replaces the old one. */
  join_as(&s, &b2, 1, 22, false, 3);
  CHECK_INT_EQ(b2.welcomes, 1);
  CHECK_INT_EQ(b.fail_code, DTRAIN__PS__ERROR_CODE__REPLACED);
  /* Once its connection is gone, a restarted process (another nonce) takes id 1 over. */
  hang_up(&s, &b2);
  join_as(&s, &d, 1, 44, false, 3);
  CHECK_INT_EQ(d.welcomes, 1);
  CHECK_INT_EQ(d.welcome_id, 1);
  CHECK(ps_core_member(s.core, 1)->session == &d.sess);
  /* The last free id, then none. */
  join_as(&s, &e, 0, 55, true, 3);
  CHECK_INT_EQ(e.welcome_id, 2);
  join_as(&s, &f, 0, 66, true, 3);
  CHECK_INT_EQ(f.welcomes, 0);
  CHECK_INT_EQ(f.fail_code, DTRAIN__PS__ERROR_CODE__WORKER_ID_TAKEN);
  CHECK_STR_CONTAINS(f.fail_msg, "all 3 worker ids (ps.num_workers) are held: 3 by connected "
                                 "workers, 0 by workers that may reconnect");
  CHECK_INT_EQ(ps_core_nmembers(s.core), 3);
  srv_stop(&s);
  srv_stop(&s1);
}

int main(void) {
  test_membership();
  test_hello_checks();
  test_async();
  test_ssp_wait();
  test_sync_round();
  test_sync_late_joiner();
  test_repeated_push();
  test_late_push();
  test_restore_catch_up();
  test_checkpoint_schedule();
  test_nonfinite_push();
  test_throwaway_clients();
  test_heartbeat_answer();
  test_worker_ids();
  return test_summary("test_ps_core");
}
