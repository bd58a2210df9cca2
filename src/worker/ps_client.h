/* The worker's side of the parameter-server protocol (proto/ps.proto): one TCP
 * connection per server, all driven by one communication thread, so that the trainer
 * computes the next step while gradients and parameters travel.
 *
 * The trainer hands over work as "exchanges": optionally push the send buffer's
 * gradient (each server gets its range), then pull every range into the params
 * buffer. Buffers change hands with the exchange: the trainer fills the send buffer
 * only while no exchange is in flight, and reads the params buffer only after
 * ps_client_wait has returned.
 *
 * The thread also says HELLO (and INIT when a server's range is empty; with an id to be
 * assigned, to server 0 first, and then names the id it got to the others), sends
 * HEARTBEATs while the trainer is busy (the servers answer them), and reconnects with
 * backoff when a server goes away or stays silent for longer than the heartbeat
 * timeout of its WELCOME: what a server has not answered of the exchange in flight is sent again, push
 * included (the server may have died before reading it; one that did read it drops
 * the copy by its clock, so each push is applied at most once). A server unreachable for ps.reconnect_timeout_s, an exchange that takes
 * longer than the trainer's timeout, or an ERROR that retrying cannot fix (wrong
 * token, another model) fail the exchange with a message naming the server. */
#ifndef DTRAIN_WORKER_PS_CLIENT_H
#define DTRAIN_WORKER_PS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/error.h"
#include "dtrain/layer.h"
#include "dtrain/log.h"
#include "dtrain/optim.h"
#include "dtrain/ps.h"

typedef struct ps_client ps_client_t;

typedef struct {
  const dt_ps_config_t *cfg;      /* servers, token, heartbeat, reconnect timeout */
  uint32_t worker_id;              /* unless assign_id */
  bool assign_id;                  /* server 0 assigns one (the others are told it) */
  uint32_t num_workers;            /* ids are below this */
  uint64_t num_params;
  const dt_param_info_t *tensors; /* the model's, for INIT and the signature */
  int ntensors;
  const dt_optim_config_t *optim;
  double timeout_s;               /* longest wait for one exchange */
  dt_log_t log;
  /* The signal that asks this process to stop, or 0; polled while ps_client_start
   * waits for the servers, so that SIGTERM is honoured there too. NULL: never. */
  int (*interrupted)(void);
} ps_client_opts_t;

/* What the servers said in WELCOME. */
typedef struct {
  int consistency;  /* dt_ps_consistency of server 0 */
  long staleness;
  int64_t clock;    /* the clock to continue from */
  bool mixed;       /* servers disagree on consistency or staleness */
  uint32_t worker_id; /* this worker's, named or assigned */
} ps_client_info_t;

/* Connects to every server (retrying up to ps.reconnect_timeout_s), says HELLO (with
 * o->assign_id, first to server 0 alone, which assigns the id the others are told), sends
 * INIT with init_params (num_params floats) where a range is empty, and starts the
 * thread. A signal (o->interrupted) ends the wait with an error naming the servers not
 * reached yet. *out is set also when this fails: release it with ps_client_free. */
int ps_client_start(ps_client_t **out, const ps_client_opts_t *o, const float *init_params,
                    ps_client_info_t *info, dt_error_t *err);

/* (num_params) the gradient of the next push; write only while no exchange is in flight. */
float *ps_client_send_buffer(ps_client_t *c);
/* (num_params) the parameters of the last completed pull. */
const float *ps_client_params(const ps_client_t *c);
int ps_client_num_servers(const ps_client_t *c);
/* The version server k reported with the last completed pull. */
uint64_t ps_client_version(const ps_client_t *c, int k);

/* Starts an exchange: if push, sends the send buffer with the next clock, lr and
 * steps (base_versions[k]: the version of server k's range the gradient was computed
 * on); then pulls for pull_clock (the clock of the step that will use the result). */
int ps_client_exchange(ps_client_t *c, bool push, float lr, uint32_t steps,
                       const uint64_t *base_versions, int64_t pull_clock, dt_error_t *err);
/* Waits for the exchange in flight (none: returns at once). */
int ps_client_wait(ps_client_t *c, dt_error_t *err);

/* Clocks pushed so far (the start clock included). */
int64_t ps_client_clock(const ps_client_t *c);

/* Waits for the exchange in flight, says BYE to every server and stops the thread. */
int ps_client_stop(ps_client_t *c, dt_error_t *err);
void ps_client_free(ps_client_t *c);

#endif
