/* TensorBoard logging of a training run (see train_log.h). */
#define _POSIX_C_SOURCE 200809L
#include "train_log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The weight picture shows at most this many units of the first layer. */
enum { MAX_IMAGE_TILES = 256 };

/* Records waiting for the writer thread, per file. A run writes a few KB per step
 * interval and well under 1 MiB per epoch (histograms, one PNG), so 2 MiB absorbs a
 * slow disk for a long time while keeping the process small. */
static const dt_events_options_t event_options = {.queue_bytes = 2u << 20};

int train_log_read(train_log_t *tl, dt_config_t *cfg, const char *config_path, bool writer,
                   const dt_log_t *log, dt_error_t *err) {
  memset(tl, 0, sizeof *tl);
  tl->log = log;
  const char *logdir, *run;
  bool enabled;
  int rc;
  if ((rc = dt_config_get_bool(cfg, "tensorboard", "enabled", true, &enabled, err)) ||
      (rc = dt_config_get_string(cfg, "tensorboard", "logdir", "runs", &logdir, err)) ||
      (rc = dt_config_get_string(cfg, "tensorboard", "run", "", &run, err)) ||
      (rc = dt_config_get_int(cfg, "tensorboard", "every_steps", 10, 1, 1L << 40, &tl->every_steps,
                              err)) ||
      (rc = dt_config_get_int(cfg, "tensorboard", "histogram_freq", 1, 0, 1L << 30,
                              &tl->histogram_freq, err)) ||
      (rc = dt_config_get_bool(cfg, "tensorboard", "images", true, &tl->images, err)))
    return rc;
  tl->enabled = enabled && writer;
  /* The run folder is named even without event files: the final model goes there
   * (final_model.h). Default run name: the config's file name and the start time, so runs of the same
   * config sit side by side in TensorBoard. */
  char name[256];
  if (!run[0]) {
    const char *base = strrchr(config_path, '/');
    base = base ? base + 1 : config_path;
    size_t len = strcspn(base, ".");
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(name, sizeof name, "%.*s-%s", (int)(len < 200 ? len : 200), base, stamp);
    run = name;
  }
  int n = snprintf(tl->dir, sizeof tl->dir, "%s/%s", logdir, run);
  if (n < 0 || (size_t)n >= sizeof tl->dir)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [tensorboard] logdir/run is too long",
                        dt_config_where(cfg, "tensorboard", "logdir"));
  return 0;
}

/* The first layer's weights as a grid of (h, w) tiles, one per unit, when the first
 * layer is dense over a one-channel image. */
static void plan_image(train_log_t *tl, const dt_model_t *m) {
  const dt_layer_t *first = &m->layers[0];
  if (!tl->images || strcmp(first->ops->type, "dense") != 0 || m->in_shape.ndim != 3 ||
      m->in_shape.dims[2] != 1)
    return;
  int units = first->out_shape.dims[0], tiles = units < MAX_IMAGE_TILES ? units : MAX_IMAGE_TILES;
  int cols = (int)ceil(sqrt((double)tiles)), rows = (tiles + cols - 1) / cols;
  int h = m->in_shape.dims[0], w = m->in_shape.dims[1];
  /* One pixel of border between tiles. */
  tl->image_h = rows * (h + 1) + 1;
  tl->image_w = cols * (w + 1) + 1;
  tl->image = calloc((size_t)tl->image_h * (size_t)tl->image_w, 1);
}

/* params: the model's parameters on the host. */
static void draw_image(train_log_t *tl, const dt_model_t *m, const float *params) {
  const dt_layer_t *first = &m->layers[0];
  const float *kernel = params + first->param_decl[0].offset; /* (in, units) */
  int units = first->out_shape.dims[0], tiles = units < MAX_IMAGE_TILES ? units : MAX_IMAGE_TILES;
  int h = m->in_shape.dims[0], w = m->in_shape.dims[1];
  int cols = (tl->image_w - 1) / (w + 1);
  memset(tl->image, 0, (size_t)tl->image_h * (size_t)tl->image_w);
  for (int u = 0; u < tiles; u++) {
    /* Each tile is scaled to its own range so that every unit's pattern is visible. */
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < h * w; i++) {
      float v = kernel[(size_t)i * (size_t)units + (size_t)u];
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    int top = (u / cols) * (h + 1) + 1, left = (u % cols) * (w + 1) + 1;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        float v = kernel[(size_t)(y * w + x) * (size_t)units + (size_t)u];
        tl->image[(size_t)(top + y) * (size_t)tl->image_w + (size_t)(left + x)] =
            (uint8_t)((v - lo) * scale);
      }
  }
}

/* Prints the first problem the events library reports for ev; it reports each once. */
static void report(train_log_t *tl, dt_events_t *ev) {
  dt_error_t e = {0};
  if (ev && dt_events_poll_error(ev, &e))
    dt_log_warn(tl->log, "TensorBoard logging: %s (training goes on)", e.msg);
}

int train_log_open(train_log_t *tl, const dt_config_t *cfg, const dt_model_t *m, const char *sub,
                   dt_error_t *err) {
  char path[OPT_PATH_MAX + 16];
  int rc;
  /* Also without event files: the final model goes into the same folder. */
  if (sub) {
    size_t len = strlen(tl->dir);
    int n = snprintf(tl->dir + len, sizeof tl->dir - len, "/%s", sub);
    if (n < 0 || (size_t)n >= sizeof tl->dir - len)
      return dt_error_set(err, DT_ERR_CONFIG, "[tensorboard] logdir/run/%s is too long", sub);
  }
  if (!tl->enabled) return 0;
  snprintf(path, sizeof path, "%s/train", tl->dir);
  /* dt_events_open creates the folders, parents included. */
  if ((rc = dt_events_open_opts(&tl->train, path, &event_options, err))) return rc;
  snprintf(path, sizeof path, "%s/validation", tl->dir);
  if ((rc = dt_events_open_opts(&tl->val, path, &event_options, err))) return rc;
  size_t need = dt_config_to_string(cfg, NULL, 0);
  char *text = malloc(need + 1);
  if (!text) return dt_error_set(err, DT_ERR_NOMEM, "out of memory logging the config");
  dt_config_to_string(cfg, text, need + 1);
  rc = dt_events_text(tl->train, "config", 0, text, err);
  free(text);
  if (rc) return rc;
  plan_image(tl, m);
  dt_log_info(tl->log, "TensorBoard logs: %s (tensorboard --logdir %s)", tl->dir, tl->dir);
  return 0;
}

void train_log_step(train_log_t *tl, long step, double loss, double lr, double samples_per_s,
                    const step_times_t *times) {
  if (!tl->enabled || step % tl->every_steps != 0) return;
  /* The calls only fail on bad arguments, which these constant tags are not. */
  dt_events_scalar(tl->train, "batch_loss", step, loss, NULL);
  dt_events_scalar(tl->train, "learning_rate", step, lr, NULL);
  dt_events_scalar(tl->train, "samples_per_sec", step, samples_per_s, NULL);
  dt_events_scalar(tl->train, "step_time_ms/data", step, times->data_s * 1e3, NULL);
  dt_events_scalar(tl->train, "step_time_ms/compute", step, times->compute_s * 1e3, NULL);
  dt_events_scalar(tl->train, "step_time_ms/comm_wait", step, times->comm_s * 1e3, NULL);
  report(tl, tl->train);
}

/* The weight and gradient histograms and the weight picture, from the model's buffers
 * brought to the host once for all of them. */
static void log_weights(train_log_t *tl, long epoch, dt_model_t *m) {
  float *params, *grads;
  dt_error_t err = {0};
  if (dt_model_to_host(m, DT_MODEL_PARAMS, &params, &err) ||
      dt_model_to_host(m, DT_MODEL_GRADS, &grads, &err)) {
    dt_log_warn(tl->log, "TensorBoard logging: no histograms for epoch %ld: %s", epoch, err.msg);
    return;
  }
  char tag[DT_NAME_MAX + 16];
  for (int i = 0; i < m->nparams; i++) {
    const dt_param_info_t *p = &m->params[i];
    dt_events_histogram(tl->train, p->name, epoch, params + p->offset, p->count, NULL);
    snprintf(tag, sizeof tag, "%s/gradient", p->name);
    dt_events_histogram(tl->train, tag, epoch, grads + p->offset, p->count, NULL);
  }
  if (tl->image) {
    draw_image(tl, m, params);
    snprintf(tag, sizeof tag, "%s/weights", m->layers[0].name);
    dt_events_image(tl->train, tag, epoch, tl->image_h, tl->image_w, 1, tl->image, NULL);
  }
}

void train_log_epoch(train_log_t *tl, long epoch, double loss, double accuracy, double val_loss,
                     double val_accuracy, dt_model_t *m) {
  if (!tl->enabled) return;
  dt_events_scalar(tl->train, "epoch_loss", epoch, loss, NULL);
  if (!isnan(accuracy)) dt_events_scalar(tl->train, "epoch_accuracy", epoch, accuracy, NULL);
  if (!isnan(val_loss)) dt_events_scalar(tl->val, "epoch_loss", epoch, val_loss, NULL);
  if (!isnan(val_accuracy)) dt_events_scalar(tl->val, "epoch_accuracy", epoch, val_accuracy, NULL);
  if (tl->histogram_freq > 0 && epoch % tl->histogram_freq == 0) log_weights(tl, epoch, m);
  report(tl, tl->train);
  report(tl, tl->val);
}

void train_log_reconstructions(train_log_t *tl, long epoch, const float *inputs,
                               const float *outputs, int n, int h, int w) {
  if (!tl->enabled || !tl->images || n <= 0) return;
  /* Two rows of n tiles with a one-pixel black border around each. */
  int ih = 2 * (h + 1) + 1, iw = n * (w + 1) + 1;
  uint8_t *px = calloc((size_t)ih * (size_t)iw, 1);
  if (!px) return;
  for (int row = 0; row < 2; row++)
    for (int k = 0; k < n; k++) {
      const float *src = (row ? outputs : inputs) + (size_t)k * (size_t)(h * w);
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
          float v = src[y * w + x];
          v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
          px[(size_t)(1 + row * (h + 1) + y) * (size_t)iw + (size_t)(1 + k * (w + 1) + x)] =
              (uint8_t)(v * 255.0f + 0.5f);
        }
    }
  dt_events_image(tl->val, "reconstructions", epoch, ih, iw, 1, px, NULL);
  free(px);
}

void train_log_flush(train_log_t *tl) {
  if (!tl->enabled) return;
  dt_error_t e = {0};
  if (tl->train && dt_events_flush(tl->train, &e) == 0 && tl->val) dt_events_flush(tl->val, &e);
  report(tl, tl->train);
  report(tl, tl->val);
}

void train_log_close(train_log_t *tl) {
  /* Anything not reported yet (a late write error, dropped records) is printed once;
   * close itself would only repeat it. */
  report(tl, tl->train);
  report(tl, tl->val);
  if (tl->train) dt_events_close(tl->train, NULL);
  if (tl->val) dt_events_close(tl->val, NULL);
  free(tl->image);
  tl->train = tl->val = NULL;
  tl->image = NULL;
}
