/* Keras-style training callbacks as pure per-epoch state machines: early stopping,
 * reducing the learning rate on a plateau, and a CSV log of the epoch metrics.
 *
 * Each callback is a settings part, read from its config section, and a state part: a
 * plain struct of numbers (doubles and int64s, all finite) that is the whole memory
 * of the callback, so a checkpoint that saves it and a resume that restores it make
 * the resumed run decide exactly as the uninterrupted one. The _pack/_unpack helpers
 * turn a state into a fixed number of doubles for the checkpoint.
 *
 * The trainer calls the update functions once per epoch, after the epoch's metrics have
 * been reduced across ranks, so that every rank takes the same decision. */
#ifndef DTRAIN_CALLBACKS_H
#define DTRAIN_CALLBACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dtrain/config.h"
#include "dtrain/error.h"

/* The epoch metrics a callback can monitor or log. */
typedef enum {
  DT_METRIC_LOSS,
  DT_METRIC_ACCURACY,
  DT_METRIC_VAL_LOSS,
  DT_METRIC_VAL_ACCURACY,
  DT_METRIC_COUNT
} dt_metric_kind;

/* "loss", "accuracy", "val_loss", "val_accuracy"; NULL-terminated. */
extern const char *const dt_metric_names[];

/* Bit (1u << kind) set for each metric a run produces: accuracy needs a classification
 * loss, val_* a validation split. */
typedef unsigned dt_metric_mask;
#define DT_METRIC_BIT(kind) (1u << (kind))

/* One epoch's metrics; NAN where the run has none. */
typedef struct {
  double v[DT_METRIC_COUNT];
} dt_epoch_metrics_t;

/* ---- EarlyStopping ---- */

typedef struct {
  bool enabled;
  dt_metric_kind monitor;
  bool maximize;              /* mode: max, or auto with an accuracy */
  double min_delta;           /* >= 0: an improvement must beat the best by more */
  long patience;              /* epochs without improvement before stopping */
  bool has_baseline;
  double baseline;
  bool restore_best_weights;
  long start_from_epoch;      /* epochs (0-based) before this one are not looked at */
} dt_early_stopping_opts_t;

typedef struct {
  int64_t has_best;   /* 0 until the first epoch that is looked at */
  double best;        /* the best monitored value so far (valid if has_best) */
  int64_t best_epoch; /* its 0-based epoch, -1 before */
  int64_t wait;       /* epochs since the last improvement that also beat the baseline */
  int64_t stopped_epoch; /* the 0-based epoch that decided to stop, -1 while running */
} dt_early_stopping_state_t;

enum { DT_EARLY_STOPPING_STATE_DOUBLES = 5 };

typedef struct {
  dt_early_stopping_opts_t opt;
  dt_early_stopping_state_t st;
} dt_early_stopping_t;

typedef struct {
  bool improved; /* new best: with restore_best_weights the trainer copies the weights now */
  bool stop;     /* end training after this epoch */
} dt_early_stopping_decision_t;

/* Reads [early_stopping] (every key, also when disabled, so typos are reported) and
 * starts the state. If enabled, a monitor the run does not produce (not in available)
 * is an error naming the key. */
int dt_early_stopping_read(dt_config_t *cfg, dt_metric_mask available, dt_early_stopping_t *es,
                           dt_error_t *err);

/* Back to the state before the first epoch. */
void dt_early_stopping_reset(dt_early_stopping_t *es);

/* Keras' EarlyStopping.on_epoch_end for the monitored value of 0-based `epoch`:
 *  - nothing happens if disabled, value is NaN (Keras: the metric is missing) or
 *    epoch < start_from_epoch;
 *  - wait += 1; an improvement (min: value < best - min_delta, max: value > best +
 *    min_delta; the first value looked at always is one) makes value the best and
 *    resets wait to 0 if there is no baseline or value also improves on the baseline;
 *  - otherwise stop once wait >= patience (and epoch > 0).
 * With restore_best_weights the trainer keeps a copy of the weights (and model state)
 * whenever `improved` is set, and puts it back when training ends, stopped early or not
 * (Keras 3), if any epoch improved. */
dt_early_stopping_decision_t dt_early_stopping_update(dt_early_stopping_t *es, double value,
                                                      long epoch);

void dt_early_stopping_pack(const dt_early_stopping_state_t *st,
                            double out[DT_EARLY_STOPPING_STATE_DOUBLES]);
/* DT_ERR_FORMAT (naming `what`) if the numbers cannot be a state. */
int dt_early_stopping_unpack(const double in[DT_EARLY_STOPPING_STATE_DOUBLES],
                             dt_early_stopping_state_t *st, const char *what, dt_error_t *err);

/* ---- ReduceLROnPlateau ---- */

typedef struct {
  bool enabled;
  dt_metric_kind monitor;
  bool maximize;
  double factor;    /* in (0, 1): the lr is multiplied by it at each reduction */
  long patience;
  double min_delta; /* >= 0 */
  long cooldown;    /* epochs after a reduction during which no epoch counts as waiting */
  double min_lr;    /* a reduction never takes the lr below this */
} dt_reduce_lr_opts_t;

typedef struct {
  int64_t has_best;
  double best;
  int64_t wait;
  int64_t cooldown_counter;
  double scale;       /* product of the factors applied so far; 1 at the start */
  int64_t reductions; /* how many reductions so far */
} dt_reduce_lr_state_t;

enum { DT_REDUCE_LR_STATE_DOUBLES = 6 };

typedef struct {
  dt_reduce_lr_opts_t opt;
  dt_reduce_lr_state_t st;
} dt_reduce_lr_t;

/* Reads [reduce_lr] like dt_early_stopping_read. */
int dt_reduce_lr_read(dt_config_t *cfg, dt_metric_mask available, dt_reduce_lr_t *rl,
                      dt_error_t *err);

void dt_reduce_lr_reset(dt_reduce_lr_t *rl);

/* Keras' ReduceLROnPlateau.on_epoch_end for the monitored value; current_lr is the lr in
 * effect now, dt_reduce_lr_apply(rl, schedule lr). In cooldown the cooldown counter
 * counts down and wait is 0; an improvement (as for early stopping, with min_delta)
 * becomes the best and resets wait; otherwise, out of cooldown, wait += 1 and once
 * wait >= patience, if current_lr > min_lr, the scale is multiplied by factor, wait is
 * reset and cooldown starts. Returns the new scale; *reduced (may be NULL) says whether
 * this call reduced it: the trainer then logs, as Keras does, "Epoch N:
 * ReduceLROnPlateau reducing learning rate to X." with X = dt_reduce_lr_apply(rl, lr).
 * Disabled, or with a NaN value, it changes nothing. */
double dt_reduce_lr_update(dt_reduce_lr_t *rl, double value, double current_lr, bool *reduced);

/* The lr to use given the schedule's lr: schedule_lr * scale, but not below min_lr
 * (where the schedule itself is above it) and never above schedule_lr. With no
 * reduction yet (scale 1) this is schedule_lr exactly. */
double dt_reduce_lr_apply(const dt_reduce_lr_t *rl, double schedule_lr);

void dt_reduce_lr_pack(const dt_reduce_lr_state_t *st, double out[DT_REDUCE_LR_STATE_DOUBLES]);
int dt_reduce_lr_unpack(const double in[DT_REDUCE_LR_STATE_DOUBLES], dt_reduce_lr_state_t *st,
                        const char *what, dt_error_t *err);

/* ---- CSV epoch log ---- */

typedef struct {
  char path[4096];
  bool append;
} dt_csv_log_opts_t;

/* Reads [csv_log]: file (empty: no log) and append. */
int dt_csv_log_read(dt_config_t *cfg, dt_csv_log_opts_t *opts, dt_error_t *err);

typedef struct {
  FILE *f;
  char path[4096];
  dt_metric_mask columns;
} dt_csv_log_t;

/* Opens the log with the columns epoch, then those of loss, accuracy, val_loss,
 * val_accuracy present in `columns`, then lr. Without append the file is replaced and
 * gets the header. With append an empty or missing file gets the header; an existing
 * one must start with the same header (else DT_ERR_FORMAT naming the path and both
 * headers), and its rows for epochs after keep_through_epoch are dropped (a resumed run
 * passes the epoch of its checkpoint, so rows written after it before a crash are not
 * repeated; LONG_MAX keeps every row), as is a last line cut short by a crash. */
int dt_csv_log_open(dt_csv_log_t *log, const char *path, bool append, long keep_through_epoch,
                    dt_metric_mask columns, dt_error_t *err);

/* Writes "epoch,values...,lr" (%.9g, nan where a value is missing) and flushes. */
int dt_csv_log_row(dt_csv_log_t *log, long epoch, const dt_epoch_metrics_t *m, double lr,
                   dt_error_t *err);

/* Closes the file (a no-op for a log that was never opened); write errors name the path. */
int dt_csv_log_close(dt_csv_log_t *log, dt_error_t *err);

#endif
