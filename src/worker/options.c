/* Reading [train] and [sync] (see options.h). */
#include "options.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 1 MiB buckets: the per-bucket cost (a few microseconds of latency on one host) is
 * small next to the transfer, and a model of more than a few MB gets several buckets
 * whose exchange overlaps the backward of the layers before them. A model under 1 MB
 * (the MLP example: 0.9 MB) is one bucket exchanged after backward; smaller buckets
 * do not help it, since its first layer holds 85% of the gradient and finishes last
 * (bench/bench_sync.sh measures it). */
#define DEFAULT_BUCKET_MB 1.0

static const char *const sync_modes[] = {"allreduce", "ps", NULL};
/* In the order of dt_conv_impl and dt_precision. */
static const char *const conv_impls[] = {"auto", "im2col", "onednn", NULL};
static const char *const precisions[] = {"fp32", "bf16", NULL};

int run_options_read(dt_config_t *cfg, run_options_t *o, dt_error_t *err) {
  memset(o, 0, sizeof *o);
  int mode;
  long seed;
  int rc;
  if ((rc = dt_config_get_int(cfg, "train", "epochs", 10, 1, 1000000, &o->epochs, err)) ||
      (rc = dt_config_get_int(cfg, "train", "batch_size", 64, 1, 1 << 20, &o->batch_size, err)) ||
      (rc = dt_config_get_double(cfg, "train", "lr", 0.01, 0.0, 1e6, &o->lr, err)) ||
      (rc = dt_config_get_int(cfg, "train", "seed", 1, 0, (1L << 62), &seed, err)) ||
      (rc = dt_config_get_int(cfg, "train", "threads", 0, 0, 1024, &o->threads, err)) ||
      (rc = dt_config_get_choice(cfg, "train", "conv", "auto", conv_impls, &o->conv, err)) ||
      (rc = dt_config_get_choice(cfg, "train", "precision", "fp32", precisions, &o->precision,
                                 err)) ||
      (rc = dt_config_get_bool(cfg, "train", "scale_lr", false, &o->scale_lr, err)) ||
      (rc = dt_config_get_double(cfg, "train", "clipnorm", 0.0, 0.0, 1e30, &o->clipnorm, err)) ||
      (rc = dt_config_get_double(cfg, "sync", "bucket_mb", DEFAULT_BUCKET_MB, 0.0, 4096.0,
                                 &o->bucket_mb, err)) ||
      (rc = dt_config_get_choice(cfg, "sync", "allreduce", "ring", dt_allreduce_names,
                                 &o->allreduce, err)) ||
      (rc = dt_config_get_double(cfg, "sync", "timeout_s", DT_COMM_DEFAULT_TIMEOUT_S, 0.1,
                                 1e7, &o->timeout_s, err)) ||
      (rc = dt_config_get_choice(cfg, "sync", "mode", "allreduce", sync_modes, &mode, err)))
    return rc;
  o->ps = mode == 1;
  o->seed = (uint64_t)seed;
  return 0;
}

long run_options_threads(const run_options_t *o, bool launched) {
  if (o->threads > 0) return o->threads;
  if (launched) return 1;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores < 1 ? 1 : cores > 1024 ? 1024 : cores;
}
