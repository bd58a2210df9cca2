/* dtrain-ps networking: the listening socket, one conn_t per worker connection, frame
 * reassembly into ps_handle_frame, sending with bounded output, and closing with an
 * ERROR that the peer can still read. */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ps_server.h"

/* A closing connection is given this long to read our ERROR and hang up. */
#define CLOSE_GRACE_S 2.0

typedef struct {
  uv_write_t req;
  conn_t *c;
  size_t len;
  uint8_t data[];
} wreq_t;

typedef struct {
  uv_shutdown_t req;
  conn_t *c;
} sreq_t;

double ps_now(void) { return (double)uv_hrtime() * 1e-9; }

static void on_close(uv_handle_t *h) {
  conn_t *c = h->data;
  dt_ps_reader_free(&c->rd);
  free(c);
}

static void detach_member(conn_t *c) {
  if (!c->member) return;
  c->member->conn = NULL;
  c->member->pull_pending = false;
  c->member = NULL;
}

void ps_conn_close(conn_t *c) {
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  ps_server_t *s = c->srv;
  detach_member(c);
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  s->nconns--;
  c->state = CONN_CLOSING;
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  w->c->queued -= w->len;
  if (status < 0 && status != UV_ECANCELED) ps_conn_close(w->c);
  free(w);
}

/* Queues bytes without the output limit (ERROR frames are small and must go out). */
static void send_bytes(conn_t *c, const void *head, size_t hlen, const void *payload,
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
      ps_conn_close(c);
      return;
    }
  }
  size_t rest = hlen + plen - done;
  if (rest == 0) return;
  wreq_t *w = malloc(sizeof *w + rest);
  if (!w) {
    dt_log_error(&c->srv->log, "out of memory queueing %zu bytes for %s; closing it", rest,
                 c->peer);
    ps_conn_close(c);
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
    ps_conn_close(c);
    return;
  }
  c->queued += rest;
}

void ps_conn_send(conn_t *c, const void *head, size_t hlen, const void *payload, size_t plen) {
  if (c->state == CONN_CLOSING) return;
  double limit = c->srv->cfg.max_buffered_mb * 1048576.0;
  if ((double)(c->queued + hlen + plen) > limit && c->queued > 0) {
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__BUFFER_LIMIT,
                 "%zu bytes of output not read by the peer, over ps.max_buffered_mb = %g",
                 c->queued + hlen + plen, c->srv->cfg.max_buffered_mb);
    return;
  }
  send_bytes(c, head, hlen, payload, plen);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  sreq_t *r = (sreq_t *)req;
  (void)status;
  /* The peer has seen our FIN after the ERROR; wait (bounded by the tick) for its
   * end, so that closing does not reset the connection before it read the ERROR. */
  free(r);
}

void ps_conn_fail(conn_t *c, int code, const char *fmt, ...) {
  if (c->state == CONN_CLOSING) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ps_server_t *s = c->srv;
  char who[48] = "";
  if (c->member || c->state == CONN_READY) snprintf(who, sizeof who, " (worker %u)", c->worker_id);
  dt_log_warn(&s->log, "connection %s%s: %s: %s; closing it", c->peer, who,
              code ? dt_ps_error_name(code) : "internal error", msg);
  if (code != DTRAIN__PS__ERROR_CODE__TIMEOUT && code != DTRAIN__PS__ERROR_CODE__REPLACED &&
      code != DTRAIN__PS__ERROR_CODE__SHUTTING_DOWN)
    s->stats.bad_connections++;
  detach_member(c);
  if (code) {
    uint8_t frame[1024];
    size_t len = dt_ps_encode_error(code, frame, sizeof frame, "%s", msg);
    send_bytes(c, frame, len, NULL, 0);
  }
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  c->state = CONN_CLOSING;
  c->closing_since = ps_now();
  sreq_t *r = malloc(sizeof *r);
  if (!r || uv_shutdown(&r->req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    free(r);
    ps_conn_close(c);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn_t *c = h->data;
  (void)suggested;
  /* A closing connection's input is read only to be thrown away. */
  if (c->state == CONN_CLOSING) c->rd.start = c->rd.end = 0;
  uint8_t *p;
  size_t len;
  dt_error_t err;
  if (dt_ps_reader_space(&c->rd, &p, &len, &err)) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init((char *)p, (unsigned)(len > UINT32_MAX ? UINT32_MAX : len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = st->data;
  (void)buf;
  if (nread == 0) return;
  if (nread < 0) {
    if (c->state == CONN_CLOSING) {
      ps_conn_close(c);
    } else if (nread == UV_EOF && dt_ps_reader_pending(&c->rd) > 0) {
      /* The peer may have closed only its sending side: it can still read why. */
      ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__TRUNCATED,
                   "the connection ended %zu bytes into a frame", dt_ps_reader_pending(&c->rd));
    } else if (nread == UV_ENOBUFS) {
      ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__BUFFER_LIMIT, "out of memory for a frame");
    } else {
      if (c->member)
        dt_log_info(&c->srv->log, "worker %u disconnected without BYE (%s); it stays a member "
                    "for up to ps.heartbeat_timeout_s = %g s", c->worker_id,
                    nread == UV_EOF ? "end of stream" : uv_strerror((int)nread),
                    c->srv->cfg.heartbeat_timeout_s);
      ps_conn_close(c);
    }
    return;
  }
  if (c->state == CONN_CLOSING) return;
  dt_ps_reader_commit(&c->rd, (size_t)nread);
  for (;;) {
    int type, code = 0;
    const uint8_t *body;
    size_t len;
    dt_error_t err = {0};
    int rc = dt_ps_reader_next(&c->rd, &type, &body, &len, &code, &err);
    if (rc == 0) return;
    if (rc < 0) {
      ps_conn_fail(c, code, "%s", err.msg);
      return;
    }
    ps_handle_frame(c, type, body, len);
    if (c->state == CONN_CLOSING) return;
  }
}

static void peer_name(conn_t *c) {
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
  ps_server_t *s = server->data;
  if (status < 0) {
    dt_log_warn(&s->log, "accepting a connection: %s", uv_strerror(status));
    return;
  }
  conn_t *c = calloc(1, sizeof *c);
  dt_error_t err;
  if (!c || dt_ps_reader_init(&c->rd, s->max_body, &err)) {
    dt_log_error(&s->log, "out of memory accepting a connection");
    free(c);
    return;
  }
  c->srv = s;
  c->opened = ps_now();
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    ps_conn_close(c);
    return;
  }
  peer_name(c);
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
    ps_conn_close(c);
    return;
  }
  if (s->stopping)
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__SHUTTING_DOWN, "the server is stopping");
  else if (s->nconns > s->cfg.max_connections)
    ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__TOO_MANY_CONNECTIONS,
                 "%d connections already open (ps.max_connections)", s->nconns - 1);
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

int ps_net_listen(ps_server_t *s, const char *host, const char *port, dt_error_t *err) {
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  int rc = getaddrinfo(host, port, &hints, &ai);
  if (rc)
    return dt_error_set(err, DT_ERR_ARG, "--listen %s:%s: %s", host, port, gai_strerror(rc));
  uv_tcp_init(s->loop, &s->listener);
  s->listener.data = s;
  rc = uv_tcp_bind(&s->listener, ai->ai_addr, 0);
  freeaddrinfo(ai);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  if (rc < 0)
    return dt_error_set(err, DT_ERR_IO, "cannot listen on %s:%s: %s", host, port,
                        uv_strerror(rc));
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
  int bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  dt_log_info(&s->log, "dtrain-ps %s listening on %s:%d", DT_VERSION, host, bound);
  if (s->port_file) return write_port_file(s->port_file, bound, err);
  return 0;
}

/* Closes connections that are past their grace: closing ones that did not hang up,
 * and new ones that never said HELLO. */
void ps_net_tick(ps_server_t *s, double now) {
  for (conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (c->state == CONN_CLOSING && now - c->closing_since > CLOSE_GRACE_S)
      ps_conn_close(c);
    else if (c->state == CONN_NEW && now - c->opened > s->cfg.heartbeat_timeout_s)
      ps_conn_fail(c, DTRAIN__PS__ERROR_CODE__TIMEOUT, "no HELLO within %g s",
                   s->cfg.heartbeat_timeout_s);
  }
}

void ps_net_shutdown(ps_server_t *s) {
  while (s->conns) {
    conn_t *c = s->conns;
    if (c->state != CONN_CLOSING) {
      uint8_t frame[256];
      size_t len = dt_ps_encode_error(DTRAIN__PS__ERROR_CODE__SHUTTING_DOWN, frame, sizeof frame,
                                      "the server is stopping");
      send_bytes(c, frame, len, NULL, 0);
    }
    ps_conn_close(c);
  }
  if (!uv_is_closing((uv_handle_t *)&s->listener)) uv_close((uv_handle_t *)&s->listener, NULL);
}
