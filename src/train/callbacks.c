/* Early stopping, ReduceLROnPlateau and the CSV epoch log (see callbacks.h). The
 * decision rules follow Keras 3's callbacks line by line, so a config ported from Keras
 * stops and reduces at the same epochs. */
/* truncate() and off_t are POSIX. */
#define _POSIX_C_SOURCE 200809L

#include "dtrain/callbacks.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

const char *const dt_metric_names[] = {"loss", "accuracy", "val_loss", "val_accuracy", NULL};

static const char *const mode_names[] = {"auto", "min", "max", NULL};

/* Reads monitor and mode of `section`; auto means max for the accuracies (as Keras
 * decides from "acc" in the name), min for the losses. */
static int read_monitor(dt_config_t *cfg, const char *section, bool enabled,
                        dt_metric_mask available, dt_metric_kind *monitor, bool *maximize,
                        dt_error_t *err) {
  int mon, mode, rc;
  if ((rc = dt_config_get_choice(cfg, section, "monitor", "val_loss", dt_metric_names, &mon,
                                 err)) ||
      (rc = dt_config_get_choice(cfg, section, "mode", "auto", mode_names, &mode, err)))
    return rc;
  *monitor = (dt_metric_kind)mon;
  const bool accuracy = mon == DT_METRIC_ACCURACY || mon == DT_METRIC_VAL_ACCURACY;
  *maximize = mode == 2 || (mode == 0 && accuracy);
  if (enabled && !(available & DT_METRIC_BIT(mon))) {
    const bool val = mon == DT_METRIC_VAL_LOSS || mon == DT_METRIC_VAL_ACCURACY;
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] monitor = %s, but this run has no %s (%s)",
                        dt_config_where(cfg, section, "monitor"), section, dt_metric_names[mon],
                        dt_metric_names[mon],
                        val && !(available & DT_METRIC_BIT(DT_METRIC_VAL_LOSS))
                            ? "it needs data.validation_split > 0"
                        : accuracy ? "accuracy needs a classification loss"
                              : "the run does not compute it");
  }
  return 0;
}

/* value improves on ref by more than min_delta in the monitored direction. */
static bool improves(bool maximize, double min_delta, double value, double ref) {
  return maximize ? value - min_delta > ref : value + min_delta < ref;
}

/* A packed integer field: finite, whole, within [lo, hi]. */
static bool whole_in(double v, double lo, double hi) {
  return isfinite(v) && v == floor(v) && v >= lo && v <= hi;
}

/* ---- EarlyStopping ---- */

int dt_early_stopping_read(dt_config_t *cfg, dt_metric_mask available, dt_early_stopping_t *es,
                           dt_error_t *err) {
  static const char *const sec = "early_stopping";
  dt_early_stopping_opts_t o = {0};
  int rc;
  if ((rc = dt_config_get_bool(cfg, sec, "enabled", false, &o.enabled, err)) ||
      (rc = read_monitor(cfg, sec, o.enabled, available, &o.monitor, &o.maximize, err)) ||
      (rc = dt_config_get_double(cfg, sec, "min_delta", 0.0, 0.0, 1e300, &o.min_delta, err)) ||
      (rc = dt_config_get_int(cfg, sec, "patience", 0, 0, 1L << 40, &o.patience, err)) ||
      (rc = dt_config_get_bool(cfg, sec, "restore_best_weights", false, &o.restore_best_weights,
                               err)) ||
      (rc = dt_config_get_int(cfg, sec, "start_from_epoch", 0, 0, 1L << 40, &o.start_from_epoch,
                              err)))
    return rc;
  o.has_baseline = dt_config_has_key(cfg, sec, "baseline");
  if (o.has_baseline &&
      (rc = dt_config_get_double(cfg, sec, "baseline", 0.0, -1e300, 1e300, &o.baseline, err)))
    return rc;
  es->opt = o;
  dt_early_stopping_reset(es);
  return 0;
}

void dt_early_stopping_reset(dt_early_stopping_t *es) {
  es->st = (dt_early_stopping_state_t){
      .has_best = 0, .best = 0.0, .best_epoch = -1, .wait = 0, .stopped_epoch = -1};
}

dt_early_stopping_decision_t dt_early_stopping_update(dt_early_stopping_t *es, double value,
                                                      long epoch) {
  dt_early_stopping_decision_t d = {false, false};
  const dt_early_stopping_opts_t *o = &es->opt;
  dt_early_stopping_state_t *st = &es->st;
  if (!o->enabled || isnan(value) || epoch < o->start_from_epoch) return d;
  st->wait++;
  if (!st->has_best || improves(o->maximize, o->min_delta, value, st->best)) {
    st->has_best = 1;
    st->best = value;
    st->best_epoch = epoch;
    d.improved = true;
    /* Waiting restarts only once the baseline is beaten too. */
    if (!o->has_baseline || improves(o->maximize, o->min_delta, value, o->baseline)) st->wait = 0;
    return d;
  }
  if (st->wait >= o->patience && epoch > 0) {
    st->stopped_epoch = epoch;
    d.stop = true;
  }
  return d;
}

void dt_early_stopping_pack(const dt_early_stopping_state_t *st,
                            double out[DT_EARLY_STOPPING_STATE_DOUBLES]) {
  out[0] = (double)st->has_best;
  out[1] = st->best;
  out[2] = (double)st->best_epoch;
  out[3] = (double)st->wait;
  out[4] = (double)st->stopped_epoch;
}

int dt_early_stopping_unpack(const double in[DT_EARLY_STOPPING_STATE_DOUBLES],
                             dt_early_stopping_state_t *st, const char *what, dt_error_t *err) {
  const double big = 9007199254740992.0; /* 2^53: integers stay exact in a double */
  if (!whole_in(in[0], 0, 1) || !isfinite(in[1]) || !whole_in(in[2], -1, big) ||
      !whole_in(in[3], 0, big) || !whole_in(in[4], -1, big))
    return dt_error_set(err, DT_ERR_FORMAT,
                        "%s: not an early-stopping state (has_best %g, best %g, best_epoch %g, "
                        "wait %g, stopped_epoch %g)",
                        what, in[0], in[1], in[2], in[3], in[4]);
  *st = (dt_early_stopping_state_t){.has_best = (int64_t)in[0],
                                    .best = in[1],
                                    .best_epoch = (int64_t)in[2],
                                    .wait = (int64_t)in[3],
                                    .stopped_epoch = (int64_t)in[4]};
  return 0;
}

/* ---- ReduceLROnPlateau ---- */

int dt_reduce_lr_read(dt_config_t *cfg, dt_metric_mask available, dt_reduce_lr_t *rl,
                      dt_error_t *err) {
  static const char *const sec = "reduce_lr";
  dt_reduce_lr_opts_t o = {0};
  int rc;
  if ((rc = dt_config_get_bool(cfg, sec, "enabled", false, &o.enabled, err)) ||
      (rc = read_monitor(cfg, sec, o.enabled, available, &o.monitor, &o.maximize, err)) ||
      (rc = dt_config_get_double(cfg, sec, "factor", 0.1, 0.0, 1.0, &o.factor, err)) ||
      (rc = dt_config_get_int(cfg, sec, "patience", 10, 0, 1L << 40, &o.patience, err)) ||
      (rc = dt_config_get_double(cfg, sec, "min_delta", 1e-4, 0.0, 1e300, &o.min_delta, err)) ||
      (rc = dt_config_get_int(cfg, sec, "cooldown", 0, 0, 1L << 40, &o.cooldown, err)) ||
      (rc = dt_config_get_double(cfg, sec, "min_lr", 0.0, 0.0, 1e6, &o.min_lr, err)))
    return rc;
  /* Keras refuses factor >= 1 too: it would not reduce anything. */
  if (o.factor <= 0.0 || o.factor >= 1.0)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] factor = %g: must be above 0 and below 1",
                        dt_config_where(cfg, sec, "factor"), sec, o.factor);
  rl->opt = o;
  dt_reduce_lr_reset(rl);
  return 0;
}

void dt_reduce_lr_reset(dt_reduce_lr_t *rl) {
  rl->st = (dt_reduce_lr_state_t){
      .has_best = 0, .best = 0.0, .wait = 0, .cooldown_counter = 0, .scale = 1.0, .reductions = 0};
}

double dt_reduce_lr_update(dt_reduce_lr_t *rl, double value, double current_lr, bool *reduced) {
  const dt_reduce_lr_opts_t *o = &rl->opt;
  dt_reduce_lr_state_t *st = &rl->st;
  if (reduced) *reduced = false;
  if (!o->enabled || isnan(value)) return st->scale;
  if (st->cooldown_counter > 0) {
    st->cooldown_counter--;
    st->wait = 0;
  }
  if (!st->has_best || improves(o->maximize, o->min_delta, value, st->best)) {
    st->has_best = 1;
    st->best = value;
    st->wait = 0;
  } else if (st->cooldown_counter == 0) {
    st->wait++;
    /* Compared in float like Keras (np.float32(min_lr)): the lr the optimizer uses is a
     * float, and a floored lr must not count as above min_lr through rounding. */
    if (st->wait >= o->patience && (float)current_lr > (float)o->min_lr) {
      st->scale *= o->factor;
      st->reductions++;
      st->cooldown_counter = o->cooldown;
      st->wait = 0;
      if (reduced) *reduced = true;
    }
  }
  return st->scale;
}

double dt_reduce_lr_apply(const dt_reduce_lr_t *rl, double schedule_lr) {
  if (!rl->opt.enabled || rl->st.scale == 1.0) return schedule_lr;
  double lr = schedule_lr * rl->st.scale;
  if (lr < rl->opt.min_lr) lr = rl->opt.min_lr;
  return lr < schedule_lr ? lr : schedule_lr;
}

void dt_reduce_lr_pack(const dt_reduce_lr_state_t *st, double out[DT_REDUCE_LR_STATE_DOUBLES]) {
  out[0] = (double)st->has_best;
  out[1] = st->best;
  out[2] = (double)st->wait;
  out[3] = (double)st->cooldown_counter;
  out[4] = st->scale;
  out[5] = (double)st->reductions;
}

int dt_reduce_lr_unpack(const double in[DT_REDUCE_LR_STATE_DOUBLES], dt_reduce_lr_state_t *st,
                        const char *what, dt_error_t *err) {
  const double big = 9007199254740992.0;
  if (!whole_in(in[0], 0, 1) || !isfinite(in[1]) || !whole_in(in[2], 0, big) ||
      !whole_in(in[3], 0, big) || !(in[4] > 0.0 && in[4] <= 1.0) || !whole_in(in[5], 0, big))
    return dt_error_set(err, DT_ERR_FORMAT,
                        "%s: not a reduce-lr state (has_best %g, best %g, wait %g, cooldown %g, "
                        "scale %g, reductions %g)",
                        what, in[0], in[1], in[2], in[3], in[4], in[5]);
  *st = (dt_reduce_lr_state_t){.has_best = (int64_t)in[0],
                               .best = in[1],
                               .wait = (int64_t)in[2],
                               .cooldown_counter = (int64_t)in[3],
                               .scale = in[4],
                               .reductions = (int64_t)in[5]};
  return 0;
}

/* ---- CSV epoch log ---- */

int dt_csv_log_read(dt_config_t *cfg, dt_csv_log_opts_t *opts, dt_error_t *err) {
  const char *file;
  int rc;
  if ((rc = dt_config_get_string(cfg, "csv_log", "file", "", &file, err)) ||
      (rc = dt_config_get_bool(cfg, "csv_log", "append", false, &opts->append, err)))
    return rc;
  if (strlen(file) >= sizeof opts->path)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [csv_log] file: the path is longer than %zu bytes",
                        dt_config_where(cfg, "csv_log", "file"), sizeof opts->path - 1);
  snprintf(opts->path, sizeof opts->path, "%s", file);
  return 0;
}

static size_t csv_header(dt_metric_mask columns, char *buf, size_t cap) {
  size_t used = (size_t)snprintf(buf, cap, "epoch");
  for (int k = 0; k < DT_METRIC_COUNT; k++)
    if (columns & DT_METRIC_BIT(k))
      used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0, ",%s", dt_metric_names[k]);
  used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0, ",lr");
  return used;
}

/* For append: checks the header of the existing file and cuts it after the last whole
 * row with epoch <= keep_through (a missing file is fine). *need_header is set when
 * the file holds no whole line. */
static int prepare_append(const char *path, const char *header, long keep_through,
                          bool *need_header, dt_error_t *err) {
  *need_header = true;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return 0;
    return dt_error_set(err, DT_ERR_IO, "%s: cannot open the CSV log to append to it: %s", path,
                        strerror(errno));
  }
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = 2 * cap + 8192;
      char *t = realloc(text, cap);
      if (!t) {
        free(text);
        fclose(f);
        return dt_error_set(err, DT_ERR_NOMEM, "%s: out of memory reading the CSV log", path);
      }
      text = t;
    }
    size_t got = fread(text + len, 1, 4096, f);
    len += got;
    if (got < 4096) break;
  }
  const bool read_error = ferror(f);
  fclose(f);
  if (read_error) {
    free(text);
    return dt_error_set(err, DT_ERR_IO, "%s: cannot read the CSV log", path);
  }
  text[len] = '\0';
  /* keep = bytes up to the end of the last line that stays. */
  size_t keep = 0;
  int rc = 0;
  char *nl = memchr(text, '\n', len);
  if (nl) {
    *nl = '\0';
    if (strcmp(text, header) != 0) {
      rc = dt_error_set(err, DT_ERR_FORMAT,
                        "%s: the existing CSV log has the columns '%.200s', this run writes "
                        "'%s'; use another file or csv_log.append = false",
                        path, text, header);
    } else {
      *need_header = false;
      keep = (size_t)(nl - text) + 1;
      long lineno = 2;
      for (char *line = nl + 1; !rc; lineno++) {
        char *end = memchr(line, '\n', len - (size_t)(line - text));
        if (!end) break; /* nothing more, or a row cut short by a crash */
        *end = '\0';
        char *after;
        errno = 0;
        long epoch = strtol(line, &after, 10);
        if (after == line || *after != ',' || errno)
          rc = dt_error_set(err, DT_ERR_FORMAT, "%s:%ld: not a row of the CSV log: '%.100s'",
                            path, lineno, line);
        else if (epoch > keep_through)
          break;
        else
          keep = (size_t)(end - text) + 1;
        line = end + 1;
      }
    }
  }
  free(text);
  if (!rc && keep < len && truncate(path, (off_t)keep) != 0)
    rc = dt_error_set(err, DT_ERR_IO, "%s: cannot cut the CSV log back to epoch %ld: %s", path,
                      keep_through, strerror(errno));
  return rc;
}

int dt_csv_log_open(dt_csv_log_t *log, const char *path, bool append, long keep_through_epoch,
                    dt_metric_mask columns, dt_error_t *err) {
  memset(log, 0, sizeof *log);
  if (strlen(path) >= sizeof log->path)
    return dt_error_set(err, DT_ERR_ARG, "CSV log path too long (%zu bytes)", strlen(path));
  snprintf(log->path, sizeof log->path, "%s", path);
  log->columns = columns & (DT_METRIC_BIT(DT_METRIC_COUNT) - 1);
  char header[128];
  csv_header(log->columns, header, sizeof header);
  bool need_header = true;
  int rc;
  if (append && (rc = prepare_append(path, header, keep_through_epoch, &need_header, err)))
    return rc;
  log->f = fopen(path, append ? "a" : "w");
  if (!log->f)
    return dt_error_set(err, DT_ERR_IO, "%s: cannot open the CSV log for writing: %s", path,
                        strerror(errno));
  if (need_header && (fprintf(log->f, "%s\n", header) < 0 || fflush(log->f) != 0)) {
    rc = dt_error_set(err, DT_ERR_IO, "%s: cannot write the CSV log header: %s", path,
                      strerror(errno));
    fclose(log->f);
    log->f = NULL;
    return rc;
  }
  return 0;
}

static void put_value(FILE *f, double v) {
  if (isnan(v))
    fputs(",nan", f);
  else
    fprintf(f, ",%.9g", v);
}

int dt_csv_log_row(dt_csv_log_t *log, long epoch, const dt_epoch_metrics_t *m, double lr,
                   dt_error_t *err) {
  if (!log->f) return dt_error_set(err, DT_ERR_STATE, "%s: the CSV log is not open", log->path);
  fprintf(log->f, "%ld", epoch);
  for (int k = 0; k < DT_METRIC_COUNT; k++)
    if (log->columns & DT_METRIC_BIT(k)) put_value(log->f, m->v[k]);
  put_value(log->f, lr);
  fputc('\n', log->f);
  if (ferror(log->f) || fflush(log->f) != 0)
    return dt_error_set(err, DT_ERR_IO, "%s: cannot write epoch %ld to the CSV log: %s",
                        log->path, epoch, strerror(errno));
  return 0;
}

int dt_csv_log_close(dt_csv_log_t *log, dt_error_t *err) {
  if (!log->f) return 0;
  const bool failed = ferror(log->f) != 0;
  const int rc = fclose(log->f);
  log->f = NULL;
  if (failed || rc != 0)
    return dt_error_set(err, DT_ERR_IO, "%s: writing the CSV log failed: %s", log->path,
                        strerror(errno));
  return 0;
}
