/* dtrain-ps internals: one server owns one range [begin, end) of the flat parameter
 * vector, applies the workers' gradients to it with the worker's optimizer code, and
 * answers their pulls when the consistency model allows.
 *
 * Everything runs on one libuv loop thread, so no state here is locked:
 *   net.c     listening, connections, frame reassembly, limits, sending, closing
 *   handle.c  what each message does: handshake, INIT, PUSH, PULL, BYE
 *   shard.c   the range's state: updates per consistency model, membership and
 *             liveness, which pulls may be answered, statistics
 *   sync_rounds.c  sync mode's rounds, indexed by the workers' clocks
 *   ckpt.c    checkpoints of the range and optimizer state, and --resume
 *   main.c    command line, config, signals */
#ifndef DTRAIN_PS_SERVER_H
#define DTRAIN_PS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/optim.h"
#include "dtrain/ps.h"
#include "dtrain/ps_frame.h"
#include "dtrain/tensor.h"

typedef struct ps_server ps_server_t;
typedef struct conn conn_t;

/* A worker the server counts as live: joined by HELLO, gone by BYE or after
 * heartbeat_timeout_s of silence (a closed connection alone does not drop it: it may
 * be reconnecting). */
typedef struct {
  uint32_t id;
  int64_t pushed;      /* the clock of its latest push; in sync mode also "it is past
                          every round up to here" (see sync_rounds.c) */
  double last_seen;    /* when anything last arrived from it */
  conn_t *conn;        /* its connection, or NULL while it has none */
  /* sync mode (sync_rounds.c): which rounds it belongs to. */
  bool joined;         /* its first round is known (from its first PULL or PUSH) */
  int64_t join_clock;  /* that first round */
  int64_t join_min;    /* before it is known: no earlier than this */
  int64_t last_push;   /* the clock of its latest push taken (applied, or in a round);
                          one at or below it is a copy sent again after a reconnect */
  float *held;         /* (n) a push for a round after the current one, or NULL */
  int64_t held_clock;
  float held_lr;
  bool pull_pending;   /* a PULL not answered yet */
  int64_t pull_clock;
} member_t;

enum conn_state { CONN_NEW, CONN_READY, CONN_CLOSING };

struct conn {
  uv_tcp_t tcp;
  ps_server_t *srv;
  conn_t *prev, *next;
  char peer[80];
  enum conn_state state;
  dt_ps_reader_t rd;
  double opened, closing_since;
  size_t queued;       /* bytes handed to libuv and not yet written */
  member_t *member;    /* after HELLO */
  uint32_t worker_id;
  uint64_t signature;  /* what its HELLO said */
  uint64_t num_params;
  uint32_t server_index, num_servers;
};

typedef struct {
  uint64_t pushes, pulls, pulls_waited, dropped, bad_connections;
  uint64_t repeated;   /* pushes sent again after a reconnect that had arrived before */
  uint64_t discarded;  /* sync: pushes for rounds already applied (after a restart) */
  int64_t max_gap;     /* largest (pull clock - 1) - slowest live worker's pushed clock */
  uint64_t gap_hist[8];/* pulls by gap 0, 1, ..., 6, >= 7 */
} ps_stats_t;

struct ps_server {
  dt_ps_config_t cfg;
  dt_log_t log;
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t tick;
  uv_signal_t sigterm, sigint;
  bool stopping;
  int exit_code;
  conn_t *conns;
  int nconns;
  size_t max_body;

  /* The range, once INIT (or a checkpoint) has set it. */
  bool initialized;
  uint64_t signature, num_params;
  uint32_t index, nservers;
  uint64_t begin, end;
  size_t n;                 /* end - begin */
  dt_param_info_t *tensors; /* (ntensors) the whole model's, for the signature */
  int ntensors;
  dt_param_info_t *local;   /* (nlocal) the tensors' parts in the range, offsets from begin */
  int nlocal;
  dt_optim_config_t ocfg;
  float *params;            /* (n) */
  dt_optim_t optim;         /* moments of (n) */
  uint64_t version;         /* updates applied */
  float *accum;             /* (n) sync: the current round's gradient sum */
  int ncontrib;
  double lr_sum;
  int64_t round_clock;      /* sync: the clock whose pushes accum sums */

  member_t **members;
  int nmembers, cap_members;
  ps_stats_t stats;

  double last_ckpt_time;
  uint64_t last_ckpt_version;
  const char *port_file;
};

double ps_now(void);

/* net.c */
int ps_net_listen(ps_server_t *s, const char *host, const char *port, dt_error_t *err);
/* Queues a frame made of head and payload (either may be empty); what the socket does
 * not take at once is copied, so the caller's buffers are free on return. Closes the
 * connection (BUFFER_LIMIT) when its unsent output would pass ps.max_buffered_mb. */
void ps_conn_send(conn_t *c, const void *head, size_t hlen, const void *payload, size_t plen);
/* Sends ERROR(code, message) unless code is 0, logs one line, and closes. */
void ps_conn_fail(conn_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ps_conn_close(conn_t *c);
/* Closes connections past their grace (closing, or never said HELLO). */
void ps_net_tick(ps_server_t *s, double now);
void ps_net_shutdown(ps_server_t *s);

/* handle.c: one decoded frame from c. */
void ps_handle_frame(conn_t *c, int type, const uint8_t *body, size_t len);
/* PARAMS with the range's current values to c (whose member's pull is answered). */
void ps_send_params(conn_t *c, int64_t clock);

/* shard.c */
int ps_shard_init(ps_server_t *s, const Dtrain__Ps__Init *init, const float *params,
                  dt_error_t *err);
void ps_shard_free(ps_server_t *s);
/* One optimizer step of the range with grad (n); the version counts it. */
void ps_shard_apply(ps_server_t *s, const float *grad, float lr);
member_t *ps_member_find(ps_server_t *s, uint32_t id);
member_t *ps_member_add(ps_server_t *s, uint32_t id, int64_t clock, dt_error_t *err);
void ps_member_remove(ps_server_t *s, member_t *m, const char *why);
/* The smallest pushed clock of the live workers, or `none` when there are none. */
int64_t ps_min_pushed(const ps_server_t *s, int64_t none);
void ps_shard_push(ps_server_t *s, member_t *m, const Dtrain__Ps__Push *p, const float *grad);
/* Whether a pull at `clock` may be answered now. */
bool ps_pull_ready(const ps_server_t *s, int64_t clock);
/* Answers every pending pull that may now be answered. */
void ps_serve_pulls(ps_server_t *s);
/* Drops members silent for longer than T. */
void ps_check_liveness(ps_server_t *s, double now);
void ps_log_stats(ps_server_t *s, const char *when);

/* sync_rounds.c: bulk-synchronous rounds indexed by clock. */
/* A worker unknown to this server said HELLO at clock h: the first round it may
 * belong to, and the clock it is told to continue from. */
int64_t ps_sync_hello(ps_server_t *s, member_t *m, int64_t h);
/* A PULL or PUSH at `clock` from m: the first one names its first round. */
void ps_sync_announce(ps_server_t *s, member_t *m, int64_t clock);
void ps_sync_push(ps_server_t *s, member_t *m, int64_t clock, const float *grad, float lr);
/* Applies every round that no live worker holds up any more. */
void ps_sync_advance(ps_server_t *s);

/* ckpt.c */
int ps_ckpt_save(ps_server_t *s, dt_error_t *err);
/* 0 restored, DT_ERR_NOT_FOUND nothing to restore, other errors fatal. */
int ps_ckpt_restore(ps_server_t *s, dt_error_t *err);
/* Saves when ps.checkpoint_every_s or ps.checkpoint_every_updates says so. */
void ps_ckpt_maybe(ps_server_t *s, double now);

#endif
