/* dtrain-ps networking (libuv): the listening socket, one ps_conn_t per connection,
 * frame reassembly, sending with bounded output, closing with an ERROR the peer can
 * still read, and the connection limit. It knows nothing of what the frames mean: it
 * hands them, and the news of a connection opened or ended, to the handlers of the
 * layer above (server.c), which keeps its own per-connection record in the memory
 * ps_conn_user gives.
 *
 * Memory: a connection accepts only small frames until the layer above admits it
 * (HELLO accepted), and all connections together hold at most max_memory bytes of
 * unsent output and receive buffers. Over it, buffers left from earlier large frames
 * are given back first; a large frame that still does not fit waits (its connection is
 * not read) until memory frees; output that does not fit closes the connection with
 * the most unsent output at once, since a peer that reads nothing cannot read an
 * ERROR either. */
#ifndef DTRAIN_PS_NET_H
#define DTRAIN_PS_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/ps_frame.h"

typedef struct ps_net ps_net_t;
typedef struct ps_conn ps_conn_t;

typedef struct {
  void *ctx;
  /* c was accepted; nothing has arrived on it yet. */
  void (*opened)(void *ctx, ps_conn_t *c);
  /* One complete frame from c (body valid during the call). */
  void (*frame)(void *ctx, ps_conn_t *c, int type, const uint8_t *body, size_t len);
  /* c carries nothing more, said once per connection: it failed with ERROR(code)
   * (failed, code 0 for a failure without one), or it closed (why: what ended the
   * peer's side, for the log, or NULL). Its memory lasts until the loop runs again. */
  void (*closed)(void *ctx, ps_conn_t *c, bool failed, int code, const char *why);
} ps_net_handlers_t;

struct ps_net {
  /* Set before ps_net_listen. */
  uv_loop_t *loop;
  const dt_log_t *log;
  size_t max_body;          /* longest frame body accepted (ps.max_frame_mb) */
  size_t hello_max_body;    /* longest before ps_conn_admit (at most a read chunk) */
  size_t max_memory;        /* all connections' buffers together (ps.max_memory_mb) */
  double liveness_s;        /* TCP keepalive and user timeout (ps.heartbeat_timeout_s) */
  double max_buffered_mb;   /* unsent output held per connection */
  long max_connections;
  size_t user_size;         /* bytes of ps_conn_user memory per connection */
  ps_net_handlers_t h;
  /* Its own. */
  uv_tcp_t listener;
  ps_conn_t *conns;
  int nconns;
  int npaused;              /* connections not read until memory frees */
  size_t used;              /* bytes of unsent output and receive buffers, all together */
  size_t peak;              /* the most `used` has been */
  bool stopping;
};

/* Listens on host:port and, when port_file is set, writes the port bound there. */
int ps_net_listen(ps_net_t *n, const char *host, const char *port, const char *port_file,
                  dt_error_t *err);
/* Queues a frame made of head and payload (either may be empty); what the socket does
 * not take at once is copied, so the caller's buffers are free on return. Fails the
 * connection (BUFFER_LIMIT) when its unsent output would pass max_buffered_mb. */
void ps_net_send(ps_conn_t *c, const void *head, size_t hlen, const void *payload, size_t plen);
/* Sends ERROR(code, message) unless code is 0, logs one line, and closes. */
void ps_net_fail(ps_conn_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Closes at once, without a word. */
void ps_net_close(ps_conn_t *c);
/* Closes failed connections whose peer did not hang up within the grace. */
void ps_net_tick(ps_net_t *n, double now);
/* SHUTTING_DOWN to every connection, then closes them and the listener. */
void ps_net_shutdown(ps_net_t *n);

/* Seconds on the loop's monotonic clock. */
double ps_net_now(void);

void *ps_conn_user(ps_conn_t *c);
const char *ps_conn_peer(const ps_conn_t *c);
/* The connection speaks for worker `id` now: its log lines name it. */
void ps_conn_set_worker(ps_conn_t *c, uint32_t id);
/* Its HELLO was accepted: frames up to max_body from now on. */
void ps_conn_admit(ps_conn_t *c);

#endif
