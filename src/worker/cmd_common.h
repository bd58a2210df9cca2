/* What the commands on a trained model (predict, evaluate) share: the options that name
 * the model and the input, opening the model on this machine's device, and turning an
 * error into an exit status. */
#ifndef DTRAIN_WORKER_CMD_COMMON_H
#define DTRAIN_WORKER_CMD_COMMON_H

#include <stdbool.h>

#include "dtrain/device.h"
#include "dtrain/error.h"
#include "model_data.h"
#include "saved_model.h"

enum { CMD_EXIT_FAILED = 1, CMD_EXIT_USAGE = 2 };

typedef struct {
  const char *model;   /* --model */
  model_input_t input; /* --input, --targets, --format, --limit */
  const char **sets;   /* --set (nsets of them) */
  int nsets;
  long batch_size;     /* --batch-size; 0: the model's train.batch_size */
  long threads;        /* --threads; 0: train.threads, else every core */
  bool quiet;
} cmd_opts_t;

/* Opens the model: device, saved_model_load, the --set overrides, threads, and
 * dt_model_prepare for the batch size. */
int cmd_open_model(const cmd_opts_t *o, dt_device_t **dev, saved_model_t *sm, dt_error_t *err);

/* The exit status for an error: 2 when the user named the wrong thing (not a model, a
 * shape or value that does not fit, a bad option), 1 when a file is corrupt or I/O
 * failed. */
int cmd_exit_code(int rc);

/* Reads a positive count option ("--batch-size 64"); false (with a message) if bad. */
bool cmd_parse_count(const char *prog, const char *opt, const char *v, long *out);

#endif
