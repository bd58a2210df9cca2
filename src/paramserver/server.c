/* The I/O around the core (see server.h): one libuv loop thread does everything, so
 * nothing is locked. Each frame, timer tick and signal becomes one ps_event_t; the
 * core's actions are carried out in order before the next event is fed. */
#define _POSIX_C_SOURCE 200809L
#include "server.h"

#include <assert.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ckpt.h"
#include "core/ps_core.h"
#include "dtrain/checkpoint.h"
#include "dtrain/ps_frame.h"
#include "model_pb.h"
#include "net.h"
#include "tb_log.h"

typedef struct {
  const dt_ps_config_t *cfg;
  dt_log_t *log;
  uv_loop_t *loop;
  ps_net_t net;
  ps_core_t *core;
  ps_actions_t acts;
  uv_timer_t tick;
  uv_signal_t sigterm, sigint;
  ps_tb_t tb;
  bool stopping;
  bool failed;   /* the checkpoint before stopping failed */
} server_t;

/* The longest frame a connection may send before its HELLO is accepted: a HELLO with
 * the longest token fits many times over, and no buffer grows past one read. */
#define HELLO_MAX_BODY (16u << 10)

static ps_session_t *session_of(ps_conn_t *c) { return ps_conn_user(c); }

/* Feeds an event that answers with no actions (CLOSED, CHECKPOINTED); safe while the
 * actions of another event are being carried out. */
static void notify(server_t *s, const ps_event_t *ev) {
  ps_actions_t none = {0};
  ps_core_handle(s->core, ev, &none);
  assert(none.n == 0);
  ps_actions_free(&none);
}

static void checkpoint(server_t *s, bool final) {
  const ps_range_t *r = ps_core_range(s->core);
  ps_snapshot_t st = {0};
  dt_error_t err = {0};
  int rc = ps_core_snapshot(s->core, &st, &err);
  if (rc == 0)
    rc = ps_ckpt_save(s->cfg->checkpoint_dir, s->cfg->keep_checkpoints, r, &st, s->log, &err);
  ps_snapshot_free(&st);
  /* A failed periodic save (disk full) is reported and training goes on: the previous
   * checkpoint is intact, and the next attempt comes at the next interval. The one
   * before stopping fails the server. */
  if (rc) {
    dt_log_error(s->log, "%s", err.msg);
    if (final) s->failed = true;
  }
  notify(s, &(ps_event_t){.kind = PS_EV_CHECKPOINTED, .now = ps_net_now(),
                          .checkpointed = {.ok = rc == 0, .version = r->version}});
}

static void send_msg(ps_conn_t *c, int type, const ProtobufCMessage *m) {
  uint8_t head[512];
  size_t len = dt_ps_encode_head(type, m, 0, head);
  ps_net_send(c, head, len, NULL, 0);
}

static void execute(server_t *s, const ps_action_t *a) {
  ps_conn_t *c = a->session ? a->session->io : NULL;
  switch (a->kind) {
    case PS_ACT_WELCOME: {
      ps_conn_set_worker(c, a->welcome.worker_id);
      ps_conn_admit(c);
      Dtrain__Ps__Welcome w = DTRAIN__PS__WELCOME__INIT;
      w.protocol = DT_PS_PROTOCOL_VERSION;
      w.initialized = a->welcome.initialized;
      w.version = a->welcome.version;
      w.consistency = (Dtrain__Ps__Consistency)a->welcome.consistency;
      w.staleness = a->welcome.staleness;
      w.clock = a->welcome.clock;
      w.heartbeat_timeout_s = a->welcome.heartbeat_timeout_s;
      w.worker_id = a->welcome.worker_id;
      send_msg(c, DT_PS_WELCOME, &w.base);
      break;
    }
    case PS_ACT_PARAMS: {
      Dtrain__Ps__Params p = DTRAIN__PS__PARAMS__INIT;
      p.version = a->params.version;
      p.min_clock = a->params.min_clock;
      uint8_t head[128];
      size_t hlen = dt_ps_encode_head(DT_PS_PARAMS, &p.base, a->params.n, head);
      ps_net_send(c, head, hlen, a->params.values, a->params.n * sizeof(float));
      break;
    }
    case PS_ACT_FAIL:
      if (a->fail.has_worker) ps_conn_set_worker(c, a->fail.worker_id);
      ps_net_fail(c, a->fail.code, "%s", a->fail.message);
      break;
    case PS_ACT_HEARTBEAT: {
      Dtrain__Ps__Heartbeat h = DTRAIN__PS__HEARTBEAT__INIT;
      h.clock = a->heartbeat.clock;
      send_msg(c, DT_PS_HEARTBEAT, &h.base);
      break;
    }
    case PS_ACT_CLOSE: ps_net_close(c); break;
    case PS_ACT_CHECKPOINT: checkpoint(s, a->checkpoint.final); break;
  }
}

static void handle(server_t *s, const ps_event_t *ev) {
  ps_core_handle(s->core, ev, &s->acts);
  /* Carrying out an action may feed the core CLOSED or CHECKPOINTED (notify), which
   * add nothing to this list. */
  for (int i = 0; i < s->acts.n; i++) execute(s, &s->acts.v[i]);
  if (s->acts.lost) {
    dt_log_error(s->log, "out of memory: %d action(s) of the server lost", s->acts.lost);
    s->acts.lost = 0;
  }
  s->acts.n = 0;
}

/* ---- net's handlers ---- */

static void on_opened(void *ctx, ps_conn_t *c) {
  server_t *s = ctx;
  ps_session_t *sess = session_of(c);
  sess->io = c;
  handle(s, &(ps_event_t){.kind = PS_EV_OPEN, .now = ps_net_now(), .session = sess});
}

static void on_closed(void *ctx, ps_conn_t *c, bool failed, int code, const char *why) {
  notify(ctx, &(ps_event_t){.kind = PS_EV_CLOSED, .now = ps_net_now(), .session = session_of(c),
                            .closed = {.failed = failed, .code = code, .why = why}});
}

/* One frame: decoded, as an event. */
static void on_frame(void *ctx, ps_conn_t *c, int type, const uint8_t *body, size_t len) {
  server_t *s = ctx;
  dt_ps_msg_t msg;
  dt_error_t err = {0};
  int code = 0;
  if (dt_ps_decode(type, body, len, &msg, &code, &err)) {
    ps_net_fail(c, code, "%s", err.msg);
    return;
  }
  ps_event_t ev = {.now = ps_net_now(), .session = session_of(c)};
  dt_param_info_t *tensors = NULL;
  switch (type) {
    case DT_PS_HELLO: {
      const Dtrain__Ps__Hello *h = msg.m.hello;
      ev.kind = PS_EV_HELLO;
      ev.hello = (ps_hello_t){.protocol = h->protocol, .worker_id = h->worker_id,
                              .signature = h->signature, .num_params = h->num_params,
                              .server_index = h->server_index, .num_servers = h->num_servers,
                              .clock = h->clock, .nonce = h->nonce,
                              .assign_id = h->assign_id, .num_workers = h->num_workers,
                              .token = h->token.data,
                              .token_len = h->token.len, .peer = ps_conn_peer(c)};
      break;
    }
    case DT_PS_INIT:
      ev.kind = PS_EV_INIT;
      if (ps_model_from_init(msg.m.init, &ev.init.model, &tensors, &err)) {
        ps_net_fail(c, 0, "%s", err.msg);
        goto done;
      }
      ev.init.params = msg.payload;
      ev.init.nparams = msg.npayload;
      break;
    case DT_PS_PUSH: {
      const Dtrain__Ps__Push *p = msg.m.push;
      ev.kind = PS_EV_PUSH;
      ev.push = (ps_push_t){.clock = p->clock, .lr = p->lr, .base_version = p->base_version,
                            .grad = msg.payload, .n = msg.npayload};
      break;
    }
    case DT_PS_PULL:
      ev.kind = PS_EV_PULL;
      ev.pull_clock = msg.m.pull->clock;
      break;
    case DT_PS_HEARTBEAT: ev.kind = PS_EV_HEARTBEAT; break;
    case DT_PS_BYE: ev.kind = PS_EV_BYE; break;
    default:
      ev.kind = PS_EV_MESSAGE;
      ev.message_type = type;
  }
  handle(s, &ev);
done:
  free(tensors);
  dt_ps_msg_free(&msg);
}

/* ---- timer and signals ---- */

static void on_tick(uv_timer_t *t) {
  server_t *s = t->data;
  double now = ps_net_now();
  handle(s, &(ps_event_t){.kind = PS_EV_TICK, .now = now});
  ps_net_tick(&s->net, now);
  ps_tb_update(&s->tb, s->core, now, false);
}

static void on_signal(uv_signal_t *h, int signum) {
  server_t *s = h->data;
  if (s->stopping) return;
  s->stopping = true;
  dt_log_info(s->log, "%s: stopping%s", signum == SIGTERM ? "SIGTERM" : "SIGINT",
              s->cfg->checkpoint_dir[0] && ps_core_range(s->core) ? " after a checkpoint" : "");
  handle(s, &(ps_event_t){.kind = PS_EV_STOP, .now = ps_net_now()});
  ps_core_log_stats(s->core, "final");
  dt_log_info(s->log, "connection buffers: at most %.1f MiB of ps.max_memory_mb = %g",
              (double)s->net.peak / 1048576.0, s->cfg->max_memory_mb);
  ps_tb_update(&s->tb, s->core, ps_net_now(), true);
  ps_net_shutdown(&s->net);
  uv_close((uv_handle_t *)&s->tick, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
}

/* --resume: the newest checkpoint into the core, or nothing (with a warning). */
static int restore(server_t *s, dt_error_t *err) {
  ps_range_t r;
  ps_snapshot_t st;
  char path[DT_CKPT_PATH_MAX];
  int rc = ps_ckpt_restore(s->cfg->checkpoint_dir, s->log, &r, &st, path, sizeof path, err);
  if (rc == DT_ERR_NOT_FOUND) {
    dt_log_warn(s->log, "--resume: %s; starting empty (the first worker sends INIT)", err->msg);
    return 0;
  }
  if (rc) return rc;
  rc = ps_core_restore(s->core, &r, &st, ps_net_now(), err);
  ps_snapshot_free(&st);
  if (rc) {
    ps_range_free(&r);
    return rc;
  }
  const ps_range_t *g = ps_core_range(s->core);
  dt_log_info(s->log, "resumed from %s: version %" PRIu64 ", server %u of %u, parameters [%"
              PRIu64 ", %" PRIu64 "); waiting up to %g s for %d worker(s) to reconnect", path,
              g->version, g->index, g->nservers, g->begin, g->end, s->cfg->heartbeat_timeout_s,
              ps_core_nmembers(s->core));
  return 0;
}

static int serve(server_t *s, const ps_server_opts_t *o, dt_error_t *err) {
  int rc;
  if (o->resume && (rc = restore(s, err))) return rc;
  if ((rc = ps_net_listen(&s->net, o->host, o->port, o->port_file, err))) return rc;
  uv_timer_init(s->loop, &s->tick);
  s->tick.data = s;
  double ms = s->cfg->heartbeat_timeout_s * 1000.0 / 5.0;
  uint64_t every = (uint64_t)(ms < 20 ? 20 : ms > 500 ? 500 : ms);
  uv_timer_start(&s->tick, on_tick, every, every);
  uv_signal_init(s->loop, &s->sigterm);
  uv_signal_init(s->loop, &s->sigint);
  s->sigterm.data = s->sigint.data = s;
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_run(s->loop, UV_RUN_DEFAULT);
  return 0;
}

int ps_server_run(const dt_ps_config_t *cfg, dt_log_t *log, const ps_server_opts_t *opts,
                  bool *failed, dt_error_t *err) {
  server_t s;
  memset(&s, 0, sizeof s);
  s.cfg = cfg;
  s.log = log;
  s.loop = uv_default_loop();
  if (!(s.core = ps_core_new(cfg, log, err))) return DT_ERR_NOMEM;
  s.net = (ps_net_t){.loop = s.loop, .log = log,
                     .max_body = (size_t)(cfg->max_frame_mb * 1048576.0),
                     .hello_max_body = HELLO_MAX_BODY,
                     .max_memory = (size_t)(cfg->max_memory_mb * 1048576.0),
                     .liveness_s = cfg->heartbeat_timeout_s,
                     .max_buffered_mb = cfg->max_buffered_mb,
                     .max_connections = cfg->max_connections,
                     .user_size = sizeof(ps_session_t),
                     .h = {.ctx = &s, .opened = on_opened, .frame = on_frame, .closed = on_closed}};
  ps_tb_init(&s.tb, cfg, log, ps_net_now());
  int rc = serve(&s, opts, err);
  if (rc) {
    /* Close what was opened so that the loop can be closed. */
    if (s.net.listener.loop && !uv_is_closing((uv_handle_t *)&s.net.listener))
      uv_close((uv_handle_t *)&s.net.listener, NULL);
    uv_run(s.loop, UV_RUN_DEFAULT);
  }
  /* Every connection is closed by now: all the memory it counted has been freed. */
  assert(s.net.used == 0);
  ps_tb_close(&s.tb);
  ps_core_free(s.core);
  ps_actions_free(&s.acts);
  uv_loop_close(s.loop);
  *failed = s.failed;
  return rc;
}
