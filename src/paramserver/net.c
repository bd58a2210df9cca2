/* dtrain-ps networking (see net.h): the listening socket, connections, frame
 * reassembly, sending with bounded output, closing with an ERROR that the peer can
 * still read, and the memory budget of all connections together. */
#define _POSIX_C_SOURCE 200809L
#include "net.h"

#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dtrain/fpenv.h"
#include "dtrain/ps.h"

/* A closing connection is given this long to read our ERROR and hang up. */
#define CLOSE_GRACE_S 2.0

struct ps_conn {
  uv_tcp_t tcp;
  ps_net_t *net;
  ps_conn_t *prev, *next;
  char peer[80];
  dt_ps_reader_t rd;
  bool closing;        /* failed or closed: nothing more is read or sent */
  bool told;           /* the closed handler has heard of it */
  bool admitted;       /* frames up to max_body (else hello_max_body) */
  bool paused;         /* not read: its next frame waits for memory */
  bool in_frame;       /* a frame of its is being handled: its buffer is in use */
  bool named;          /* it speaks for worker_id (log lines name it) */
  uint32_t worker_id;
  double closing_since;
  size_t queued;       /* bytes handed to libuv and not yet written */
  max_align_t user[];  /* net->user_size bytes for the layer above */
};

typedef struct {
  uv_write_t req;
  ps_conn_t *c;
  size_t len;
  uint8_t data[];
} wreq_t;

typedef struct {
  uv_shutdown_t req;
  ps_conn_t *c;
} sreq_t;

double ps_net_now(void) { return (double)uv_hrtime() * 1e-9; }

void *ps_conn_user(ps_conn_t *c) { return c->user; }

const char *ps_conn_peer(const ps_conn_t *c) { return c->peer; }

void ps_conn_set_worker(ps_conn_t *c, uint32_t id) {
  c->named = true;
  c->worker_id = id;
}

void ps_conn_admit(ps_conn_t *c) {
  c->admitted = true;
  c->rd.max_body = c->net->max_body;
}

/* ---- the memory budget ---- */

static void count(ps_net_t *n, size_t bytes) {
  n->used += bytes;
  if (n->used > n->peak) n->peak = n->used;
}

static void uncount(ps_conn_t *c, size_t bytes) { c->net->used -= bytes; }

/* Gives back the receive buffers that grew for earlier large frames and hold nothing. */
static void shrink_idle(ps_net_t *n) {
  for (ps_conn_t *c = n->conns; c; c = c->next)
    if (!c->in_frame) uncount(c, dt_ps_reader_shrink(&c->rd));
}

/* Grows c's receive buffer to what its next read needs, counting it. */
static int grow_reader(ps_conn_t *c) {
  size_t before = c->rd.cap, len;
  uint8_t *p;
  dt_error_t err;
  int rc = dt_ps_reader_space(&c->rd, &p, &len, &err);
  count(c->net, c->rd.cap - before);
  return rc;
}

static void resume_paused(ps_net_t *n);

/* The layer above hears once that c is done. */
static void tell(ps_conn_t *c, bool failed, int code, const char *why) {
  if (c->told) return;
  c->told = true;
  c->net->h.closed(c->net->h.ctx, c, failed, code, why);
}

static void on_close(uv_handle_t *h) {
  ps_conn_t *c = h->data;
  ps_net_t *n = c->net;
  uncount(c, c->rd.cap);
  dt_ps_reader_free(&c->rd);
  free(c);
  if (n->npaused) resume_paused(n);
}

static void close_conn(ps_conn_t *c, const char *why) {
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  ps_net_t *n = c->net;
  if (c->prev) c->prev->next = c->next;
  else n->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  n->nconns--;
  if (c->paused) n->npaused--;
  c->paused = false;
  c->closing = true;
  /* Its output and buffers count until libuv has freed them (on_write, on_close), at
   * the end of this loop iteration: other connections read in the same iteration must
   * not take that memory twice. */
  uv_close((uv_handle_t *)&c->tcp, on_close);
  tell(c, false, 0, why);
}

void ps_net_close(ps_conn_t *c) { close_conn(c, NULL); }

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  ps_conn_t *c = w->c;
  c->queued -= w->len;
  uncount(c, w->len);
  free(w);
  if (status < 0 && status != UV_ECANCELED) close_conn(c, NULL);
  else if (c->net->npaused) resume_paused(c->net);
}

/* Queues bytes without the output limit (ERROR frames are small and must go out). */
static void send_bytes(ps_conn_t *c, const void *head, size_t hlen, const void *payload,
                       size_t plen) {
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  size_t done = 0;
  if (c->queued == 0) {
    /* Most of a frame usually fits into the socket at once: only the rest is copied,
     * and the caller's buffers (the live parameters) are free again on return. */
    uv_buf_t bufs[2] = {uv_buf_init((char *)(uintptr_t)head, (unsigned)hlen),
                        uv_buf_init((char *)(uintptr_t)payload, (unsigned)plen)};
    int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, plen ? 2 : 1);
    if (r >= 0) done = (size_t)r;
    else if (r != UV_EAGAIN) {
      close_conn(c, NULL);
      return;
    }
  }
  size_t rest = hlen + plen - done;
  if (rest == 0) return;
  wreq_t *w = malloc(sizeof *w + rest);
  if (!w) {
    dt_log_error(c->net->log, "out of memory queueing %zu bytes for %s; closing it", rest,
                 c->peer);
    close_conn(c, NULL);
    return;
  }
  size_t hpart = done < hlen ? hlen - done : 0;
  memcpy(w->data, (const uint8_t *)head + (hlen - hpart), hpart);
  size_t pdone = done > hlen ? done - hlen : 0;
  if (plen > pdone) memcpy(w->data + hpart, (const uint8_t *)payload + pdone, plen - pdone);
  w->c = c;
  w->len = rest;
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)rest);
  int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (r < 0) {
    free(w);
    close_conn(c, NULL);
    return;
  }
  c->queued += rest;
  count(c->net, rest);
}

/* Output over the budget: closes the connections with the most unsent output until it
 * fits, sparing `keep` (the sender, whose queue is only the frame just sent: one frame
 * may go over). A peer that reads nothing cannot read an ERROR either, so they are
 * closed at once. */
static void relieve_output(ps_net_t *n, ps_conn_t *keep) {
  if (n->used > n->max_memory) shrink_idle(n);
  while (n->used > n->max_memory) {
    ps_conn_t *big = NULL;
    for (ps_conn_t *c = n->conns; c; c = c->next)
      if (c != keep && c->queued > 0 && (!big || c->queued > big->queued)) big = c;
    if (!big) return;
    char who[48] = "";
    if (big->named) snprintf(who, sizeof who, " (worker %u)", big->worker_id);
    dt_log_warn(n->log, "connection %s%s: BUFFER_LIMIT: %zu bytes of output not read by the "
                "peer while all connections hold %zu, over ps.max_memory_mb = %g; closing it",
                big->peer, who, big->queued, n->used, (double)n->max_memory / 1048576.0);
    tell(big, true, DTRAIN__PS__ERROR_CODE__BUFFER_LIMIT, NULL);
    close_conn(big, NULL);
  }
}

void ps_net_send(ps_conn_t *c, const void *head, size_t hlen, const void *payload, size_t plen) {
  if (c->closing) return;
  double limit = c->net->max_buffered_mb * 1048576.0;
  if ((double)(c->queued + hlen + plen) > limit && c->queued > 0) {
    ps_net_fail(c, DTRAIN__PS__ERROR_CODE__BUFFER_LIMIT,
                "%zu bytes of output not read by the peer, over ps.max_buffered_mb = %g",
                c->queued + hlen + plen, c->net->max_buffered_mb);
    return;
  }
  bool had_output = c->queued > 0;
  send_bytes(c, head, hlen, payload, plen);
  if (c->net->used > c->net->max_memory) relieve_output(c->net, had_output ? NULL : c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  sreq_t *r = (sreq_t *)req;
  (void)status;
  /* The peer has seen our FIN after the ERROR; wait (bounded by the tick) for its
   * end, so that closing does not reset the connection before it read the ERROR. */
  free(r);
}

void ps_net_fail(ps_conn_t *c, int code, const char *fmt, ...) {
  if (c->closing) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char who[48] = "";
  if (c->named) snprintf(who, sizeof who, " (worker %u)", c->worker_id);
  dt_log_warn(c->net->log, "connection %s%s: %s: %s; closing it", c->peer, who,
              code ? dt_ps_error_name(code) : "internal error", msg);
  tell(c, true, code, NULL);
  if (code) {
    uint8_t frame[1024];
    size_t len = dt_ps_encode_error(code, frame, sizeof frame, "%s", msg);
    send_bytes(c, frame, len, NULL, 0);
  }
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
    c->closing = true;
    c->closing_since = ps_net_now();
    sreq_t *r = malloc(sizeof *r);
    if (!r || uv_shutdown(&r->req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
      free(r);
      close_conn(c, NULL);
    }
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ps_conn_t *c = h->data;
  (void)suggested;
  /* A closing connection's input is read only to be thrown away. */
  if (c->closing) c->rd.start = c->rd.end = 0;
  uint8_t *p;
  size_t len, before = c->rd.cap;
  dt_error_t err;
  int rc = dt_ps_reader_space(&c->rd, &p, &len, &err);
  count(c->net, c->rd.cap - before);
  if (rc) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init((char *)p, (unsigned)(len > UINT32_MAX ? UINT32_MAX : len));
}

/* Before c's receive buffer grows for a large frame: grows it if the budget allows
 * (after giving back idle buffers), else stops reading c until memory frees. */
static void make_room(ps_conn_t *c) {
  ps_net_t *n = c->net;
  size_t want = dt_ps_reader_wants(&c->rd);
  if (want <= c->rd.cap || c->closing) return;
  size_t grow = want - c->rd.cap;
  if (grow > n->max_memory) {
    ps_net_fail(c, DTRAIN__PS__ERROR_CODE__BUFFER_LIMIT, "a frame of %zu bytes does not fit into "
                "ps.max_memory_mb = %g", want, (double)n->max_memory / 1048576.0);
    return;
  }
  if (n->used + grow > n->max_memory) shrink_idle(n);
  if (n->used + grow <= n->max_memory) {
    if (grow_reader(c)) ps_net_fail(c, DTRAIN__PS__ERROR_CODE__BUFFER_LIMIT,
                                    "out of memory for a frame of %zu bytes", want);
    return;
  }
  if (!c->paused) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->paused = true;
    n->npaused++;
  }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Reads again from the paused connections whose next frame fits now, oldest first. */
static void resume_paused(ps_net_t *n) {
  for (ps_conn_t *c = n->conns; c && n->npaused; c = c->next) {
    if (!c->paused) continue;
    size_t grow = dt_ps_reader_wants(&c->rd) - c->rd.cap;
    if (n->used + grow > n->max_memory) shrink_idle(n);
    if (n->used + grow > n->max_memory) continue;
    c->paused = false;
    n->npaused--;
    if (grow_reader(c) || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
      ps_net_fail(c, DTRAIN__PS__ERROR_CODE__BUFFER_LIMIT, "out of memory for a frame");
  }
}

/* The length prefix of the frame c's reader holds the start of (at least 4 bytes). */
static size_t frame_length(const ps_conn_t *c) {
  const uint8_t *h = c->rd.buf + c->rd.start;
  return (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  ps_conn_t *c = st->data;
  (void)buf;
  if (nread == 0) return;
  if (nread < 0) {
    if (c->closing) {
      close_conn(c, NULL);
    } else if (nread == UV_EOF && dt_ps_reader_pending(&c->rd) > 0) {
      /* The peer may have closed only its sending side: it can still read why. */
      ps_net_fail(c, DTRAIN__PS__ERROR_CODE__TRUNCATED,
                  "the connection ended %zu bytes into a frame",
                  dt_ps_reader_pending(&c->rd));
    } else if (nread == UV_ENOBUFS) {
      ps_net_fail(c, DTRAIN__PS__ERROR_CODE__BUFFER_LIMIT, "out of memory for a frame");
    } else {
      close_conn(c, nread == UV_EOF ? "end of stream" : uv_strerror((int)nread));
    }
    return;
  }
  if (c->closing) return;
  dt_ps_reader_commit(&c->rd, (size_t)nread);
  for (;;) {
    int type, code = 0;
    const uint8_t *body;
    size_t len;
    dt_error_t err = {0};
    int rc = dt_ps_reader_next(&c->rd, &type, &body, &len, &code, &err);
    if (rc == 0) break;
    if (rc < 0) {
      if (code == DTRAIN__PS__ERROR_CODE__FRAME_TOO_LARGE && !c->admitted)
        ps_net_fail(c, code, "a frame of %zu bytes before HELLO was accepted (until then at "
                    "most %zu)", frame_length(c), c->rd.max_body + 1);
      else ps_net_fail(c, code, "%s", err.msg);
      return;
    }
    c->in_frame = true;
    c->net->h.frame(c->net->h.ctx, c, type, body, len);
    c->in_frame = false;
    if (c->closing) return;
  }
  /* Under pressure, the buffer a large frame left behind goes back at once. */
  if (c->net->npaused || c->net->used > c->net->max_memory)
    uncount(c, dt_ps_reader_shrink(&c->rd));
  make_room(c);
}

static void peer_name(ps_conn_t *c) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char host[64] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
}

static void on_connection(uv_stream_t *server, int status) {
  ps_net_t *n = server->data;
  if (status < 0) {
    dt_log_warn(n->log, "accepting a connection: %s", uv_strerror(status));
    return;
  }
  ps_conn_t *c = calloc(1, sizeof *c + n->user_size);
  dt_error_t err;
  /* Until HELLO is accepted, only frames that fit into one read chunk: nobody gets the
   * server to hold a large buffer before it has shown the token and the model. */
  size_t first = n->hello_max_body < n->max_body ? n->hello_max_body : n->max_body;
  if (!c || dt_ps_reader_init(&c->rd, first, &err)) {
    dt_log_error(n->log, "out of memory accepting a connection");
    free(c);
    return;
  }
  c->net = n;
  count(n, c->rd.cap);
  uv_tcp_init(n->loop, &c->tcp);
  c->tcp.data = c;
  c->next = n->conns;
  if (n->conns) n->conns->prev = c;
  n->conns = c;
  n->nconns++;
  n->h.opened(n->h.ctx, c);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    close_conn(c, NULL);
    return;
  }
  peer_name(c);
  uv_tcp_nodelay(&c->tcp, 1);
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) dt_ps_socket_liveness(fd, n->liveness_s);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
    close_conn(c, NULL);
    return;
  }
  if (n->stopping)
    ps_net_fail(c, DTRAIN__PS__ERROR_CODE__SHUTTING_DOWN, "the server is stopping");
  else if (n->nconns > n->max_connections)
    ps_net_fail(c, DTRAIN__PS__ERROR_CODE__TOO_MANY_CONNECTIONS,
                "%d connections already open (ps.max_connections)", n->nconns - 1);
}

static int write_port_file(const char *path, int port, dt_error_t *err) {
  char tmp[DT_PS_PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return dt_error_set(err, DT_ERR_IO, "cannot create the port file '%s'", tmp);
  fprintf(f, "%d\n", port);
  if (fclose(f) != 0 || rename(tmp, path) != 0)
    return dt_error_set(err, DT_ERR_IO, "cannot write the port file '%s'", path);
  return 0;
}

int ps_net_listen(ps_net_t *n, const char *host, const char *port, const char *port_file,
                  dt_error_t *err) {
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  int rc = getaddrinfo(host, port, &hints, &ai);
  if (rc)
    return dt_error_set(err, DT_ERR_ARG, "--listen %s:%s: %s", host, port, gai_strerror(rc));
  uv_tcp_init(n->loop, &n->listener);
  n->listener.data = n;
  rc = uv_tcp_bind(&n->listener, ai->ai_addr, 0);
  freeaddrinfo(ai);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&n->listener, 128, on_connection);
  if (rc < 0)
    return dt_error_set(err, DT_ERR_IO, "cannot listen on %s:%s: %s", host, port,
                        uv_strerror(rc));
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&n->listener, (struct sockaddr *)&ss, &len);
  int bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  dt_log_info(n->log, "dtrain-ps %s listening on %s:%d; denormals %s", DT_VERSION, host, bound,
              dt_fp_denormals_flushed() ? "flushed to zero" : "NOT flushed");
  if (port_file) return write_port_file(port_file, bound, err);
  return 0;
}

void ps_net_tick(ps_net_t *n, double now) {
  for (ps_conn_t *c = n->conns, *next; c; c = next) {
    next = c->next;
    if (c->closing && now - c->closing_since > CLOSE_GRACE_S) close_conn(c, NULL);
  }
  if (n->npaused) resume_paused(n);
}

void ps_net_shutdown(ps_net_t *n) {
  n->stopping = true;
  while (n->conns) {
    ps_conn_t *c = n->conns;
    if (!c->closing) {
      uint8_t frame[256];
      size_t len = dt_ps_encode_error(DTRAIN__PS__ERROR_CODE__SHUTTING_DOWN, frame, sizeof frame,
                                      "the server is stopping");
      send_bytes(c, frame, len, NULL, 0);
    }
    close_conn(c, NULL);
  }
  if (n->listener.loop && !uv_is_closing((uv_handle_t *)&n->listener))
    uv_close((uv_handle_t *)&n->listener, NULL);
}
