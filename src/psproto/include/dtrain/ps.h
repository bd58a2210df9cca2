/* The [ps] section of the run config (one reader for both programs, so that a job's
 * config file can be given to dtrain-ps and dtrain-worker alike), server addresses,
 * the TCP settings both sides give their connections, and token comparison in
 * constant time. The ranges and the model signature are in
 * ps_range.h. */
#ifndef DTRAIN_PS_H
#define DTRAIN_PS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/ps_frame.h"
#include "dtrain/ps_range.h"

extern const char *const dt_ps_consistency_names[]; /* "async", "ssp", "sync", NULL */

enum { DT_PS_HOST_MAX = 256, DT_PS_PATH_MAX = 4096 };

/* ps.worker_id = assigned: the servers give the worker an id when it connects. */
#define DT_PS_ASSIGNED (-1L)

typedef struct {
  char host[DT_PS_HOST_MAX];
  char port[8];
} dt_ps_addr_t;

/* The [ps] section (docs/configuration.md). Keys marked (worker) or (server) are used
 * by that program only; both read them all so that one file serves both. */
typedef struct {
  dt_ps_addr_t servers[DT_PS_MAX_SERVERS]; /* (worker) in split order */
  int nservers;
  long worker_id, num_workers;   /* (worker) identity (DT_PS_ASSIGNED: the servers pick
                                    it), and the data shard it trains on */
  long push_every;               /* (worker) local steps averaged into one push */
  bool overlap;                  /* (worker) compute the next step while exchanging */
  double heartbeat_s;            /* (worker) idle time before a HEARTBEAT */
  double reconnect_timeout_s;    /* (worker) how long a server may stay unreachable */
  double heartbeat_timeout_s;    /* (server) T: a worker silent this long is dropped */
  int consistency;               /* (server) a dt_ps_consistency */
  long staleness;                /* (server) s for ssp */
  bool staleness_lr;             /* (server) lr / staleness of the push */
  char checkpoint_dir[DT_PS_PATH_MAX]; /* (server) "" for none */
  double checkpoint_every_s;     /* (server) 0: not by time */
  long checkpoint_every_updates; /* (server) 0: not by count */
  long keep_checkpoints;         /* (server) 0: keep all */
  double max_frame_mb;           /* (both) longest frame accepted */
  double max_buffered_mb;        /* (server) unsent output held per connection */
  double max_memory_mb;          /* (server) output and receive buffers of all connections */
  long max_connections;          /* (server) */
  char logdir[DT_PS_PATH_MAX];   /* (server) TensorBoard folder for its own run, "" for none */
  double log_every_s;            /* (server) one point of its scalars this often */
  /* The shared secret from ps.token_file, else the DTRAIN_PS_TOKEN environment
   * variable; has_token is false when neither is set. */
  bool has_token;
  uint8_t token[DT_PS_TOKEN_MAX];
  size_t token_len;
} dt_ps_config_t;

int dt_ps_config_read(dt_config_t *cfg, dt_ps_config_t *out, dt_error_t *err);

/* "host:port" or "[v6addr]:port" into out; `what` names the value in errors. */
int dt_ps_parse_addr(const char *s, dt_ps_addr_t *out, const char *what, dt_error_t *err);

/* A peer that vanishes without a word (a host that died, a cut cable) is noticed by
 * the kernel within about timeout_s (ps.heartbeat_timeout_s): TCP keepalive on the idle
 * connected socket fd, and TCP_USER_TIMEOUT for data that stays unacknowledged. The
 * heartbeats above it notice a peer that is up but silent. */
void dt_ps_socket_liveness(int fd, double timeout_s);

/* Equal lengths and bytes, in time that depends only on the lengths. */
bool dt_ps_token_equal(const uint8_t *expected, size_t elen, const uint8_t *got, size_t glen);

#endif
