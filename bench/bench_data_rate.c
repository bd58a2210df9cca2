/* Input pipeline throughput: loads a dataset in one of dtrain's formats, then runs the
 * batch loader (dtrain/loader.h) over shuffled batches for a few seconds with nothing
 * else to do, and prints the samples it prepared per second. With --threads 0 the
 * caller's thread gathers each batch itself, which is the rate of one thread; with 1 a
 * background thread does it while the caller only waits, as in training.
 *
 * Also prints the one-time cost of loading: seconds to open and check the files (a
 * CSV's parse, an image folder's header reads, an IDX file's inflate), as samples/s.
 * The scaling is the worker's default for the format (1/255 for images and 8-bit
 * values, none otherwise), so gathering does what training would do.
 *
 * usage: bench_data_rate [options] csv FILE TARGETCOL
 *                                   npy X.npy Y.npy
 *                                   images DIR
 *                                   idx IMAGES LABELS
 * options: --threads LIST (comma-separated, default 0,1), --seconds S (default 3),
 *          --batch B (default 64), --flip (horizontal), --crop-padding P,
 *          --translate F, --brightness F, --contrast F
 * prints:  load format=F samples=N seconds=S samples_per_s=R
 *          gather threads=T batch=B samples=N seconds=S cpu_s=C samples_per_s=R
 *                 samples_per_cpu_s=P
 * (C: the process's CPU time over those S seconds, all threads; P = N / C.)
 * Exit status 1 with the library's message when loading or gathering fails, 2 on a
 * bad command line. */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtrain/augment.h"
#include "dtrain/csv.h"
#include "dtrain/data.h"
#include "dtrain/idx.h"
#include "dtrain/images.h"
#include "dtrain/loader.h"
#include "dtrain/numpy.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process (every thread), so that a busy shared machine, which
 * stretches wall time, can be told apart from a slow pipeline. */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--threads 0,1] [--seconds S] [--batch B] [--flip] [--crop-padding P]\n"
          "       [--translate F] [--brightness F] [--contrast F]\n"
          "       csv FILE TARGETCOL | npy X.npy Y.npy | images DIR | idx IMAGES LABELS\n",
          prog);
  return 2;
}

/* Loads the dataset the command line names (argv[0] is the format). */
static int load(int argc, char **argv, dt_dataset_t *ds, dt_error_t *err) {
  const char *fmt = argv[0];
  int rc;
  if (!strcmp(fmt, "csv") && argc == 3) {
    dt_csv_opts_t o = {.targets = argv[2], .features = NULL};
    if ((rc = dt_csv_load(argv[1], &o, ds, err))) return rc;
    return dt_dataset_targets_as_classes(ds, err);
  }
  if (!strcmp(fmt, "npy") && argc == 3) {
    dt_dataset_t y;
    if ((rc = dt_numpy_load(argv[1], ds, err))) return rc;
    if ((rc = dt_numpy_load(argv[2], &y, err)) || (rc = dt_dataset_join_targets(ds, &y, err)) ||
        (rc = dt_dataset_targets_as_classes(ds, err)))
      dt_dataset_free(ds);
    return rc;
  }
  if (!strcmp(fmt, "images") && argc == 2) {
    dt_images_opts_t o = {0};
    return dt_images_load(argv[1], &o, ds, err);
  }
  if (!strcmp(fmt, "idx") && argc == 3) return dt_idx_load_pair(ds, argv[1], argv[2], true, err);
  return dt_error_set(err, DT_ERR_ARG, "unknown format '%s' or wrong number of paths", fmt);
}

/* Runs the loader with `threads` threads for about `seconds` after a short warm-up
 * (first page faults, thread start) and returns samples/s, or a negative error. */
static double run(const dt_dataset_t *ds, const dt_scaling_t *sc, const dt_augment_t *aug,
                  int threads, size_t batch, double seconds, size_t *samples_out,
                  double *elapsed_out, double *cpu_out, dt_error_t *err) {
  dt_loader_opts_t o = {.ds = ds, .scaling = sc, .augment = aug,
                        .value_range = sc->kind == DT_SCALE_1_255 ? 1.0f : 255.0f,
                        .seed = 1, .threads = threads, .capacity = batch,
                        .want_labels = ds->ykind == DT_Y_CLASSES,
                        .want_values = ds->ykind == DT_Y_VALUES};
  dt_loader_t *l;
  int rc = dt_loader_create(&l, &o, err);
  if (rc) return rc;
  uint32_t *perm = malloc(ds->n * sizeof *perm);
  if (!perm) {
    dt_loader_destroy(l);
    return dt_error_set(err, DT_ERR_NOMEM, "no memory for a permutation of %zu", ds->n);
  }
  size_t per_epoch = dt_batches_per_epoch(ds->n, batch, 1);
  uint64_t epoch = 0;
  size_t k = 0, done = 0;
  dt_epoch_permutation(1, epoch, perm, ds->n);
  /* Keeps one batch ahead, as the training loop does. */
  dt_loader_submit(l, dt_shard_batch(perm, 0, batch, 0, 1), batch, epoch);
  double warm_until = now_s() + 0.3 * seconds, t0 = 0, c0 = 0, stop = 0;
  bool timing = false;
  for (;;) {
    const float *x;
    const int32_t *labels;
    const float *values;
    if ((rc = dt_loader_wait(l, &x, &labels, &values, NULL, err))) break;
    double t = now_s();
    if (timing) {
      done += batch;
      if (t >= stop) break;
    } else if (t >= warm_until) {
      timing = true;
      t0 = t;
      c0 = cpu_s();
      stop = t + seconds;
    }
    /* The next batch; a new permutation when an epoch is through. */
    if (++k == per_epoch) {
      k = 0;
      dt_epoch_permutation(1, ++epoch, perm, ds->n);
    }
    dt_loader_submit(l, dt_shard_batch(perm, k, batch, 0, 1), batch, epoch);
  }
  double elapsed = now_s() - t0, cpu = cpu_s() - c0;
  dt_loader_destroy(l);
  free(perm);
  if (rc) return rc;
  *samples_out = done;
  *elapsed_out = elapsed;
  *cpu_out = cpu;
  return (double)done / elapsed;
}

int main(int argc, char **argv) {
  const char *thread_list = "0,1";
  double seconds = 3;
  long batch = 64;
  dt_augment_t aug = {0};
  int i = 1;
  for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (!strcmp(a, "--flip")) aug.flip_horizontal = true;
    else if (!strcmp(a, "--threads") && has_value) thread_list = argv[++i];
    else if (!strcmp(a, "--seconds") && has_value) seconds = atof(argv[++i]);
    else if (!strcmp(a, "--batch") && has_value) batch = atol(argv[++i]);
    else if (!strcmp(a, "--crop-padding") && has_value) aug.crop_padding = atoi(argv[++i]);
    else if (!strcmp(a, "--translate") && has_value) aug.translate = atof(argv[++i]);
    else if (!strcmp(a, "--brightness") && has_value) aug.brightness = atof(argv[++i]);
    else if (!strcmp(a, "--contrast") && has_value) aug.contrast = atof(argv[++i]);
    else return usage(argv[0]);
  }
  if (i >= argc || seconds <= 0 || batch < 1 || batch > 65536) return usage(argv[0]);
  int paths = argc - i - 1;
  const char *f = argv[i];
  if (!((!strcmp(f, "images") && paths == 1) ||
        ((!strcmp(f, "csv") || !strcmp(f, "npy") || !strcmp(f, "idx")) && paths == 2)))
    return usage(argv[0]);

  dt_error_t err = {0};
  dt_dataset_t ds;
  memset(&ds, 0, sizeof ds);
  double t0 = now_s();
  if (load(argc - i, argv + i, &ds, &err)) {
    fprintf(stderr, "bench_data_rate: %s\n", err.msg);
    return 1;
  }
  double load_s = now_s() - t0;
  printf("load format=%s samples=%zu seconds=%.3f samples_per_s=%.0f\n", argv[i], ds.n, load_s,
         (double)ds.n / load_s);
  if (ds.n < (size_t)batch) {
    fprintf(stderr, "bench_data_rate: %zu samples, fewer than a batch of %ld\n", ds.n, batch);
    dt_dataset_free(&ds);
    return 1;
  }
  /* The worker's default scaling: pixels and bytes by 1/255, everything else as it is. */
  dt_scaling_t sc = {.kind = (!ds.x.base || ds.x.type == DT_U8) ? DT_SCALE_1_255 : DT_SCALE_NONE};

  int rc = 0;
  char *list = strdup(thread_list);
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && !rc;
       tok = strtok_r(NULL, ",", &save)) {
    int threads = atoi(tok);
    size_t samples = 0;
    double elapsed = 0, cpu = 0;
    double rate =
        run(&ds, &sc, &aug, threads, (size_t)batch, seconds, &samples, &elapsed, &cpu, &err);
    if (rate < 0) {
      fprintf(stderr, "bench_data_rate: %s\n", err.msg);
      rc = 1;
      break;
    }
    printf("gather threads=%d batch=%ld samples=%zu seconds=%.3f cpu_s=%.3f samples_per_s=%.0f "
           "samples_per_cpu_s=%.0f\n",
           threads, batch, samples, elapsed, cpu, rate, (double)samples / cpu);
    fflush(stdout);
  }
  free(list);
  dt_dataset_free(&ds);
  return rc;
}
