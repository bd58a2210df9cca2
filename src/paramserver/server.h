/* dtrain-ps's event loop: the I/O around the core. It restores a checkpoint if asked,
 * listens (net.c), turns frames, the timer and signals into the core's events
 * (ps_core.h) and carries out the actions the core answers with: sending, closing,
 * checkpointing (ckpt.c). */
#ifndef DTRAIN_PS_SERVER_H
#define DTRAIN_PS_SERVER_H

#include <stdbool.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/ps.h"

typedef struct {
  const char *host, *port;  /* where to listen */
  const char *port_file;    /* where to write the port bound, or NULL */
  bool resume;              /* restore the newest checkpoint under ps.checkpoint_dir */
} ps_server_opts_t;

/* Serves until SIGTERM/SIGINT. Returns an error when the server could not start
 * (cannot listen, unusable checkpoint); otherwise 0 with *failed set when the last
 * checkpoint before stopping failed. */
int ps_server_run(const dt_ps_config_t *cfg, dt_log_t *log, const ps_server_opts_t *opts,
                  bool *failed, dt_error_t *err);

#endif
