/* TensorBoard logging of a training run, Keras-style: <logdir>/<run>/train/ and
 * <logdir>/<run>/validation/ event files (a PS worker: <logdir>/<run>/worker-<id>/...) with per-step scalars (loss, learning rate,
 * samples/s, step time split into data / compute / communication wait), per-epoch
 * loss and accuracy, weight and gradient histograms every histogram_freq epochs, the
 * run's config as text at step 0, and a picture of the first dense layer's weights.
 *
 * The events library queues records and writes them on its own thread, so calls
 * here never wait for the disk; a write problem is printed once. Only the rank that
 * logs (rank 0 in sync mode) opens anything. */
#ifndef DTRAIN_WORKER_TRAIN_LOG_H
#define DTRAIN_WORKER_TRAIN_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/events.h"
#include "dtrain/log.h"
#include "dtrain/model.h"
#include "options.h"

typedef struct {
  double data_s, compute_s, comm_s; /* time of one step's parts */
} step_times_t;

typedef struct {
  bool enabled;
  long every_steps;    /* per-step scalars every N steps */
  long histogram_freq; /* histograms every N epochs (0: never) */
  bool images;
  char dir[OPT_PATH_MAX]; /* <logdir>/<run> */
  dt_events_t *train, *val;
  const dt_log_t *log;
  uint8_t *image;      /* preallocated weight-picture pixels, or NULL */
  int image_h, image_w;
} train_log_t;

/* Reads [tensorboard]: enabled, logdir, run, every_steps, histogram_freq, images.
 * `writer` says whether this process logs at all. */
int train_log_read(train_log_t *tl, dt_config_t *cfg, const char *config_path, bool writer,
                   const dt_log_t *log, dt_error_t *err);

/* Creates the run's folders and files and writes the config text at step 0. With a sub
 * name, the process logs into <logdir>/<run>/<sub>/ (a PS worker: worker-<id>). */
int train_log_open(train_log_t *tl, const dt_config_t *cfg, const dt_model_t *m, const char *sub,
                   dt_error_t *err);

void train_log_step(train_log_t *tl, long step, double loss, double lr, double samples_per_s,
                    const step_times_t *times);

/* Epoch metrics (NaN accuracy/validation values are left out) and, every
 * histogram_freq epochs, histograms and the weight picture (which read the model's
 * parameters and gradients on the host). */
void train_log_epoch(train_log_t *tl, long epoch, double loss, double accuracy, double val_loss,
                     double val_accuracy, dt_model_t *m);

/* An autoencoder's reconstructions: n inputs (n, h*w) in [0,1] in the top row and
 * their reconstructions (n, h*w) below, as one image "reconstructions" of the
 * validation run at this epoch. */
void train_log_reconstructions(train_log_t *tl, long epoch, const float *inputs,
                               const float *outputs, int n, int h, int w);

/* A VAE's loss terms for the epoch: scalars epoch_reconstruction_loss and epoch_kl_loss
 * in the training run and (when not NaN) the validation run. */
void train_log_terms(train_log_t *tl, long epoch, double reconstruction, double kl,
                     double val_reconstruction, double val_kl);

/* Generated images (n, h*w) in [0,1], a grid of 8 per row, as image "samples" of the
 * training run at this epoch (a VAE's decoder on draws from the prior). */
void train_log_samples(train_log_t *tl, long epoch, const float *images, int n, int h, int w);

/* Flushes everything written so far (the writer thread does it every few seconds anyway). */
void train_log_flush(train_log_t *tl);

void train_log_close(train_log_t *tl);

#endif
