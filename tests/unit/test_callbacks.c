/* EarlyStopping and ReduceLROnPlateau on scripted metric sequences (the epochs at which
 * Keras 3 would stop or reduce, worked out by hand from its rules), resuming from a
 * packed state, clipping by global norm against hand-computed norms, and the CSV log's
 * exact file content, fresh and appended. */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/callbacks.h"
#include "dtrain/clip.h"
#include "dtrain/rng.h"
#include "test_util.h"

static const dt_metric_mask ALL =
    DT_METRIC_BIT(DT_METRIC_LOSS) | DT_METRIC_BIT(DT_METRIC_ACCURACY) |
    DT_METRIC_BIT(DT_METRIC_VAL_LOSS) | DT_METRIC_BIT(DT_METRIC_VAL_ACCURACY);

/* Reads [early_stopping] from text; returns the read's result. */
static int es_from(const char *text, dt_metric_mask avail, dt_early_stopping_t *es,
                   dt_error_t *err) {
  dt_config_t *cfg = dt_config_new();
  int rc = dt_config_load_string(cfg, text, "cb.ini", err);
  if (!rc) rc = dt_early_stopping_read(cfg, avail, es, err);
  if (!rc) rc = dt_config_check_unused(cfg, err);
  dt_config_free(cfg);
  return rc;
}

static int rl_from(const char *text, dt_metric_mask avail, dt_reduce_lr_t *rl, dt_error_t *err) {
  dt_config_t *cfg = dt_config_new();
  int rc = dt_config_load_string(cfg, text, "cb.ini", err);
  if (!rc) rc = dt_reduce_lr_read(cfg, avail, rl, err);
  if (!rc) rc = dt_config_check_unused(cfg, err);
  dt_config_free(cfg);
  return rc;
}

/* Feeds values[0..n) as epochs 0, 1, ...; returns the epoch that stopped (-1: none) and
 * the bitmask of epochs reported as improved. */
static long es_run(dt_early_stopping_t *es, const double *values, int n, unsigned *improved) {
  *improved = 0;
  for (int e = 0; e < n; e++) {
    dt_early_stopping_decision_t d = dt_early_stopping_update(es, values[e], e);
    if (d.improved) *improved |= 1u << e;
    if (d.stop) return e;
  }
  return -1;
}

static void test_early_stopping(void) {
  dt_early_stopping_t es;
  dt_error_t err = {0};
  unsigned imp;

  /* Defaults: disabled, val_loss, min, patience 0: a disabled one never stops. */
  CHECK_INT_EQ(es_from("", ALL, &es, &err), 0);
  CHECK(!es.opt.enabled && es.opt.monitor == DT_METRIC_VAL_LOSS && !es.opt.maximize);
  CHECK_INT_EQ(es.opt.patience, 0);
  const double rising[] = {1.0, 2.0, 3.0};
  CHECK_INT_EQ(es_run(&es, rising, 3, &imp), -1);
  CHECK_INT_EQ(imp, 0);

  /* min, patience 2: epoch 1 is the best; epochs 2 and 3 do not improve -> stop at 3. */
  const char *min2 = "[early_stopping]\nenabled = true\npatience = 2\n";
  CHECK_INT_EQ(es_from(min2, ALL, &es, &err), 0);
  const double seq[] = {1.0, 0.8, 0.85, 0.9, 0.1};
  CHECK_INT_EQ(es_run(&es, seq, 5, &imp), 3);
  CHECK_INT_EQ(imp, 0x3);
  CHECK_INT_EQ(es.st.best_epoch, 1);
  CHECK_NEAR(es.st.best, 0.8, 0.0);
  CHECK_INT_EQ(es.st.stopped_epoch, 3);
  CHECK_INT_EQ(es.st.wait, 2);

  /* patience 0 (Keras' default): the first epoch that does not improve stops. */
  CHECK_INT_EQ(es_from("[early_stopping]\nenabled = true\n", ALL, &es, &err), 0);
  CHECK_INT_EQ(es_run(&es, seq, 5, &imp), 2);

  /* An equal value is no improvement (strict comparison). */
  const double flat[] = {0.5, 0.5, 0.5};
  CHECK_INT_EQ(es_from(min2, ALL, &es, &err), 0);
  CHECK_INT_EQ(es_run(&es, flat, 3, &imp), 2);
  CHECK_INT_EQ(imp, 0x1);

  /* min_delta 0.5: 0.6 is not below 1.0 - 0.5, 0.4 is; best ends at epoch 2. */
  CHECK_INT_EQ(es_from("[early_stopping]\nenabled = true\npatience = 2\nmin_delta = 0.5\n", ALL,
                       &es, &err),
               0);
  const double md[] = {1.0, 0.6, 0.4, 0.0, 0.3};
  CHECK_INT_EQ(es_run(&es, md, 5, &imp), 4);
  CHECK_INT_EQ(imp, 0x5);
  CHECK_INT_EQ(es.st.best_epoch, 2);

  /* max (auto for an accuracy): 0.6 is best at epoch 1; equal and lower values wait. */
  CHECK_INT_EQ(es_from("[early_stopping]\nenabled = yes\nmonitor = val_accuracy\npatience = 2\n",
                       ALL, &es, &err),
               0);
  CHECK(es.opt.maximize);
  const double acc[] = {0.5, 0.6, 0.6, 0.59, 0.9};
  CHECK_INT_EQ(es_run(&es, acc, 5, &imp), 3);
  CHECK_INT_EQ(imp, 0x3);
  CHECK_INT_EQ(es.st.best_epoch, 1);
  /* mode = min on the same sequence: only epoch 0 is a best; stop at epoch 2. */
  CHECK_INT_EQ(es_from("[early_stopping]\nenabled = yes\nmonitor = val_accuracy\nmode = min\n"
                       "patience = 2\n",
                       ALL, &es, &err),
               0);
  CHECK(!es.opt.maximize);
  CHECK_INT_EQ(es_run(&es, acc, 5, &imp), 2);
  /* mode = max on a loss. */
  CHECK_INT_EQ(es_from("[early_stopping]\nenabled = 1\nmonitor = loss\nmode = max\n", ALL, &es,
                       &err),
               0);
  CHECK(es.opt.maximize && es.opt.monitor == DT_METRIC_LOSS);
  CHECK_INT_EQ(es_run(&es, rising, 3, &imp), -1);
  CHECK_INT_EQ(imp, 0x7);

  /* baseline 0.5: improvements that stay above it do not restart the wait, so the
   * run stops at epoch 1 although epoch 0 was a best... */
  const char *base = "[early_stopping]\nenabled = true\npatience = 2\nbaseline = 0.5\n";
  CHECK_INT_EQ(es_from(base, ALL, &es, &err), 0);
  const double nb[] = {0.9, 0.95, 0.97};
  CHECK_INT_EQ(es_run(&es, nb, 3, &imp), 1);
  CHECK_INT_EQ(imp, 0x1);
  /* ... (without the baseline it stops at 2) ... */
  CHECK_INT_EQ(es_from(min2, ALL, &es, &err), 0);
  CHECK_INT_EQ(es_run(&es, nb, 3, &imp), 2);
  /* ... improving epochs never stop, even with the wait at patience ... */
  CHECK_INT_EQ(es_from(base, ALL, &es, &err), 0);
  const double slow[] = {0.9, 0.8, 0.7, 0.75};
  CHECK_INT_EQ(es_run(&es, slow, 4, &imp), 3);
  CHECK_INT_EQ(imp, 0x7);
  CHECK_INT_EQ(es.st.wait, 4);
  /* ... and beating it restarts the wait. */
  CHECK_INT_EQ(es_from(base, ALL, &es, &err), 0);
  const double beat[] = {0.9, 0.4, 0.45, 0.5, 0.1};
  CHECK_INT_EQ(es_run(&es, beat, 5, &imp), 3);
  CHECK_INT_EQ(es.st.best_epoch, 1);

  /* start_from_epoch 2: epochs 0 and 1 are not looked at (their 0.1, 0.2 would make
   * the run stop at epoch 2). */
  CHECK_INT_EQ(es_from("[early_stopping]\nenabled = true\npatience = 2\nstart_from_epoch = 2\n"
                       "restore_best_weights = true\n",
                       ALL, &es, &err),
               0);
  CHECK(es.opt.restore_best_weights);
  const double late[] = {0.1, 0.2, 1.0, 1.1, 1.2, 0.0};
  CHECK_INT_EQ(es_run(&es, late, 6, &imp), 4);
  CHECK_INT_EQ(imp, 0x4);
  CHECK_INT_EQ(es.st.best_epoch, 2);
  CHECK_INT_EQ(es_from(min2, ALL, &es, &err), 0);
  CHECK_INT_EQ(es_run(&es, late, 6, &imp), 2);

  /* A missing value (NaN) changes nothing. */
  CHECK_INT_EQ(es_from(min2, ALL, &es, &err), 0);
  const double gaps[] = {1.0, NAN, NAN, NAN, 1.5, 1.6};
  CHECK_INT_EQ(es_run(&es, gaps, 6, &imp), 5);

  /* Resuming from a packed state after epoch 2 decides as the run without a break. */
  CHECK_INT_EQ(es_from(min2, ALL, &es, &err), 0);
  for (int e = 0; e < 3; e++) dt_early_stopping_update(&es, seq[e], e);
  double packed[DT_EARLY_STOPPING_STATE_DOUBLES];
  dt_early_stopping_pack(&es.st, packed);
  dt_early_stopping_t resumed;
  CHECK_INT_EQ(es_from(min2, ALL, &resumed, &err), 0);
  CHECK_INT_EQ(dt_early_stopping_unpack(packed, &resumed.st, "ckpt", &err), 0);
  CHECK(memcmp(&resumed.st, &es.st, sizeof es.st) == 0);
  dt_early_stopping_decision_t d = dt_early_stopping_update(&resumed, seq[3], 3);
  CHECK(d.stop && !d.improved);
  packed[3] = 1.5;
  CHECK_INT_EQ(dt_early_stopping_unpack(packed, &resumed.st, "ckpt/info.json", &err),
               DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "ckpt/info.json");
  packed[3] = 1.0;
  packed[1] = INFINITY;
  CHECK_INT_EQ(dt_early_stopping_unpack(packed, &resumed.st, "x", &err), DT_ERR_FORMAT);

  /* Config errors name the place. */
  CHECK_INT_EQ(es_from("[early_stopping]\nenabled = true\n", DT_METRIC_BIT(DT_METRIC_LOSS), &es,
                       &err),
               DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "[early_stopping] monitor = val_loss");
  CHECK_STR_CONTAINS(err.msg, "validation_split");
  CHECK_INT_EQ(es_from("[early_stopping]\nenabled = true\nmonitor = accuracy\n",
                       DT_METRIC_BIT(DT_METRIC_LOSS) | DT_METRIC_BIT(DT_METRIC_VAL_LOSS), &es,
                       &err),
               DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "cb.ini:3");
  CHECK_STR_CONTAINS(err.msg, "classification loss");
  /* Disabled: the monitor need not exist. */
  CHECK_INT_EQ(es_from("[early_stopping]\nenabled = false\nmonitor = val_accuracy\n", 0, &es, &err),
               0);
  CHECK_INT_EQ(es_from("[early_stopping]\nmode = up\n", ALL, &es, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "cb.ini:2");
  CHECK_INT_EQ(es_from("[early_stopping]\nmin_delta = -0.1\n", ALL, &es, &err), DT_ERR_CONFIG);
  CHECK_INT_EQ(es_from("[early_stopping]\npatient = 3\n", ALL, &es, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "patient");
}

/* Feeds values as epochs 0, 1, ... with a constant schedule lr of `base`; records
 * which epochs reduced and the lr after each epoch. */
static unsigned rl_run(dt_reduce_lr_t *rl, const double *values, int n, double base,
                       double *lr_after) {
  unsigned reduced_at = 0;
  for (int e = 0; e < n; e++) {
    bool reduced;
    double before = dt_reduce_lr_apply(rl, base);
    dt_reduce_lr_update(rl, values[e], before, &reduced);
    if (reduced) reduced_at |= 1u << e;
    lr_after[e] = dt_reduce_lr_apply(rl, base);
  }
  return reduced_at;
}

static void test_reduce_lr(void) {
  dt_reduce_lr_t rl;
  dt_error_t err = {0};
  double lr[16];
  double plateau[12];
  for (int i = 0; i < 12; i++) plateau[i] = 1.0;

  /* Defaults as Keras: factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0. */
  CHECK_INT_EQ(rl_from("[reduce_lr]\nenabled = true\n", ALL, &rl, &err), 0);
  CHECK_NEAR(rl.opt.factor, 0.1, 0.0);
  CHECK_INT_EQ(rl.opt.patience, 10);
  CHECK_NEAR(rl.opt.min_delta, 1e-4, 0.0);
  CHECK_INT_EQ(rl.opt.cooldown, 0);
  CHECK_NEAR(rl.opt.min_lr, 0.0, 0.0);
  /* A plateau of 12 epochs: epochs 1..10 wait, the 10th reduces (epoch 10). */
  CHECK_INT_EQ(rl_run(&rl, plateau, 12, 0.01, lr), 1u << 10);
  CHECK_NEAR(lr[9], 0.01, 0.0);
  CHECK_NEAR(lr[10], 0.001, 1e-15);

  /* patience 2, factor 0.5, min_lr 0.1, no cooldown, lr 1: reductions at epochs 2, 4, 6
   * and 8 to 0.5, 0.25, 0.125, then 0.1 (the floor); at the floor no more. */
  const char *p2 = "[reduce_lr]\nenabled = true\npatience = 2\nfactor = 0.5\nmin_lr = 0.1\n"
                   "min_delta = 0\n";
  CHECK_INT_EQ(rl_from(p2, ALL, &rl, &err), 0);
  CHECK_INT_EQ(rl_run(&rl, plateau, 12, 1.0, lr), (1u << 2) | (1u << 4) | (1u << 6) | (1u << 8));
  CHECK_NEAR(lr[1], 1.0, 0.0);
  CHECK_NEAR(lr[2], 0.5, 0.0);
  CHECK_NEAR(lr[4], 0.25, 0.0);
  CHECK_NEAR(lr[6], 0.125, 0.0);
  CHECK_NEAR(lr[8], 0.1, 0.0);
  CHECK_NEAR(lr[11], 0.1, 0.0);
  CHECK_INT_EQ(rl.st.reductions, 4);
  CHECK_NEAR(rl.st.scale, 0.0625, 0.0);

  /* cooldown 2: after the reduction at epoch 2, epochs 3 and 4 cool down (epoch 4 counts
   * down to 0 and then waits 1), epoch 5 reduces; then 8, 11. */
  const char *cd = "[reduce_lr]\nenabled = true\npatience = 2\nfactor = 0.5\ncooldown = 2\n";
  CHECK_INT_EQ(rl_from(cd, ALL, &rl, &err), 0);
  CHECK_INT_EQ(rl_run(&rl, plateau, 12, 1.0, lr), (1u << 2) | (1u << 5) | (1u << 8) | (1u << 11));
  CHECK_NEAR(lr[11], 0.0625, 0.0);

  /* An improvement resets the wait: 1, 1, 0.5 (better), 0.5, 0.5 -> reduce at 4. */
  CHECK_INT_EQ(rl_from(p2, ALL, &rl, &err), 0);
  const double imp[] = {1.0, 1.0, 0.5, 0.5, 0.5, 0.5};
  CHECK_INT_EQ(rl_run(&rl, imp, 6, 1.0, lr), 1u << 4);
  /* min_delta 0.6: 0.5 is not 0.6 below 1, so it reduces at 2 as on a plateau. */
  CHECK_INT_EQ(rl_from("[reduce_lr]\nenabled = true\npatience = 2\nmin_delta = 0.6\n", ALL, &rl,
                       &err),
               0);
  CHECK_INT_EQ(rl_run(&rl, imp, 6, 1.0, lr), (1u << 2) | (1u << 4));
  /* max mode for an accuracy: rising values never reduce. */
  CHECK_INT_EQ(rl_from("[reduce_lr]\nenabled = true\nmonitor = accuracy\npatience = 1\n", ALL, &rl,
                       &err),
               0);
  CHECK(rl.opt.maximize);
  const double up[] = {0.1, 0.2, 0.3, 0.4};
  CHECK_INT_EQ(rl_run(&rl, up, 4, 1.0, lr), 0);
  CHECK_NEAR(lr[3], 1.0, 0.0);

  /* The floor compares in float: a float lr of 0.001 counts as at min_lr = 0.001. */
  CHECK_INT_EQ(rl_from("[reduce_lr]\nenabled = true\npatience = 1\nmin_lr = 0.001\n", ALL, &rl,
                       &err),
               0);
  bool reduced;
  dt_reduce_lr_update(&rl, 1.0, 0.01, &reduced);
  dt_reduce_lr_update(&rl, 1.0, (double)0.001f, &reduced);
  CHECK(!reduced);
  CHECK_NEAR(rl.st.scale, 1.0, 0.0);

  /* Applied on top of a schedule: never below min_lr, never above the schedule. */
  rl.st.scale = 0.5;
  CHECK_NEAR(dt_reduce_lr_apply(&rl, 1.0), 0.5, 0.0);
  CHECK_NEAR(dt_reduce_lr_apply(&rl, 0.0015), 0.001, 0.0);
  CHECK_NEAR(dt_reduce_lr_apply(&rl, 0.0005), 0.0005, 0.0);
  /* Disabled: the schedule's lr as it is. */
  CHECK_INT_EQ(rl_from("[reduce_lr]\nenabled = false\n", 0, &rl, &err), 0);
  CHECK_INT_EQ(rl_run(&rl, plateau, 12, 0.3, lr), 0);
  CHECK_NEAR(lr[11], 0.3, 0.0);

  /* Resume after epoch 4 of the cooldown run from its packed state. */
  CHECK_INT_EQ(rl_from(cd, ALL, &rl, &err), 0);
  unsigned before = rl_run(&rl, plateau, 5, 1.0, lr);
  double packed[DT_REDUCE_LR_STATE_DOUBLES];
  dt_reduce_lr_pack(&rl.st, packed);
  dt_reduce_lr_t resumed;
  CHECK_INT_EQ(rl_from(cd, ALL, &resumed, &err), 0);
  CHECK_INT_EQ(dt_reduce_lr_unpack(packed, &resumed.st, "ckpt", &err), 0);
  CHECK(memcmp(&resumed.st, &rl.st, sizeof rl.st) == 0);
  unsigned after = rl_run(&resumed, plateau, 7, 1.0, lr);
  /* Epochs 5..11 of the uninterrupted run are epochs 0..6 here: 5, 8, 11 -> 0, 3, 6. */
  CHECK_INT_EQ(before, 1u << 2);
  CHECK_INT_EQ(after, (1u << 0) | (1u << 3) | (1u << 6));
  packed[4] = 2.0;
  CHECK_INT_EQ(dt_reduce_lr_unpack(packed, &resumed.st, "ckpt", &err), DT_ERR_FORMAT);

  /* Config errors. */
  CHECK_INT_EQ(rl_from("[reduce_lr]\nenabled = true\nfactor = 1\n", ALL, &rl, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "cb.ini:3");
  CHECK_STR_CONTAINS(err.msg, "factor");
  CHECK_INT_EQ(rl_from("[reduce_lr]\nenabled = true\nmonitor = val_accuracy\n",
                       DT_METRIC_BIT(DT_METRIC_LOSS) | DT_METRIC_BIT(DT_METRIC_ACCURACY), &rl,
                       &err),
               DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "val_accuracy");
}

static void test_clip(void) {
  /* (3, 4) has norm 5: clipped to 1 it is (0.6, 0.8). */
  float g[2] = {3.0f, 4.0f};
  CHECK_NEAR(dt_clip_by_global_norm(g, 2, 10.0f), 5.0, 0.0);
  CHECK(g[0] == 3.0f && g[1] == 4.0f);
  CHECK_NEAR(dt_clip_by_global_norm(g, 2, 5.0f), 5.0, 0.0); /* at the limit: unchanged */
  CHECK(g[0] == 3.0f && g[1] == 4.0f);
  CHECK_NEAR(dt_clip_by_global_norm(g, 2, 1.0f), 5.0, 0.0);
  CHECK_NEAR(g[0], 0.6, 1e-7);
  CHECK_NEAR(g[1], 0.8, 1e-7);
  /* max_norm 0: off; the norm is still returned. Empty vector: 0. */
  float h[3] = {1.0f, 2.0f, 2.0f};
  CHECK_NEAR(dt_clip_by_global_norm(h, 3, 0.0f), 3.0, 0.0);
  CHECK(h[2] == 2.0f);
  CHECK_NEAR(dt_clip_by_global_norm(h, 0, 1.0f), 0.0, 0.0);
  /* 17 values (one whole block of 16 and a tail) of 1, 2, ..., 17:
   * sum of squares 17 * 18 * 35 / 6 = 1785. */
  float v[17];
  for (int i = 0; i < 17; i++) v[i] = (float)(i + 1);
  CHECK_NEAR(dt_clip_by_global_norm(v, 17, 100.0f), sqrt(1785.0), 1e-12);

  /* A long vector of mixed magnitudes: the norm against a long double sum, the clipped
   * vector's norm equals max_norm, and each entry keeps its direction. */
  const size_t n = 1000003;
  float *x = malloc(n * sizeof *x), *orig = malloc(n * sizeof *orig);
  dt_rng_t rng;
  dt_rng_seed(&rng, 5);
  long double ref = 0.0L;
  for (size_t i = 0; i < n; i++) {
    x[i] = (dt_rng_uniform(&rng) - 0.5f) * (i % 7 == 0 ? 100.0f : 0.01f);
    orig[i] = x[i];
    ref += (long double)x[i] * x[i];
  }
  double norm = dt_clip_by_global_norm(x, n, 2.5f);
  CHECK_NEAR(norm, (double)sqrtl(ref), 1e-12 * norm);
  long double after = 0.0L;
  double worst = 0.0;
  const double f = 2.5 / norm;
  for (size_t i = 0; i < n; i++) {
    after += (long double)x[i] * x[i];
    worst = fmax(worst, fabs(x[i] - orig[i] * f) / fmax(fabs(orig[i] * f), 1e-30));
  }
  CHECK_NEAR((double)sqrtl(after), 2.5, 2.5e-6);
  CHECK_NEAR(worst, 0.0, 1.3e-7); /* rounding f to float, and x * f: 2^-24 each */
  /* Clipping again changes nothing measurable: the norm is now 2.5. */
  CHECK_NEAR(dt_clip_by_global_norm(x, n, 2.5f), 2.5, 2.5e-6);
  /* Non-finite gradients are reported, not scaled. */
  x[7] = INFINITY;
  memcpy(orig, x, n * sizeof *x);
  CHECK(isinf(dt_clip_by_global_norm(x, n, 1.0f)));
  CHECK(memcmp(orig, x, n * sizeof *x) == 0);
  x[7] = NAN;
  CHECK(isnan(dt_clip_by_global_norm(x, n, 1.0f)));
  CHECK(x[8] == orig[8]);
  free(x);
  free(orig);
}

/* The whole file as a string (static buffer). */
static const char *slurp(const char *path) {
  static char buf[4096];
  FILE *f = fopen(path, "rb");
  if (!f) return "(missing)";
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
}

#define CHECK_FILE(path, expected)                                                     \
  do {                                                                                 \
    const char *got_ = slurp(path);                                                    \
    if (strcmp(got_, expected) == 0) {                                                 \
      test_passed_count++;                                                             \
    } else {                                                                           \
      test_failed_count++;                                                             \
      fprintf(stderr, "%s:%d: %s holds\n%s\nexpected\n%s\n", __FILE__, __LINE__, path, \
              got_, expected);                                                         \
    }                                                                                  \
  } while (0)

static void test_csv(void) {
  char dir[] = "/tmp/dt_test_csv_XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(!"mkdtemp");
    return;
  }
  char path[128], other[128];
  snprintf(path, sizeof path, "%s/log.csv", dir);
  snprintf(other, sizeof other, "%s/reg.csv", dir);
  dt_error_t err = {0};
  dt_csv_log_t log;

  /* A classification run with validation: all columns. */
  CHECK_INT_EQ(dt_csv_log_open(&log, path, false, LONG_MAX, ALL, &err), 0);
  CHECK_FILE(path, "epoch,loss,accuracy,val_loss,val_accuracy,lr\n"); /* header flushed */
  dt_epoch_metrics_t m = {{0.5, 0.875, 0.625, 0.75}};
  CHECK_INT_EQ(dt_csv_log_row(&log, 1, &m, 0.01, &err), 0);
  /* Each row is flushed at once: the file is complete while the log is open. */
  CHECK_FILE(path, "epoch,loss,accuracy,val_loss,val_accuracy,lr\n1,0.5,0.875,0.625,0.75,0.01\n");
  m = (dt_epoch_metrics_t){{0.25, 0.9375, NAN, 0.8125}};
  CHECK_INT_EQ(dt_csv_log_row(&log, 2, &m, (double)0.001f, &err), 0);
  CHECK_INT_EQ(dt_csv_log_close(&log, &err), 0);
  const char *two_rows = "epoch,loss,accuracy,val_loss,val_accuracy,lr\n"
                         "1,0.5,0.875,0.625,0.75,0.01\n"
                         "2,0.25,0.9375,nan,0.8125,0.00100000005\n";
  CHECK_FILE(path, two_rows);
  CHECK_INT_EQ(dt_csv_log_close(&log, &err), 0); /* closing twice is harmless */

  /* Append (resumed run, nothing to drop): no second header. */
  CHECK_INT_EQ(dt_csv_log_open(&log, path, true, 2, ALL, &err), 0);
  m = (dt_epoch_metrics_t){{0.125, 1.0, 0.5, 1.0}};
  CHECK_INT_EQ(dt_csv_log_row(&log, 3, &m, 0.01, &err), 0);
  CHECK_INT_EQ(dt_csv_log_close(&log, &err), 0);
  char three_rows[512];
  snprintf(three_rows, sizeof three_rows, "%s3,0.125,1,0.5,1,0.01\n", two_rows);
  CHECK_FILE(path, three_rows);

  /* A run resumed from the checkpoint of epoch 1, after rows 2 and 3 and half a row
   * were written: those go, the run writes epoch 2 again. */
  FILE *f = fopen(path, "ab");
  fputs("4,0.1", f);
  fclose(f);
  CHECK_INT_EQ(dt_csv_log_open(&log, path, true, 1, ALL, &err), 0);
  CHECK_FILE(path, "epoch,loss,accuracy,val_loss,val_accuracy,lr\n1,0.5,0.875,0.625,0.75,0.01\n");
  m = (dt_epoch_metrics_t){{0.2, 0.5, 0.3, 0.5}};
  CHECK_INT_EQ(dt_csv_log_row(&log, 2, &m, 0.02, &err), 0);
  CHECK_INT_EQ(dt_csv_log_close(&log, &err), 0);
  CHECK_FILE(path, "epoch,loss,accuracy,val_loss,val_accuracy,lr\n"
                   "1,0.5,0.875,0.625,0.75,0.01\n2,0.2,0.5,0.3,0.5,0.02\n");

  /* A regression run without validation: epoch, loss, lr; append to a missing file and to
   * an empty one writes the header. */
  const dt_metric_mask loss_only = DT_METRIC_BIT(DT_METRIC_LOSS);
  CHECK_INT_EQ(dt_csv_log_open(&log, other, true, LONG_MAX, loss_only, &err), 0);
  m = (dt_epoch_metrics_t){{0.0625, NAN, NAN, NAN}};
  CHECK_INT_EQ(dt_csv_log_row(&log, 1, &m, 0.5, &err), 0);
  CHECK_INT_EQ(dt_csv_log_close(&log, &err), 0);
  CHECK_FILE(other, "epoch,loss,lr\n1,0.0625,0.5\n");
  write_file(other, "");
  CHECK_INT_EQ(dt_csv_log_open(&log, other, true, LONG_MAX, loss_only, &err), 0);
  CHECK_INT_EQ(dt_csv_log_close(&log, &err), 0);
  CHECK_FILE(other, "epoch,loss,lr\n");

  /* Appending with other columns is refused and leaves the file alone. */
  CHECK_INT_EQ(dt_csv_log_open(&log, path, true, LONG_MAX, loss_only, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, path);
  CHECK_STR_CONTAINS(err.msg, "epoch,loss,lr");
  CHECK(log.f == NULL);
  CHECK_FILE(path, "epoch,loss,accuracy,val_loss,val_accuracy,lr\n"
                   "1,0.5,0.875,0.625,0.75,0.01\n2,0.2,0.5,0.3,0.5,0.02\n");
  /* A row that is not a row. */
  write_file(other, "epoch,loss,lr\n1,0.5,0.1\nhello\n");
  CHECK_INT_EQ(dt_csv_log_open(&log, other, true, LONG_MAX, loss_only, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "reg.csv:3");
  /* Without append the file is replaced. */
  CHECK_INT_EQ(dt_csv_log_open(&log, path, false, LONG_MAX, loss_only, &err), 0);
  CHECK_INT_EQ(dt_csv_log_close(&log, &err), 0);
  CHECK_FILE(path, "epoch,loss,lr\n");

  /* A folder that does not exist. */
  char bad[160];
  snprintf(bad, sizeof bad, "%s/no/such/dir/log.csv", dir);
  CHECK_INT_EQ(dt_csv_log_open(&log, bad, false, LONG_MAX, ALL, &err), DT_ERR_IO);
  CHECK_STR_CONTAINS(err.msg, bad);
  CHECK_INT_EQ(dt_csv_log_row(&log, 1, &m, 0.1, &err), DT_ERR_STATE);

  /* [csv_log] keys. */
  dt_config_t *cfg = dt_config_new();
  dt_csv_log_opts_t o;
  CHECK_INT_EQ(dt_config_load_string(cfg, "[csv_log]\nfile = out/log.csv\nappend = true\n", "c",
                                     &err),
               0);
  CHECK_INT_EQ(dt_csv_log_read(cfg, &o, &err), 0);
  CHECK(strcmp(o.path, "out/log.csv") == 0 && o.append);
  dt_config_free(cfg);
  cfg = dt_config_new();
  CHECK_INT_EQ(dt_csv_log_read(cfg, &o, &err), 0);
  CHECK(o.path[0] == '\0' && !o.append);
  dt_config_free(cfg);

  unlink(path);
  unlink(other);
  rmdir(dir);
}

int main(void) {
  test_early_stopping();
  test_reduce_lr();
  test_clip();
  test_csv();
  return test_summary("test_callbacks");
}
