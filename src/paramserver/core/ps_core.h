/* The parameter server's core: the handshake's checks, membership and liveness,
 * clocks, SSP/BSP waits, sync rounds and updates of the range, as a state machine
 * that takes events and answers with actions. It does no I/O: no sockets, no libuv,
 * no files; the time comes in with each event, and log lines go to the logger it is
 * given. The I/O around it (server.c, net.c) decodes frames into events, feeds them
 * in, and carries out the actions in order before it feeds the next event:
 *
 *   frame/timer/signal -> server.c: ps_event_t -> ps_core_handle -> ps_actions_t
 *                      -> server.c: send WELCOME/PARAMS/ERROR, close, checkpoint
 *
 * Connections are ps_session_t records that the I/O owns (one per connection) and
 * the core keeps its per-connection state in. An event that changes the range does so
 * before it answers any pull, so a PARAMS action may point at the live values. */
#ifndef DTRAIN_PS_CORE_H
#define DTRAIN_PS_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/ps.h"
#include "members.h"
#include "range.h"
#include "snapshot.h"

typedef struct ps_core ps_core_t;

typedef enum { PS_SESSION_NEW, PS_SESSION_READY, PS_SESSION_CLOSING } ps_session_state;

/* One connection. The I/O allocates it zeroed, sets io, feeds PS_EV_OPEN, and keeps
 * it until after PS_EV_CLOSED; every other field is the core's. */
typedef struct ps_session {
  void *io;                  /* the I/O's connection; the core never touches it */
  struct ps_session *prev, *next;
  bool linked;               /* between OPEN and CLOSED */
  ps_session_state state;    /* NEW until HELLO is accepted; CLOSING once failed */
  double opened;
  ps_member_t *member;       /* after HELLO, until it fails, closes or the member goes */
  uint32_t worker_id;        /* what its HELLO said, or the id assigned to it */
  uint64_t signature, num_params;
  uint32_t server_index, num_servers;
} ps_session_t;

typedef enum {
  PS_EV_OPEN,         /* a connection was accepted */
  PS_EV_HELLO,
  PS_EV_INIT,
  PS_EV_PUSH,
  PS_EV_PULL,
  PS_EV_HEARTBEAT,
  PS_EV_BYE,
  PS_EV_MESSAGE,      /* a valid message that is not for servers (type in message_type) */
  PS_EV_CLOSED,       /* the connection carries nothing more (answers with no actions) */
  PS_EV_TICK,         /* the timer: liveness, HELLO deadlines, the checkpoint schedule */
  PS_EV_STOP,         /* SIGTERM/SIGINT: a last checkpoint if anything changed */
  PS_EV_CHECKPOINTED  /* how a PS_ACT_CHECKPOINT went (answers with no actions) */
} ps_event_kind;

typedef struct {
  uint32_t protocol, worker_id;
  uint64_t signature, num_params;
  uint32_t server_index, num_servers;
  int64_t clock;        /* its latest push that every server answered */
  uint64_t nonce;       /* the worker process's: the same on each of its connections */
  bool assign_id;       /* worker_id is to be picked here, among num_workers */
  uint32_t num_workers;
  const uint8_t *token; /* (token_len) */
  size_t token_len;
  const char *peer;     /* "host:port", for the log */
} ps_hello_t;

typedef struct {
  ps_model_t model;
  const float *params;  /* (nparams) the range's initial values */
  size_t nparams;
} ps_init_t;

typedef struct {
  int64_t clock;
  float lr;
  uint64_t base_version;
  const float *grad;    /* (n), read during the event only */
  size_t n;
} ps_push_t;

typedef struct {
  ps_event_kind kind;
  double now;             /* seconds on a monotonic clock */
  ps_session_t *session;  /* OPEN to CLOSED */
  union {
    ps_hello_t hello;
    ps_init_t init;
    ps_push_t push;
    int64_t pull_clock;
    int message_type;     /* MESSAGE: a dt_ps_type */
    struct {
      bool failed;        /* the I/O closed it with ERROR(code) (or code 0: internal) */
      int code;
      const char *why;    /* the peer hung up: why, for the log; NULL to say nothing */
    } closed;
    struct {
      bool ok;
      uint64_t version;   /* the version it holds */
    } checkpointed;
  };
} ps_event_t;

typedef enum {
  PS_ACT_WELCOME,     /* send WELCOME: the session's worker is a member now */
  PS_ACT_PARAMS,      /* send PARAMS with the range's values */
  PS_ACT_HEARTBEAT,   /* send HEARTBEAT: the answer to the worker's, so that it hears
                         from a live server while it waits or computes */
  PS_ACT_FAIL,        /* send ERROR(code) unless code is 0, log the message, close */
  PS_ACT_CLOSE,       /* close without a word (after BYE) */
  PS_ACT_CHECKPOINT   /* save a checkpoint now, then feed PS_EV_CHECKPOINTED */
} ps_action_kind;

enum { PS_FAIL_MSG_MAX = 512 };

typedef struct {
  ps_action_kind kind;
  ps_session_t *session;  /* all but CHECKPOINT */
  union {
    struct {
      uint32_t worker_id;
      bool initialized;
      uint64_t version;
      int consistency;    /* a dt_ps_consistency */
      uint32_t staleness;
      int64_t clock;      /* the clock to continue from */
      double heartbeat_timeout_s;
    } welcome;
    struct {
      uint64_t version;
      int64_t min_clock;  /* the slowest live worker's pushed clock */
      const float *values; /* (n) the live range: send before the next event */
      size_t n;
    } params;
    struct {
      int64_t clock;      /* the worker's pushed clock as this server knows it */
    } heartbeat;
    struct {
      int code;           /* an ErrorCode, or 0: close without ERROR */
      bool has_worker;    /* the connection had said HELLO: name worker_id in the log */
      uint32_t worker_id;
      char message[PS_FAIL_MSG_MAX];
    } fail;
    struct {
      bool final;         /* the one before stopping: its failure fails the server */
    } checkpoint;
  };
} ps_action_t;

/* Actions in order; the caller owns the list, empties it (n = 0) when done, and frees
 * it with ps_actions_free. An action that found no memory is counted in lost. */
typedef struct {
  ps_action_t *v;
  int n, cap;
  int lost;
} ps_actions_t;

void ps_actions_free(ps_actions_t *a);

typedef struct {
  uint64_t pushes, pulls, pulls_waited, dropped, bad_connections;
  uint64_t repeated;   /* pushes sent again after a reconnect that had arrived before */
  uint64_t discarded;  /* sync: pushes for rounds already applied (after a restart) */
  uint64_t nonfinite;  /* pushes refused for NaN or infinite values (nothing applied) */
  int64_t max_gap;     /* largest (pull clock - 1) - slowest live worker's pushed clock */
  uint64_t gap_sum;    /* the gaps of all answered pulls, added up (for their mean) */
  uint64_t gap_hist[8];/* pulls by gap 0, 1, ..., 6, >= 7 */
} ps_stats_t;

/* A core for the [ps] settings cfg (copied), logging to log (kept by pointer). */
ps_core_t *ps_core_new(const dt_ps_config_t *cfg, const dt_log_t *log, dt_error_t *err);
void ps_core_free(ps_core_t *c);

/* Feeds one event; its actions are appended to out. */
void ps_core_handle(ps_core_t *c, const ps_event_t *ev, ps_actions_t *out);

/* --resume: takes over range (left empty) and the members and round of st, as if
 * every listed worker had been heard at `now`. Only before the range is initialized. */
int ps_core_restore(ps_core_t *c, ps_range_t *range, const ps_snapshot_t *st, double now,
                    dt_error_t *err);
/* What a checkpoint of the current state holds besides the range. */
int ps_core_snapshot(const ps_core_t *c, ps_snapshot_t *out, dt_error_t *err);

/* The range, or NULL before INIT (or a restore). */
const ps_range_t *ps_core_range(const ps_core_t *c);
ps_stats_t ps_core_stats(const ps_core_t *c);
int ps_core_nmembers(const ps_core_t *c);
/* The member `id`, or NULL. */
const ps_member_t *ps_core_member(const ps_core_t *c, uint32_t id);
/* sync: the round being summed. */
int64_t ps_core_round(const ps_core_t *c);
/* One line of statistics, `when` saying why. */
void ps_core_log_stats(const ps_core_t *c, const char *when);

#endif
