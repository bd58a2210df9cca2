/* The commands' shared parts (see cmd_common.h). */
#include "cmd_common.h"

#include <stdio.h>
#include <stdlib.h>

#include "options.h"

int cmd_open_model(const cmd_opts_t *o, dt_device_t **dev, saved_model_t *sm, dt_error_t *err) {
  *dev = NULL;
  int rc = dt_device_create(&(dt_device_options_t){0}, dev, err);
  if (!rc) rc = saved_model_load(o->model, *dev, sm, err);
  for (int i = 0; !rc && i < o->nsets; i++) rc = dt_config_override(sm->cfg, o->sets[i], err);
  if (rc) return rc;
  run_options_t ro;
  if ((rc = run_options_read(sm->cfg, &ro, err))) return dt_error_prefix(err, "%s: ", sm->dir);
  if (o->threads > 0) ro.threads = o->threads;
  long batch = o->batch_size > 0 ? o->batch_size : ro.batch_size;
  if ((rc = dt_device_set_threads(*dev, (int)run_options_threads(&ro, false), err)) ||
      (rc = dt_model_prepare(&sm->model, (int)batch, err)))
    return rc;
  return 0;
}

int cmd_exit_code(int rc) {
  return rc == DT_ERR_CONFIG || rc == DT_ERR_SHAPE || rc == DT_ERR_ARG || rc == DT_ERR_NOT_FOUND
             ? CMD_EXIT_USAGE
             : CMD_EXIT_FAILED;
}

bool cmd_parse_count(const char *prog, const char *opt, const char *v, long *out) {
  char *end;
  long x = strtol(v, &end, 10);
  if (end == v || *end || x < 1 || x > (1L << 30)) {
    fprintf(stderr, "dtrain-worker %s: %s '%s': expected a whole number >= 1\n", prog, opt, v);
    return false;
  }
  *out = x;
  return true;
}
