/* A GAN run: setup, the loop of alternating steps, epoch reports, TensorBoard and
 * checkpoints (see gan_trainer.h). */
#define _POSIX_C_SOURCE 200809L
#include "gan_trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agreement.h"
#include "dtrain/clock.h"
#include "dtrain/events.h"
#include "dtrain/schedule.h"
#include "final_model.h"
#include "gan_ckpt.h"
#include "gan_model.h"
#include "gan_step.h"
#include "preempt.h"

typedef struct {
  dt_config_t *cfg;
  const gan_cli_t *cli;
  run_options_t opt;
  ckpt_options_t ckpt;
  dt_log_t log;
  dt_comm_t *comm;
  dt_device_t *dev;
  progress_t progress;
  train_log_t tlog;
  run_data_t data;
  gan_t gan;
  dt_schedule_t g_sched, d_sched;
  long steps_per_epoch; /* GAN steps: d_steps batches each */
  gan_position_t pos;
  uint32_t *perm;  /* (train.n) */
  float *real;     /* (batch, img) */
  float *z;        /* (world x batch, latent) the global batch's z */
  float *grid_z;   /* (samples, latent) the fixed z of the sample grid */
  float *grid;     /* (samples, img) */
  final_model_opts_t final_model; /* train.save_model, train.model_dir */
  char *preprocess_json;           /* the run's data preprocessing (the discriminator's) */
  bool preempted;
} gan_run_t;

bool gan_is_run(const dt_config_t *cfg) { return dt_config_has_section(cfg, "gan"); }

static gan_ckpt_env_t ckpt_env(gan_run_t *r) {
  return (gan_ckpt_env_t){&r->ckpt, r->cfg, r->comm, &r->log, r->opt.seed};
}

/* The replicas start from rank 0's parameters. */
static int broadcast_params(gan_run_t *r, dt_model_t *m, dt_error_t *err) {
  float *params;
  int rc = dt_model_to_host(m, DT_MODEL_PARAMS, &params, err);
  if (!rc) rc = dt_comm_broadcast(r->comm, params, m->num_params * sizeof(float), 0, err);
  if (!rc) rc = dt_model_from_host(m, DT_MODEL_PARAMS, err);
  return rc ? dt_error_prefix(err, "sending the initial parameters from rank 0: ") : 0;
}

static int setup(gan_run_t *r, dt_error_t *err) {
  dt_config_t *cfg = r->cfg;
  int rc;
  if ((rc = run_options_read(cfg, &r->opt, err)) || (rc = ckpt_options_read(cfg, &r->ckpt, err)) ||
      (rc = final_model_read(cfg, &r->final_model, err)))
    return rc;
  if (r->opt.ps)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [sync] mode = ps: a GAN run ([gan]) trains in sync mode only "
                        "(one process, or MPI ranks that average both models' gradients)",
                        dt_config_where(cfg, "sync", "mode"));
  r->opt.resume = r->cli->flags->resume;
  r->comm->timeout_s = r->opt.timeout_s;
  r->comm->allreduce = (dt_allreduce_algo)r->opt.allreduce;
  if ((rc = train_log_read(&r->tlog, cfg, r->cli->config_path, r->comm->rank == 0, &r->log,
                           err)) ||
      (rc = run_data_read(&r->data, cfg, err)) ||
      (rc = run_data_load(&r->data, cfg, r->opt.seed, err)) ||
      (rc = run_data_prepare(&r->data, cfg, false, false, err)))
    return rc;
  const dt_dataset_t *train = &r->data.train;
  dt_shape_t image = {train->ndim, {train->shape[0], train->shape[1], train->shape[2], 1}};
  /* Gray images (IDX, one-channel PNGs) are (h, w): convolutions take them as (h, w, 1). */
  if (image.ndim == 2) image = (dt_shape_t){3, {train->shape[0], train->shape[1], 1, 1}};
  if ((rc = gan_build(&r->gan, cfg, r->dev, image, r->opt.lr, err))) return rc;
  gan_t *gan = &r->gan;
  long batches = (long)dt_batches_per_epoch(train->n, (size_t)r->opt.batch_size, r->comm->world);
  r->steps_per_epoch = batches / gan->opt.d_steps;
  if (r->steps_per_epoch == 0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [train] batch_size = %ld x %d rank(s) x gan.d_steps = %ld is larger "
                        "than the %zu training samples",
                        dt_config_where(cfg, "train", "batch_size"), r->opt.batch_size,
                        r->comm->world, gan->opt.d_steps, train->n);
  double scale = r->opt.scale_lr ? r->comm->world : 1;
  long total = r->steps_per_epoch * r->opt.epochs;
  if ((rc = dt_schedule_read(gan->gcfg, gan->g_lr * scale, r->steps_per_epoch, total,
                             &r->g_sched, err)))
    return dt_error_prefix(err, "the generator: ");
  if ((rc = dt_schedule_read(gan->dcfg, gan->d_lr * scale, r->steps_per_epoch, total,
                             &r->d_sched, err)))
    return dt_error_prefix(err, "the discriminator: ");
  if ((rc = gan_check_unused(gan, err)) || (rc = dt_config_check_unused(cfg, err))) return rc;
  if (r->cli->flags->config_only) return 0;

  int batch = (int)r->opt.batch_size;
  r->opt.threads = run_options_threads(&r->opt, dt_comm_mpi_launched());
  if ((rc = dt_device_set_threads(r->dev, (int)r->opt.threads, err)) ||
      (rc = gan_prepare(gan, batch, err)))
    return rc;
  gan->comm = r->comm;
  gan->clipnorm = r->opt.clipnorm;
  gan->g_opt.parallel = gan->d_opt.parallel = dt_device_parallel(r->dev);
  if (r->comm->world > 1) {
    run_shape_t shape = {gan->g.num_params + gan->d.num_params, r->steps_per_epoch, 1,
                         r->opt.resume};
    if ((rc = agreement_check(r->comm, cfg, &shape, err))) return rc;
  }
  size_t latent = (size_t)gan->opt.latent_dim, world = (size_t)r->comm->world;
  r->perm = malloc(sizeof *r->perm * (train->n ? train->n : 1));
  r->real = malloc(sizeof *r->real * (size_t)batch * gan->img);
  r->z = malloc(sizeof *r->z * world * (size_t)batch * latent);
  r->grid_z = malloc(sizeof *r->grid_z * (size_t)gan->opt.samples * latent);
  r->grid = malloc(sizeof *r->grid * (size_t)gan->opt.samples * gan->img);
  r->preprocess_json = run_data_preprocess_json(&r->data);
  if (!r->perm || !r->real || !r->z || !r->grid_z || !r->grid || !r->preprocess_json)
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory setting up the GAN run");

  /* The same seeds on every rank; rank 0's parameters are broadcast anyway. */
  dt_rng_t init;
  dt_rng_seed(&init, dt_rng_mix(r->opt.seed, 0x1417));
  if ((rc = dt_model_init_params(&gan->g, &init, err)) ||
      (rc = dt_model_init_params(&gan->d, &init, err)) ||
      (rc = broadcast_params(r, &gan->g, err)) || (rc = broadcast_params(r, &gan->d, err)))
    return rc;
  dt_rng_seed(&r->pos.rng, dt_rng_mix(dt_rng_mix(r->opt.seed, 0xd20b), (uint64_t)r->comm->rank));
  /* z of the whole global batch from one stream that every rank follows, each taking
   * its slice: N ranks train on the z that one rank with N times the batch would. */
  dt_rng_seed(&r->pos.zrng, dt_rng_mix(r->opt.seed, 0x9a27));
  /* The grid's z are those `dtrain-worker generate --seed <train.seed>` draws, so the
   * last grid is what the saved generator makes of its first `samples` draws. */
  dt_rng_t grid;
  dt_rng_seed(&grid, r->opt.seed);
  gan_sample_z(gan, &grid, r->grid_z, (int)gan->opt.samples);
  progress_init(&r->progress, r->log.out,
                dt_log_enabled(&r->log) ? r->cli->flags->progress : PROGRESS_OFF,
                r->cli->flags->progress_every_s);
  return 0;
}

/* The next z of this rank's slice of the global batch. */
static const float *next_z(gan_run_t *r) {
  int world = r->comm->world, batch = r->gan.batch;
  gan_sample_z(&r->gan, &r->pos.zrng, r->z, world * batch);
  return r->z + (size_t)r->comm->rank * (size_t)batch * (size_t)r->gan.opt.latent_dim;
}

/* One GAN step: d_steps discriminator steps on the next batches, one generator step. */
static int step(gan_run_t *r, long g, gan_stats_t *st, dt_error_t *err) {
  gan_t *gan = &r->gan;
  const dt_dataset_t *train = &r->data.train;
  size_t batch = (size_t)gan->batch;
  float d_lr = (float)dt_schedule_lr(&r->d_sched, r->pos.step);
  float g_lr = (float)dt_schedule_lr(&r->g_sched, r->pos.step);
  memset(st, 0, sizeof *st);
  int rc;
  for (long k = 0; k < gan->opt.d_steps; k++) {
    size_t b = (size_t)(g * gan->opt.d_steps + k);
    const uint32_t *idx = dt_shard_batch(r->perm, b, batch, r->comm->rank, r->comm->world);
    if ((rc = dt_dataset_gather(train, &r->data.scaling, idx, batch, r->real, NULL, NULL, err)))
      return dt_error_prefix(err, "reading the training batch of step %ld: ", r->pos.step + 1);
    if ((rc = gan_d_step(gan, r->real, next_z(r), d_lr, &r->pos.rng, st, err)))
      return dt_error_prefix(err, "step %ld (epoch %ld): ", r->pos.step + 1, r->pos.epoch + 1);
  }
  double n = (double)gan->opt.d_steps;
  st->d_loss /= n;
  st->d_real /= n;
  st->d_fake /= n;
  if ((rc = gan_g_step(gan, next_z(r), g_lr, &r->pos.rng, st, err)))
    return dt_error_prefix(err, "step %ld (epoch %ld): ", r->pos.step + 1, r->pos.epoch + 1);
  r->pos.step++;
  if (r->tlog.enabled && r->pos.step % r->tlog.every_steps == 0) {
    dt_events_scalar(r->tlog.train, "batch_d_loss", r->pos.step, st->d_loss, NULL);
    dt_events_scalar(r->tlog.train, "batch_g_loss", r->pos.step, st->g_loss, NULL);
    dt_events_scalar(r->tlog.train, "learning_rate/generator", r->pos.step, g_lr, NULL);
    dt_events_scalar(r->tlog.train, "learning_rate/discriminator", r->pos.step, d_lr, NULL);
  }
  return 0;
}

/* The images G makes from the fixed grid z (in inference mode), as one picture of
 * tiles with a one-pixel border, to TensorBoard. */
static void log_samples(gan_run_t *r, long epoch) {
  gan_t *gan = &r->gan;
  const dt_dataset_t *train = &r->data.train;
  if (!r->tlog.enabled || !r->tlog.images || train->ndim < 2) return;
  int n = (int)gan->opt.samples, h = train->shape[0], w = train->shape[1];
  int c = train->ndim == 3 ? train->shape[2] : 1;
  dt_rng_t unused;
  dt_rng_seed(&unused, 0);
  size_t latent = (size_t)gan->opt.latent_dim;
  for (int done = 0; done < n;) {
    int chunk = n - done < gan->batch ? n - done : gan->batch;
    memcpy(gan->g.acts[0], r->grid_z + (size_t)done * latent, sizeof(float) * (size_t)chunk * latent);
    const float *y = dt_model_forward(&gan->g, chunk, false, &unused);
    memcpy(r->grid + (size_t)done * gan->img, y, sizeof(float) * (size_t)chunk * gan->img);
    done += chunk;
  }
  /* A tanh generator makes [-1, 1]; anything else is shown as [0, 1]. */
  const char *last = gan->g.layers[gan->g.nrun - 1].ops->type;
  bool tanh_out = strcmp(last, "tanh") == 0;
  int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols;
  int channels = c == 3 ? 3 : 1;
  int ih = rows * (h + 1) + 1, iw = cols * (w + 1) + 1;
  uint8_t *px = calloc((size_t)ih * (size_t)iw * (size_t)channels, 1);
  if (!px) return;
  for (int k = 0; k < n; k++) {
    const float *src = r->grid + (size_t)k * gan->img;
    int top = 1 + (k / cols) * (h + 1), left = 1 + (k % cols) * (w + 1);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        for (int ch = 0; ch < channels; ch++) {
          float v = src[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)ch];
          if (tanh_out) v = (v + 1.0f) / 2.0f;
          v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
          px[(((size_t)(top + y) * (size_t)iw) + (size_t)(left + x)) * (size_t)channels +
             (size_t)ch] = (uint8_t)(v * 255.0f + 0.5f);
        }
  }
  dt_events_image(r->tlog.train, "generated", epoch, ih, iw, channels, px, NULL);
  free(px);
}

/* The generator and the discriminator as saved models (gan_model.h). */
static int save_models(gan_run_t *r, const char *why, bool average_states, dt_error_t *err) {
  gan_model_run_t mr = {r->comm, r->preprocess_json, r->tlog.dir, &r->log, r->pos.step,
                        r->pos.epoch};
  return gan_model_save(&r->final_model, r->cfg, &mr, &r->gan, why, average_states, err);
}

static void save_or_warn(gan_run_t *r, const char *why, int *failures) {
  dt_error_t err = {0};
  gan_ckpt_env_t env = ckpt_env(r);
  if (gan_ckpt_save(&env, &r->gan, &r->pos, why, &err)) {
    (*failures)++;
    dt_log_error(&r->log, "checkpoint not written, training goes on: %s", err.msg);
  }
}

/* The end of an epoch: metrics over ranks, the line, TensorBoard, the checkpoint. */
static int finish_epoch(gan_run_t *r, long steps, double seconds, int *failures,
                        dt_error_t *err) {
  gan_position_t *pos = &r->pos;
  double sums[5] = {pos->sums[0], pos->sums[1], pos->sums[2], pos->sums[3], (double)pos->batches};
  int rc = dt_comm_allreduce_sum_f64(r->comm, sums, 5, err);
  if (rc) return dt_error_prefix(err, "epoch %ld metrics: ", pos->epoch + 1);
  /* Batch norm's moving averages follow each rank's batches: every replica keeps, and
   * saves, their average (as the ordinary trainer does). */
  for (int which = 0; which < 2 && r->comm->world > 1; which++) {
    dt_model_t *m = which ? &r->gan.d : &r->gan.g;
    if (m->num_states && (rc = dt_comm_allreduce_avg(r->comm, m->state_buf, m->num_states, err)))
      return dt_error_prefix(err, "averaging the layers' state: ");
  }
  double n = sums[4] > 0 ? sums[4] : NAN;
  double d_loss = sums[0] / n, g_loss = sums[1] / n, d_real = sums[2] / n, d_fake = sums[3] / n;
  long epoch = pos->epoch + 1;
  char done[48];
  if (steps == r->steps_per_epoch) snprintf(done, sizeof done, "%ld steps", steps);
  else snprintf(done, sizeof done, "%ld of %ld steps", steps, r->steps_per_epoch);
  double images = (double)steps * (double)r->gan.opt.d_steps * (double)r->gan.batch *
                  r->comm->world;
  dt_log_info(&r->log, "Epoch %ld/%ld - %s - %.1fs - d_loss: %.4f - g_loss: %.4f - D(x): %.4f "
              "- D(G(z)): %.4f - %.0f real images/s", epoch, r->opt.epochs, done, seconds,
              d_loss, g_loss, d_real, d_fake, images / (seconds > 0 ? seconds : 1e-9));
  if (r->tlog.enabled) {
    dt_events_scalar(r->tlog.train, "epoch_d_loss", epoch, d_loss, NULL);
    dt_events_scalar(r->tlog.train, "epoch_g_loss", epoch, g_loss, NULL);
    dt_events_scalar(r->tlog.train, "epoch_D(x)", epoch, d_real, NULL);
    dt_events_scalar(r->tlog.train, "epoch_D(G(z))", epoch, d_fake, NULL);
    if (r->gan.opt.sample_every && epoch % r->gan.opt.sample_every == 0) log_samples(r, epoch);
  }
  pos->epoch++;
  pos->batch_in_epoch = 0;
  memset(pos->sums, 0, sizeof pos->sums);
  pos->batches = 0;
  if (r->ckpt.dir[0] && r->ckpt.every_epochs && pos->epoch % r->ckpt.every_epochs == 0) {
    char why[32];
    snprintf(why, sizeof why, "epoch %ld", pos->epoch);
    save_or_warn(r, why, failures);
  }
  return 0;
}

/* Whether to stop now: a signal reached this process, or (with several ranks) any. */
static int agree_stop(gan_run_t *r, bool *stop, dt_error_t *err) {
  double flag = preempt_signal() != 0;
  int rc = r->comm->world > 1 ? dt_comm_allreduce_sum_f64(r->comm, &flag, 1, err) : 0;
  *stop = flag > 0;
  return rc;
}

static int train(gan_run_t *r, dt_error_t *err) {
  gan_position_t *pos = &r->pos;
  int failures = 0, rc;
  while (pos->epoch < r->opt.epochs) {
    dt_epoch_permutation(r->opt.seed, (uint64_t)pos->epoch, r->perm, r->data.train.n);
    long first = pos->batch_in_epoch;
    double start = dt_now_s();
    progress_begin(&r->progress, pos->epoch + 1, r->opt.epochs, first, r->steps_per_epoch);
    for (long g = first; g < r->steps_per_epoch; g++) {
      gan_stats_t st;
      if ((rc = step(r, g, &st, err))) return rc;
      pos->sums[0] += st.d_loss;
      pos->sums[1] += st.g_loss;
      pos->sums[2] += st.d_real;
      pos->sums[3] += st.d_fake;
      pos->batches++;
      pos->batch_in_epoch = g + 1;
      progress_update(&r->progress, g + 1, pos->sums[0] / (double)pos->batches, NAN);
      bool stop;
      if ((rc = agree_stop(r, &stop, err))) return rc;
      if (stop) {
        progress_end(&r->progress);
        dt_log_warn(&r->log, "stop signal: stopping after step %ld", pos->step);
        /* The checkpoint first: it keeps each rank's own layer state, which the saved
         * models then replace by the ranks' average. */
        gan_ckpt_env_t env = ckpt_env(r);
        if (r->ckpt.dir[0] && (rc = gan_ckpt_save(&env, &r->gan, pos, "preempted", err)))
          return rc;
        char why[96];
        snprintf(why, sizeof why, "step %ld (stopped by a signal)", pos->step);
        if ((rc = save_models(r, why, true, err))) return rc;
        if (!r->ckpt.dir[0] && !r->final_model.written[0])
          return dt_error_set(err, DT_ERR_STATE, "stopped by a signal at step %ld without a "
                              "checkpoint: set checkpoint.dir to keep the progress", pos->step);
        r->preempted = true;
        return 0;
      }
      if (r->ckpt.dir[0] && r->ckpt.every_steps && pos->step % r->ckpt.every_steps == 0) {
        char why[64];
        snprintf(why, sizeof why, "every %ld steps", r->ckpt.every_steps);
        save_or_warn(r, why, &failures);
      }
    }
    progress_end(&r->progress);
    if ((rc = finish_epoch(r, r->steps_per_epoch - first, dt_now_s() - start, &failures, err)))
      return rc;
  }
  if (failures)
    dt_log_warn(&r->log, "%d checkpoint(s) could not be written (see the errors above)",
                failures);
  /* Also after a resume with nothing left to train: the models are still written. The
   * layers' state was averaged over the ranks at the end of the last epoch. */
  char why[64];
  snprintf(why, sizeof why, "final, epoch %ld", pos->epoch);
  return save_models(r, why, false, err);
}

/* --save-params: G's parameters, then D's, raw little-endian float32. */
static int save_params(gan_run_t *r, const char *path, dt_error_t *err) {
  FILE *f = fopen(path, "wb");
  if (!f) return dt_error_set(err, DT_ERR_IO, "cannot create '%s' for --save-params", path);
  bool ok = true;
  for (int which = 0; which < 2 && ok; which++) {
    dt_model_t *m = which ? &r->gan.d : &r->gan.g;
    float *p;
    if (dt_model_to_host(m, DT_MODEL_PARAMS, &p, err)) {
      fclose(f);
      return err->code;
    }
    ok = fwrite(p, sizeof *p, m->num_params, f) == m->num_params;
  }
  ok = fclose(f) == 0 && ok;
  return ok ? 0 : dt_error_set(err, DT_ERR_IO, "cannot write the parameters to '%s'", path);
}

static void free_run(gan_run_t *r) {
  train_log_close(&r->tlog);
  gan_free(&r->gan);
  run_data_free(&r->data);
  free(r->perm);
  free(r->real);
  free(r->z);
  free(r->grid_z);
  free(r->grid);
  free(r->preprocess_json);
}

int gan_main(dt_config_t *cfg, const gan_cli_t *cli, dt_comm_t *comm, dt_device_t *dev,
             dt_log_t log, dt_error_t *err) {
  gan_run_t r;
  memset(&r, 0, sizeof r);
  r.cfg = cfg;
  r.cli = cli;
  r.comm = comm;
  r.dev = dev;
  r.log = log;
  int rc = setup(&r, err);
  if (!rc && !cli->flags->config_only) {
    char gs[4096], ds[4096];
    dt_model_summary(&r.gan.g, gs, sizeof gs);
    dt_model_summary(&r.gan.d, ds, sizeof ds);
    dt_log_info(&r.log, "dtrain-worker %s: %s, a GAN run, %d rank(s), %zu training images; %ld "
                "compute thread%s", DT_VERSION, cli->config_path, comm->world, r.data.train.n,
                r.opt.threads, r.opt.threads == 1 ? "" : "s");
    dt_log_info(&r.log, "Generator:\n%s", gs);
    dt_log_info(&r.log, "Discriminator:\n%s", ds);
    if (cli->flags->resume) {
      const char *from = cli->resume_dir ? cli->resume_dir : r.ckpt.dir;
      if (!from[0]) {
        rc = dt_error_set(err, DT_ERR_ARG, "--resume needs a directory: --resume DIR, or set "
                          "checkpoint.dir in the config");
      } else {
        if (!r.ckpt.dir[0]) snprintf(r.ckpt.dir, sizeof r.ckpt.dir, "%s", from);
        bool found;
        gan_ckpt_env_t env = ckpt_env(&r);
        rc = gan_ckpt_resume(&env, &r.gan, &r.pos, from, &found, err);
      }
    }
    if (!rc) rc = train_log_open(&r.tlog, cfg, &r.gan.g, NULL, err);
    if (!rc) {
      preempt_install();
      rc = train(&r, err);
    }
    train_log_flush(&r.tlog);
    if (!rc && r.preempted && r.ckpt.dir[0])
      dt_log_info(&r.log, "Stopped by a signal after checkpoint step %ld; continue with --resume",
                  r.pos.step);
    else if (!rc && r.preempted)
      dt_log_warn(&r.log, "Stopped by a signal at step %ld without a checkpoint (checkpoint.dir "
                  "is not set): the generator so far is in %s, but the run cannot be resumed",
                  r.pos.step, r.final_model.written);
    if (!rc && r.final_model.failed)
      dt_log_warn(&r.log, "the GAN's models could not be saved (see the errors above)");
    if (!rc && cli->save_params_path && comm->rank == 0 && !r.preempted)
      rc = save_params(&r, cli->save_params_path, err);
  }
  free_run(&r);
  return rc;
}
