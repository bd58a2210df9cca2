/* Push + pull round trips through running dtrain-ps servers, driven by the worker's
 * PS client as training does (one exchange at a time, waited for), for a model of one
 * flat tensor of N parameters with plain SGD.
 *
 * usage: bench_ps_roundtrip HOST:PORT[,HOST:PORT...] N ROUNDS [WORKER_ID]
 * prints: "ps_roundtrip params=N rounds=R ms=M mbps=B" where B counts the bytes of
 * both directions (2 * 4N per round), in MB/s (10^6 bytes). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtrain/config.h"
#include "dtrain/ps.h"
#include "ps_client.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s HOST:PORT[,...] NUM_PARAMS ROUNDS [WORKER_ID]\n", argv[0]);
    return 2;
  }
  long n = atol(argv[2]), rounds = atol(argv[3]);
  long worker = argc > 4 ? atol(argv[4]) : 0;
  if (n < 1 || n > (1L << 30) || rounds < 1) {
    fprintf(stderr, "bad NUM_PARAMS or ROUNDS\n");
    return 2;
  }
  dt_error_t err = {0};
  dt_config_t *cfg = dt_config_new();
  char text[4096];
  snprintf(text, sizeof text, "[ps]\nservers = %s\nworker_id = %ld\nnum_workers = %ld\n", argv[1],
           worker, worker + 1);
  dt_ps_config_t pcfg;
  if (dt_config_load_string(cfg, text, "bench", &err) || dt_ps_config_read(cfg, &pcfg, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 2;
  }
  dt_config_free(cfg);

  dt_param_info_t t = {.shape = dt_shape_1d((int)n), .count = (size_t)n, .decay = false};
  snprintf(t.name, sizeof t.name, "bench.w");
  dt_optim_config_t opt = dt_optim_defaults(DT_OPT_SGD);
  float *init = calloc((size_t)n, sizeof *init);
  if (!init) return 1;
  ps_client_opts_t o = {.cfg = &pcfg, .worker_id = (uint32_t)worker, .num_params = (uint64_t)n,
                        .tensors = &t, .ntensors = 1, .optim = &opt, .timeout_s = 60,
                        .log = dt_log_make(0, 1)};
  ps_client_t *c;
  ps_client_info_t info;
  int rc = ps_client_start(&c, &o, init, &info, &err);
  float *g = rc ? NULL : ps_client_send_buffer(c);
  for (long i = 0; g && i < n; i++) g[i] = 1e-3f * (float)((i % 7) - 3);
  /* Two untimed rounds: connections and buffers warm up. */
  double t0 = 0.0;
  for (long r = -2; rc == 0 && r < rounds; r++) {
    if (r == 0) t0 = now_s();
    int64_t clock = ps_client_clock(c) + 1;
    rc = ps_client_exchange(c, true, 1e-6f, 1, NULL, clock + 1, &err);
    if (!rc) rc = ps_client_wait(c, &err);
  }
  double secs = now_s() - t0;
  if (!rc) rc = ps_client_stop(c, &err);
  ps_client_free(c);
  free(init);
  if (rc) {
    fprintf(stderr, "bench_ps_roundtrip: %s\n", err.msg);
    return 1;
  }
  double bytes = 2.0 * 4.0 * (double)n * (double)rounds;
  printf("ps_roundtrip params=%ld rounds=%ld ms=%.3f mbps=%.1f\n", n, rounds,
         1e3 * secs / (double)rounds, bytes / secs / 1e6);
  return 0;
}
