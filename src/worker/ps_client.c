/* The worker's parameter-server client: connections, the communication thread and
 * the hand-over of exchanges (see ps_client.h). */
#define _POSIX_C_SOURCE 200809L
#include "ps_client.h"


#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dtrain/clock.h"
#include "dtrain/ps_frame.h"

/* Reconnect backoff: doubling from the first delay up to the last. */
#define BACKOFF_FIRST_S 0.05
#define BACKOFF_MAX_S 1.0
/* How long BYE may take to go out when stopping. */
#define BYE_WAIT_S 2.0

enum { MAX_SEGS = 16 };
enum phase { DOWN, CONNECTING, HELLO_SENT, READY };

/* A piece of output: a frame head (owned) or a payload living in a client buffer. */
typedef struct {
  const uint8_t *p;
  size_t len, off;
  uint8_t *owned;
  bool ends_push; /* the last piece of a PUSH frame */
} seg_t;

typedef struct {
  char name[DT_PS_HOST_MAX + 16]; /* "host:port" for messages */
  dt_ps_addr_t addr;
  int index;
  uint64_t begin, end;
  int fd;
  enum phase phase;
  dt_ps_reader_t rd;
  seg_t segs[MAX_SEGS];
  int nsegs;
  double last_send, down_since, next_attempt, backoff;
  /* When bytes last came from it (or the attempt to connect began), and how long it
   * may stay silent: the heartbeat timeout of its WELCOME, before that our own. */
  double last_recv, silent_limit;
  bool was_ready, reported_down;
  /* The exchange in flight, as far as this server goes. */
  bool need_push, push_queued, pull_queued, got_params;
  uint64_t version;
  /* A PARAMS payload being received straight into the params buffer. */
  uint8_t *direct;
  size_t direct_left;
  uint64_t direct_version;
  /* From WELCOME. */
  bool welcomed;
  int consistency;
  long staleness;
  int64_t welcome_clock;
} conn_t;

/* One exchange, as the trainer posted it. */
typedef struct {
  bool push;
  float lr;
  uint32_t steps;
  int64_t push_clock, pull_clock;
  uint64_t base[DT_PS_MAX_SERVERS];
} job_t;

struct ps_client {
  ps_client_opts_t o;
  dt_log_t log;
  conn_t *conns;
  int n;
  float *send;   /* (num_params) */
  float *params; /* (num_params) */
  Dtrain__Ps__Init init_msg; /* INIT without parameters; server_index set per send */
  Dtrain__Ps__Tensor *init_tensors;
  Dtrain__Ps__Tensor **init_tensor_ptrs;
  uint32_t *init_dims;
  Dtrain__Ps__Optimizer init_opt;
  uint64_t signature;
  uint64_t nonce; /* this process's, in every HELLO */
  int wake[2];
  pthread_t thread;
  bool thread_started;
  int64_t clock; /* trainer thread only */

  /* Shared between the threads, under mu. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t job_seq, done_seq;
  job_t job;
  bool stop, failed, all_ready;
  ps_client_info_t info; /* set when all servers first said WELCOME */
  int fail_code;
  char fail_msg[DT_ERROR_MSG_MAX];

  /* Communication thread only. */
  uint64_t taken_seq;
  job_t cur; /* the exchange being worked on */
  bool active;
  double job_start;
  /* The clock of the latest push that every server has answered: HELLO's clock, so
   * a server knows which rounds this worker is surely past. */
  int64_t acked_clock;
  /* This worker's id; until server 0 has assigned it (o.assign_id), only server 0 is
   * connected to, so that every server is told the same id. */
  uint32_t worker_id;
  bool id_known;
};

/* ---- failure, shared with the trainer ---- */

static void fail(ps_client_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(ps_client_t *c, int code, const char *fmt, ...) {
  pthread_mutex_lock(&c->mu);
  if (!c->failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
    va_end(ap);
    c->failed = true;
    c->fail_code = code;
  }
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* ---- output ---- */

static void clear_segs(conn_t *k) {
  for (int i = 0; i < k->nsegs; i++) free(k->segs[i].owned);
  k->nsegs = 0;
}

static bool push_seg(conn_t *k, const uint8_t *p, size_t len, uint8_t *owned, bool ends_push) {
  if (k->nsegs == MAX_SEGS) {
    free(owned);
    return false;
  }
  k->segs[k->nsegs++] = (seg_t){p, len, 0, owned, ends_push};
  return true;
}

/* Queues a frame: the encoded head and, for payload types, npayload floats at payload. */
static bool queue_frame(conn_t *k, int type, const ProtobufCMessage *m, const float *payload,
                        size_t npayload, bool is_push) {
  uint8_t *head = malloc(dt_ps_head_bound(m));
  if (!head) return false;
  size_t hlen = dt_ps_encode_head(type, m, npayload, head);
  if (!hlen) {
    free(head);
    return false;
  }
  if (!push_seg(k, head, hlen, head, is_push && npayload == 0)) return false;
  if (npayload)
    return push_seg(k, (const uint8_t *)payload, npayload * sizeof(float), NULL, is_push);
  return true;
}

static void conn_down(ps_client_t *c, conn_t *k, const char *why);

/* Writes what the socket takes; false after a connection error. */
static bool flush(ps_client_t *c, conn_t *k, double now) {
  while (k->nsegs) {
    struct iovec iov[MAX_SEGS];
    for (int i = 0; i < k->nsegs; i++) {
      iov[i].iov_base = (void *)(uintptr_t)(k->segs[i].p + k->segs[i].off);
      iov[i].iov_len = k->segs[i].len - k->segs[i].off;
    }
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k->nsegs};
    ssize_t w = sendmsg(k->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      char why[128];
      snprintf(why, sizeof why, "sending: %s", strerror(errno));
      conn_down(c, k, why);
      return false;
    }
    k->last_send = now;
    size_t left = (size_t)w;
    int done = 0;
    while (done < k->nsegs && left >= k->segs[done].len - k->segs[done].off) {
      left -= k->segs[done].len - k->segs[done].off;
      if (k->segs[done].ends_push) k->need_push = false;
      free(k->segs[done].owned);
      done++;
    }
    if (done < k->nsegs) k->segs[done].off += left;
    memmove(k->segs, k->segs + done, sizeof *k->segs * (size_t)(k->nsegs - done));
    k->nsegs -= done;
  }
  return true;
}

/* ---- messages ---- */

static bool queue_hello(ps_client_t *c, conn_t *k) {
  Dtrain__Ps__Hello h = DTRAIN__PS__HELLO__INIT;
  h.protocol = DT_PS_PROTOCOL_VERSION;
  h.worker_id = c->id_known ? c->worker_id : 0;
  h.assign_id = !c->id_known;
  h.num_workers = c->o.num_workers;
  h.nonce = c->nonce;
  h.signature = c->signature;
  h.token.data = (uint8_t *)(uintptr_t)c->o.cfg->token;
  h.token.len = c->o.cfg->has_token ? c->o.cfg->token_len : 0;
  h.num_params = c->o.num_params;
  h.server_index = (uint32_t)k->index;
  h.num_servers = (uint32_t)c->n;
  h.clock = c->acked_clock;
  return queue_frame(k, DT_PS_HELLO, &h.base, NULL, 0, false);
}

static bool queue_init(ps_client_t *c, conn_t *k) {
  Dtrain__Ps__Init in = c->init_msg;
  in.server_index = (uint32_t)k->index;
  return queue_frame(k, DT_PS_INIT, &in.base, c->params + k->begin, (size_t)(k->end - k->begin),
                     false);
}

static bool queue_push(ps_client_t *c, conn_t *k) {
  Dtrain__Ps__Push p = DTRAIN__PS__PUSH__INIT;
  p.clock = c->cur.push_clock;
  p.lr = c->cur.lr;
  p.base_version = c->cur.base[k->index];
  p.steps = c->cur.steps;
  return queue_frame(k, DT_PS_PUSH, &p.base, c->send + k->begin, (size_t)(k->end - k->begin),
                     true);
}

static bool queue_small(conn_t *k, int type, int64_t clock) {
  Dtrain__Ps__Pull pull = DTRAIN__PS__PULL__INIT;
  Dtrain__Ps__Heartbeat hb = DTRAIN__PS__HEARTBEAT__INIT;
  Dtrain__Ps__Bye bye = DTRAIN__PS__BYE__INIT;
  pull.clock = clock;
  hb.clock = clock;
  const ProtobufCMessage *m = type == DT_PS_PULL ? &pull.base
                              : type == DT_PS_HEARTBEAT ? &hb.base : &bye.base;
  return queue_frame(k, type, m, NULL, 0, false);
}

/* Queues what the exchange in flight still needs from a ready server. */
static void pump(ps_client_t *c, conn_t *k) {
  if (!c->active || k->phase != READY) return;
  bool ok = true;
  if (k->need_push && !k->push_queued) ok = (k->push_queued = queue_push(c, k));
  if (ok && !k->got_params && !k->pull_queued)
    ok = (k->pull_queued = queue_small(k, DT_PS_PULL, c->cur.pull_clock));
  if (!ok) fail(c, DT_ERR_NOMEM, "out of memory queueing messages for server %s", k->name);
}

/* ---- connections ---- */

static void conn_down(ps_client_t *c, conn_t *k, const char *why) {
  if (k->fd >= 0) close(k->fd);
  k->fd = -1;
  clear_segs(k);
  k->rd.start = k->rd.end = 0;
  k->direct_left = 0;
  double now = dt_now_s();
  /* The server is down since it was last ready: failed attempts to reach it again do
   * not restart the clock, or ps.reconnect_timeout_s would never run out. */
  if (k->phase == READY || k->down_since == 0.0) k->down_since = now;
  if (k->was_ready && !k->reported_down) {
    dt_log_warn(&c->log, "parameter server %s: %s; reconnecting", k->name, why);
    k->reported_down = true;
  }
  k->phase = DOWN;
  k->push_queued = k->pull_queued = false;
  /* A push that went out may still have been lost with the connection (the server
   * died before reading it): it goes again, and a server that did read it ignores
   * the second copy by its clock. */
  if (c->active && c->cur.push && !k->got_params) k->need_push = true;
  k->next_attempt = now + k->backoff;
  k->backoff = k->backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : k->backoff * 2;
}

static void conn_connect(ps_client_t *c, conn_t *k) {
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(k->addr.host, k->addr.port, &hints, &ai);
  if (rc) {
    conn_down(c, k, gai_strerror(rc));
    return;
  }
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) {
    freeaddrinfo(ai);
    conn_down(c, k, strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  dt_ps_socket_liveness(fd, c->o.cfg->heartbeat_timeout_s);
  k->last_recv = dt_now_s();
  k->silent_limit = c->o.cfg->heartbeat_timeout_s;
  rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  k->fd = fd;
  if (rc < 0 && errno != EINPROGRESS) {
    conn_down(c, k, strerror(errno));
    return;
  }
  k->phase = CONNECTING;
}

static void connected(ps_client_t *c, conn_t *k) {
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
  if (soerr) {
    conn_down(c, k, strerror(soerr));
    return;
  }
  k->phase = HELLO_SENT;
  if (!queue_hello(c, k)) fail(c, DT_ERR_NOMEM, "out of memory saying HELLO");
}

static bool fatal_code(int code) {
  return code != DTRAIN__PS__ERROR_CODE__TIMEOUT && code != DTRAIN__PS__ERROR_CODE__SHUTTING_DOWN &&
         code != DTRAIN__PS__ERROR_CODE__TOO_MANY_CONNECTIONS &&
         code != DTRAIN__PS__ERROR_CODE__REPLACED;
}

static void on_welcome(ps_client_t *c, conn_t *k, const Dtrain__Ps__Welcome *w) {
  if (!c->id_known) {
    c->worker_id = w->worker_id;
    c->id_known = true;
    dt_log_info(&c->log, "parameter server %s assigned this worker id %u of %u", k->name,
                c->worker_id, c->o.num_workers);
  } else if (w->worker_id != c->worker_id) {
    fail(c, DT_ERR_COMM, "parameter server %s welcomed this worker as %u, not %u", k->name,
         w->worker_id, c->worker_id);
    return;
  }
  k->welcomed = true;
  k->consistency = (int)w->consistency;
  k->staleness = (long)w->staleness;
  k->welcome_clock = w->clock;
  /* The server drops us after this much silence; it answers every HEARTBEAT, so from
   * a live server we hear at least every ps.heartbeat_s. */
  if (w->heartbeat_timeout_s > 0) k->silent_limit = w->heartbeat_timeout_s;
  k->phase = READY;
  k->backoff = BACKOFF_FIRST_S;
  if (k->reported_down)
    dt_log_info(&c->log, "parameter server %s: reconnected after %.1f s", k->name,
                dt_now_s() - k->down_since);
  k->reported_down = false;
  k->was_ready = true;
  if (!w->initialized && !queue_init(c, k)) {
    fail(c, DT_ERR_NOMEM, "out of memory sending INIT");
    return;
  }
  pump(c, k);
}

static void on_params(ps_client_t *c, conn_t *k, const dt_ps_msg_t *m) {
  size_t n = (size_t)(k->end - k->begin);
  if (!c->active || !k->pull_queued || k->got_params) {
    fail(c, DT_ERR_COMM, "parameter server %s sent PARAMS nobody asked for", k->name);
    return;
  }
  if (m->npayload != n) {
    fail(c, DT_ERR_COMM, "parameter server %s sent %zu parameters for a range of %zu", k->name,
         m->npayload, n);
    return;
  }
  memcpy(c->params + k->begin, m->payload, n * sizeof(float));
  k->version = m->m.params->version;
  k->got_params = true;
}

static void on_frame(ps_client_t *c, conn_t *k, int type, const uint8_t *body, size_t len) {
  dt_ps_msg_t m;
  dt_error_t err = {0};
  int code;
  if (dt_ps_decode(type, body, len, &m, &code, &err)) {
    fail(c, DT_ERR_COMM, "parameter server %s: %s", k->name, err.msg);
    return;
  }
  if (type == DT_PS_WELCOME && k->phase == HELLO_SENT) {
    on_welcome(c, k, m.m.welcome);
  } else if (type == DT_PS_PARAMS && k->phase == READY) {
    on_params(c, k, &m);
  } else if (type == DT_PS_HEARTBEAT && k->phase == READY) {
    /* The answer to ours: the server is alive (last_recv says so already). */
  } else if (type == DT_PS_ERROR) {
    int ec = (int)m.m.error->code;
    char why[DT_ERROR_MSG_MAX];
    snprintf(why, sizeof why, "ERROR %s: %s", dt_ps_error_name(ec), m.m.error->message);
    if (fatal_code(ec)) {
      int rc = ec == DTRAIN__PS__ERROR_CODE__BAD_TOKEN ||
                       ec == DTRAIN__PS__ERROR_CODE__WORKER_ID_TAKEN
                   ? DT_ERR_CONFIG
               : ec == DTRAIN__PS__ERROR_CODE__BAD_SIGNATURE || ec == DTRAIN__PS__ERROR_CODE__BAD_SHARD
                   ? DT_ERR_MISMATCH
                   : DT_ERR_COMM;
      fail(c, rc, "parameter server %s answered %s", k->name, why);
    } else {
      k->was_ready = true; /* report the outage even before the first WELCOME */
      conn_down(c, k, why);
    }
  } else {
    fail(c, DT_ERR_COMM, "parameter server %s sent an unexpected %s", k->name,
         dt_ps_type_name(type));
  }
  dt_ps_msg_free(&m);
}

/* Starts receiving a large PARAMS payload straight into the params buffer (saving a
 * copy of the whole range); false when the frame takes the usual path. */
static bool divert_params(ps_client_t *c, conn_t *k) {
  if (!c->active || !k->pull_queued || k->got_params) return false;
  dt_ps_msg_t m;
  const uint8_t *have;
  size_t have_len, plen;
  int code;
  dt_error_t err = {0};
  int rc = dt_ps_reader_split_payload(&k->rd, DT_PS_PARAMS, &m, &have, &have_len, &plen, &code,
                                      &err);
  if (rc == 0) return false;
  if (rc < 0) {
    fail(c, DT_ERR_COMM, "parameter server %s: %s", k->name, err.msg);
    return true;
  }
  size_t n = (size_t)(k->end - k->begin);
  if (plen != n * sizeof(float)) {
    fail(c, DT_ERR_COMM, "parameter server %s sent %zu parameters for a range of %zu", k->name,
         plen / sizeof(float), n);
  } else {
    k->direct = (uint8_t *)(c->params + k->begin);
    memcpy(k->direct, have, have_len);
    k->direct += have_len;
    k->direct_left = plen - have_len;
    k->direct_version = m.m.params->version;
    if (!k->direct_left) {
      k->version = k->direct_version;
      k->got_params = true;
    }
  }
  dt_ps_msg_free(&m);
  return true;
}

static void on_readable(ps_client_t *c, conn_t *k) {
  for (;;) {
    uint8_t *p;
    size_t space;
    dt_error_t err = {0};
    if (k->direct_left) {
      ssize_t r = recv(k->fd, k->direct, k->direct_left, MSG_DONTWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (r <= 0) {
        conn_down(c, k, r == 0 ? "the server closed the connection" : strerror(errno));
        return;
      }
      k->last_recv = dt_now_s();
      k->direct += r;
      k->direct_left -= (size_t)r;
      if (!k->direct_left) {
        k->version = k->direct_version;
        k->got_params = true;
      }
      continue;
    }
    if (dt_ps_reader_space(&k->rd, &p, &space, &err)) {
      fail(c, DT_ERR_NOMEM, "%s", err.msg);
      return;
    }
    ssize_t r = recv(k->fd, p, space, MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r <= 0) {
      conn_down(c, k, r == 0 ? "the server closed the connection" : strerror(errno));
      return;
    }
    k->last_recv = dt_now_s();
    dt_ps_reader_commit(&k->rd, (size_t)r);
    if (divert_params(c, k)) {
      if (c->failed) return;
      continue;
    }
    for (;;) {
      int type, code;
      const uint8_t *body;
      size_t len;
      int rc = dt_ps_reader_next(&k->rd, &type, &body, &len, &code, &err);
      if (rc == 0) break;
      if (rc < 0) {
        fail(c, DT_ERR_COMM, "parameter server %s: %s", k->name, err.msg);
        return;
      }
      on_frame(c, k, type, body, len);
      if (k->phase == DOWN || c->failed) return;
    }
  }
}

/* ---- the thread ---- */

/* Takes a new exchange from the trainer, if one was posted. */
static void take_job(ps_client_t *c, double now) {
  pthread_mutex_lock(&c->mu);
  bool fresh = c->job_seq != c->taken_seq;
  c->taken_seq = c->job_seq;
  if (fresh) c->cur = c->job;
  pthread_mutex_unlock(&c->mu);
  if (!fresh) return;
  c->active = true;
  c->job_start = now;
  for (int i = 0; i < c->n; i++) {
    conn_t *k = &c->conns[i];
    k->need_push = c->cur.push;
    k->push_queued = k->pull_queued = k->got_params = false;
    pump(c, k);
  }
}

static void check_progress(ps_client_t *c, double now) {
  bool all_ready = true, all_params = true;
  for (int i = 0; i < c->n; i++) {
    conn_t *k = &c->conns[i];
    /* A server host that died without a word (power, a cut cable) leaves the socket
     * open: silence is the only sign, long before TCP gives up on it. */
    if (k->phase != DOWN && now - k->last_recv > k->silent_limit) {
      char why[160];
      snprintf(why, sizeof why, "silent for %.1f s (longer than its ps.heartbeat_timeout_s = %g)",
               now - k->last_recv, k->silent_limit);
      conn_down(c, k, why);
    }
    all_ready &= k->phase == READY;
    all_params &= k->got_params;
    /* Only a wait that someone is in counts against the server. */
    if (k->phase != READY && (c->active || !c->all_ready) &&
        now - k->down_since > c->o.cfg->reconnect_timeout_s) {
      fail(c, DT_ERR_COMM, "parameter server %s unreachable for %.1f s (ps.reconnect_timeout_s)",
           k->name, now - k->down_since);
      return;
    }
  }
  if (!c->all_ready && all_ready) {
    ps_client_info_t info = {.consistency = c->conns[0].consistency,
                             .staleness = c->conns[0].staleness, .worker_id = c->worker_id};
    for (int i = 0; i < c->n; i++) {
      const conn_t *k = &c->conns[i];
      if (k->welcome_clock > info.clock) info.clock = k->welcome_clock;
      if (k->consistency != info.consistency || k->staleness != info.staleness)
        info.mixed = true;
    }
    if (info.clock > c->acked_clock) c->acked_clock = info.clock;
    pthread_mutex_lock(&c->mu);
    c->info = info;
    c->all_ready = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
  }
  if (!c->active) return;
  if (all_params) {
    c->active = false;
    if (c->cur.push) c->acked_clock = c->cur.push_clock;
    pthread_mutex_lock(&c->mu);
    c->done_seq = c->taken_seq;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
  } else if (now - c->job_start > c->o.timeout_s) {
    char who[1024] = "";
    size_t used = 0;
    for (int i = 0; i < c->n && used < sizeof who; i++)
      if (!c->conns[i].got_params)
        used += (size_t)snprintf(who + used, sizeof who - used, "%s%s", used ? ", " : "",
                                 c->conns[i].name);
    fail(c, DT_ERR_TIMEOUT, "no parameters from %s within %g s (sync.timeout_s)", who,
         c->o.timeout_s);
  }
}

static int poll_timeout_ms(ps_client_t *c, double now) {
  double next = now + 0.1;
  for (int i = 0; i < c->n; i++) {
    const conn_t *k = &c->conns[i];
    if (k->phase == DOWN && k->next_attempt < next) next = k->next_attempt;
    if (k->phase == READY && k->last_send + c->o.cfg->heartbeat_s < next)
      next = k->last_send + c->o.cfg->heartbeat_s;
  }
  double ms = ceil((next - now) * 1000.0);
  return ms < 0 ? 0 : (int)ms;
}

static void service(ps_client_t *c, struct pollfd *pf, double now) {
  for (int i = 0; i < c->n; i++) {
    conn_t *k = &c->conns[i];
    short ev = pf[i + 1].revents;
    if (k->fd < 0 || pf[i + 1].fd != k->fd || !ev) continue;
    if (k->phase == CONNECTING) {
      if (ev & (POLLOUT | POLLERR | POLLHUP)) connected(c, k);
      if (k->phase == CONNECTING || k->phase == DOWN) continue;
    }
    if ((ev & POLLOUT) && !flush(c, k, now)) continue;
    if (ev & (POLLIN | POLLERR | POLLHUP)) on_readable(c, k);
  }
}

static void *thread_main(void *arg) {
  ps_client_t *c = arg;
  struct pollfd pf[DT_PS_MAX_SERVERS + 1];
  for (;;) {
    double now = dt_now_s();
    pthread_mutex_lock(&c->mu);
    bool stop = c->stop, failed = c->failed;
    pthread_mutex_unlock(&c->mu);
    if (failed || (stop && !c->active)) break;
    take_job(c, now);
    for (int i = 0; i < c->n; i++) {
      conn_t *k = &c->conns[i];
      if (k->phase == DOWN && now >= k->next_attempt && (c->id_known || k->index == 0))
        conn_connect(c, k);
      /* A HEARTBEAT only when the line has been quiet: any frame keeps us alive. */
      if (k->phase == READY && k->nsegs == 0 && now - k->last_send >= c->o.cfg->heartbeat_s &&
          !queue_small(k, DT_PS_HEARTBEAT, c->acked_clock))
        fail(c, DT_ERR_NOMEM, "out of memory for a heartbeat");
      if (k->nsegs && k->phase >= HELLO_SENT) flush(c, k, now);
    }
    pf[0] = (struct pollfd){.fd = c->wake[0], .events = POLLIN};
    for (int i = 0; i < c->n; i++) {
      conn_t *k = &c->conns[i];
      short ev = 0;
      if (k->fd >= 0) ev = k->phase == CONNECTING ? POLLOUT : (short)(POLLIN | (k->nsegs ? POLLOUT : 0));
      pf[i + 1] = (struct pollfd){.fd = ev ? k->fd : -1, .events = ev};
    }
    int r = poll(pf, (nfds_t)c->n + 1, poll_timeout_ms(c, now));
    if (r < 0 && errno != EINTR) {
      fail(c, DT_ERR_COMM, "poll: %s", strerror(errno));
      break;
    }
    now = dt_now_s();
    if (r > 0 && (pf[0].revents & POLLIN)) {
      char buf[64];
      while (read(c->wake[0], buf, sizeof buf) > 0) {
      }
    }
    if (r > 0) service(c, pf, now);
    check_progress(c, now);
  }
  return NULL;
}

static void wake(ps_client_t *c) {
  char b = 1;
  ssize_t w = write(c->wake[1], &b, 1);
  (void)w; /* a full pipe already wakes the thread */
}

/* ---- trainer side ---- */

static int take_failure(ps_client_t *c, dt_error_t *err) {
  return dt_error_set(err, c->fail_code ? c->fail_code : DT_ERR_COMM, "%s", c->fail_msg);
}

static int build_init(ps_client_t *c, const float *init_params, dt_error_t *err) {
  const ps_client_opts_t *o = &c->o;
  size_t nt = (size_t)o->ntensors;
  c->init_tensors = calloc(nt, sizeof *c->init_tensors);
  c->init_tensor_ptrs = calloc(nt, sizeof *c->init_tensor_ptrs);
  c->init_dims = calloc(nt * DT_MAX_DIMS, sizeof *c->init_dims);
  c->send = calloc((size_t)o->num_params, sizeof(float));
  c->params = malloc((size_t)o->num_params * sizeof(float));
  if (!c->init_tensors || !c->init_tensor_ptrs || !c->init_dims || !c->send || !c->params)
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the parameter-server client");
  memcpy(c->params, init_params, (size_t)o->num_params * sizeof(float));
  for (size_t i = 0; i < nt; i++) {
    const dt_param_info_t *t = &o->tensors[i];
    Dtrain__Ps__Tensor *pt = &c->init_tensors[i];
    dtrain__ps__tensor__init(pt);
    pt->name = (char *)(uintptr_t)t->name;
    pt->n_shape = (size_t)t->shape.ndim;
    pt->shape = c->init_dims + i * DT_MAX_DIMS;
    for (int d = 0; d < t->shape.ndim; d++) pt->shape[d] = (uint32_t)t->shape.dims[d];
    pt->offset = t->offset;
    pt->count = t->count;
    pt->decay = t->decay;
    c->init_tensor_ptrs[i] = pt;
  }
  Dtrain__Ps__Optimizer *po = &c->init_opt;
  dtrain__ps__optimizer__init(po);
  po->kind = (uint32_t)o->optim->kind;
  po->momentum = o->optim->momentum;
  po->nesterov = o->optim->nesterov;
  po->beta1 = o->optim->beta1;
  po->beta2 = o->optim->beta2;
  po->rho = o->optim->rho;
  po->epsilon = o->optim->eps;
  po->weight_decay = o->optim->weight_decay;
  c->signature = dt_ps_signature(o->tensors, o->ntensors, o->num_params, o->optim);
  Dtrain__Ps__Init *in = &c->init_msg;
  dtrain__ps__init__init(in);
  in->signature = c->signature;
  in->num_params = o->num_params;
  in->num_servers = (uint32_t)c->n;
  in->n_tensors = nt;
  in->tensors = c->init_tensor_ptrs;
  in->optimizer = po;
  return 0;
}

/* A number that no other worker process picks: the servers tell this process's
 * reconnects from another process claiming the same id by it. */
static uint64_t make_nonce(void) {
  uint64_t n = 0;
  if (getrandom(&n, sizeof n, 0) != (ssize_t)sizeof n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    n = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec << 20 ^
        (uint64_t)getpid();
  }
  return n ? n : 1;
}

int ps_client_start(ps_client_t **out, const ps_client_opts_t *o, const float *init_params,
                    ps_client_info_t *info, dt_error_t *err) {
  *out = NULL;
  if (o->cfg->nservers < 1)
    return dt_error_set(err, DT_ERR_CONFIG, "[ps] servers is empty: list the parameter servers "
                        "as host:port,host:port (sync.mode = ps)");
  if ((uint64_t)o->cfg->nservers > o->num_params)
    return dt_error_set(err, DT_ERR_CONFIG, "[ps] servers: %d servers for %" PRIu64
                        " parameters", o->cfg->nservers, o->num_params);
  ps_client_t *c = calloc(1, sizeof *c);
  if (!c) return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
  c->o = *o;
  c->log = o->log;
  c->n = o->cfg->nservers;
  c->worker_id = o->assign_id ? 0 : o->worker_id;
  c->id_known = !o->assign_id;
  c->nonce = make_nonce();
  c->wake[0] = c->wake[1] = -1;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  *out = c;
  int rc;
  if ((rc = build_init(c, init_params, err))) return rc;
  if (!(c->conns = calloc((size_t)c->n, sizeof *c->conns)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
  double now = dt_now_s();
  size_t max_body = (size_t)(o->cfg->max_frame_mb * 1048576.0);
  for (int i = 0; i < c->n; i++) {
    conn_t *k = &c->conns[i];
    k->fd = -1;
    k->index = i;
    k->addr = o->cfg->servers[i];
    snprintf(k->name, sizeof k->name, "%s:%s", k->addr.host, k->addr.port);
    dt_ps_range(o->num_params, (unsigned)c->n, (unsigned)i, &k->begin, &k->end);
    k->phase = DOWN;
    k->down_since = now;
    k->next_attempt = now;
    k->backoff = BACKOFF_FIRST_S;
    if ((rc = dt_ps_reader_init(&k->rd, max_body, err))) return rc;
  }
  if (pipe(c->wake) != 0 || fcntl(c->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
      fcntl(c->wake[1], F_SETFL, O_NONBLOCK) != 0)
    return dt_error_set(err, DT_ERR_COMM, "cannot create a pipe: %s", strerror(errno));
  if (pthread_create(&c->thread, NULL, thread_main, c) != 0)
    return dt_error_set(err, DT_ERR_COMM, "cannot start the communication thread");
  c->thread_started = true;

  pthread_mutex_lock(&c->mu);
  int sig = 0;
  while (!c->all_ready && !c->failed && !sig) {
    /* Woken by the thread, or every 100 ms to look for a signal. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->cv, &c->mu, &until);
    if (o->interrupted) sig = o->interrupted();
  }
  bool failed = c->failed, ready = c->all_ready;
  *info = c->info;
  pthread_mutex_unlock(&c->mu);
  if (failed) return take_failure(c, err);
  if (!ready) {
    /* The names are fixed before the thread starts: safe to read here. */
    char names[512] = "";
    size_t used = 0;
    for (int i = 0; i < c->n && used < sizeof names; i++)
      used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                               c->conns[i].name);
    return dt_error_set(err, DT_ERR_COMM, "stopped by signal %d while connecting to the "
                        "parameter servers (%s)", sig, names);
  }
  c->clock = info->clock;
  return 0;
}

float *ps_client_send_buffer(ps_client_t *c) { return c->send; }
const float *ps_client_params(const ps_client_t *c) { return c->params; }
int ps_client_num_servers(const ps_client_t *c) { return c->n; }
uint64_t ps_client_version(const ps_client_t *c, int k) { return c->conns[k].version; }
int64_t ps_client_clock(const ps_client_t *c) { return c->clock; }

int ps_client_exchange(ps_client_t *c, bool push, float lr, uint32_t steps,
                       const uint64_t *base_versions, int64_t pull_clock, dt_error_t *err) {
  pthread_mutex_lock(&c->mu);
  if (c->failed) {
    pthread_mutex_unlock(&c->mu);
    return take_failure(c, err);
  }
  if (c->done_seq != c->job_seq) {
    pthread_mutex_unlock(&c->mu);
    return dt_error_set(err, DT_ERR_STATE, "an exchange is already in flight");
  }
  if (push) c->clock++;
  c->job.push = push;
  c->job.lr = lr;
  c->job.steps = steps;
  c->job.push_clock = c->clock;
  c->job.pull_clock = pull_clock;
  for (int i = 0; i < c->n; i++) c->job.base[i] = base_versions ? base_versions[i] : 0;
  c->job_seq++;
  pthread_mutex_unlock(&c->mu);
  wake(c);
  return 0;
}

int ps_client_wait(ps_client_t *c, dt_error_t *err) {
  pthread_mutex_lock(&c->mu);
  while (c->done_seq != c->job_seq && !c->failed) pthread_cond_wait(&c->cv, &c->mu);
  bool failed = c->failed;
  pthread_mutex_unlock(&c->mu);
  return failed ? take_failure(c, err) : 0;
}

int ps_client_stop(ps_client_t *c, dt_error_t *err) {
  if (!c || !c->thread_started) return 0;
  int rc = ps_client_wait(c, err);
  pthread_mutex_lock(&c->mu);
  c->stop = true;
  pthread_mutex_unlock(&c->mu);
  wake(c);
  pthread_join(c->thread, NULL);
  c->thread_started = false;
  /* BYE from this thread now that the other has ended: servers then drop us at once
   * instead of after their heartbeat timeout. */
  double deadline = dt_now_s() + BYE_WAIT_S;
  for (int i = 0; i < c->n; i++) {
    conn_t *k = &c->conns[i];
    if (k->phase != READY) continue;
    if (!queue_small(k, DT_PS_BYE, 0)) continue;
    while (k->nsegs && k->fd >= 0 && dt_now_s() < deadline) {
      struct pollfd pf = {.fd = k->fd, .events = POLLOUT};
      if (poll(&pf, 1, 100) > 0 && !flush(c, k, dt_now_s())) break;
    }
  }
  return rc;
}

void ps_client_free(ps_client_t *c) {
  if (!c) return;
  if (c->thread_started) {
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    c->failed = true;
    pthread_mutex_unlock(&c->mu);
    wake(c);
    pthread_join(c->thread, NULL);
  }
  for (int i = 0; c->conns && i < c->n; i++) {
    conn_t *k = &c->conns[i];
    if (k->fd >= 0) close(k->fd);
    clear_segs(k);
    dt_ps_reader_free(&k->rd);
  }
  if (c->wake[0] >= 0) close(c->wake[0]);
  if (c->wake[1] >= 0) close(c->wake[1]);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c->conns);
  free(c->send);
  free(c->params);
  free(c->init_tensors);
  free(c->init_tensor_ptrs);
  free(c->init_dims);
  free(c);
}
