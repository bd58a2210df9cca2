/* The training loop (see trainer.h). */
#define _POSIX_C_SOURCE 200809L
#include "trainer.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/clock.h"
#include "agreement.h"
#include "preempt.h"

static const char *const target_names[] = {"labels", "one_hot", "input", "bits", NULL};

static int load_data(trainer_t *t, dt_error_t *err) {
  const run_options_t *o = &t->opt;
  int rc;
  if (o->binary_addition)
    rc = dt_dataset_binary_addition(&t->train_file, &t->test_file, (int)o->bits,
                                    (size_t)o->train_samples, (size_t)o->test_samples, o->seed,
                                    err);
  else if (!(rc = dt_dataset_load_idx(&t->train_file, o->train_images, o->train_labels, err)))
    rc = dt_dataset_load_idx(&t->test_file, o->test_images, o->test_labels, err);
  if (rc) return rc;
  if (o->train_limit > 0) dt_dataset_truncate(&t->train_file, (size_t)o->train_limit);
  if (o->test_limit > 0) dt_dataset_truncate(&t->test_file, (size_t)o->test_limit);
  dt_dataset_split(&t->train_file, o->validation_split, &t->train, &t->val);
  t->test = t->test_file;
  t->test.owned_x = t->test.owned_labels = NULL;
  return 0;
}

/* The model's input must take the data's samples, and its output must fit the labels. */
static int check_model_fits_data(trainer_t *t, dt_error_t *err) {
  const dt_model_t *m = &t->model;
  char a[64], b[64];
  if (dt_model_input_size(m) != t->train.dim)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [model] input %s has %zu values but the samples of '%s' are %s",
                        dt_config_where(t->cfg, "model", "input"),
                        dt_shape_str(&m->in_shape, a, sizeof a), dt_model_input_size(m),
                        t->opt.train_images,
                        dt_shape_str(&(dt_shape_t){t->train.ndim, {t->train.shape[0],
                                                                    t->train.shape[1],
                                                                    t->train.shape[2], 1}},
                                     b, sizeof b));
  size_t out = dt_model_output_size(m);
  int classes = t->train_file.num_classes;
  const char *last = m->layers[m->nrun - 1].section;
  if ((t->target == TARGET_LABELS || t->target == TARGET_ONE_HOT) && out != (size_t)classes)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] the last layer has %zu outputs but the labels of '%s' have %d "
                        "classes: set its units = %d",
                        dt_config_where(t->cfg, last, "units"), last, out, t->opt.train_labels,
                        classes, classes);
  if (t->target == TARGET_BITS && out != (size_t)t->opt.bits)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] the model has %zu outputs but target = bits needs one per "
                        "bit of the sum (data.bits = %ld)",
                        dt_config_where(t->cfg, last, "units"), last, out, t->opt.bits);
  if (t->target == TARGET_INPUT && out != t->train.dim)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] the last layer has %zu outputs but reconstructing the input "
                        "needs %zu",
                        dt_config_where(t->cfg, last, "units"), last, out, t->train.dim);
  return 0;
}

static int read_model(trainer_t *t, dt_error_t *err) {
  int shape[DT_MAX_DIMS] = {1, 1, 1, 1}, ndim = 0, target, rc;
  dt_shape_t in = {t->train.ndim, {t->train.shape[0], t->train.shape[1], t->train.shape[2], 1}};
  /* A 3-d image shape whose channel is 1 is given to flat layers as is; the dense
   * layer flattens whatever it gets. An explicit input shape must match the data. */
  if (dt_config_has_key(t->cfg, "model", "input")) {
    if ((rc = dt_config_get_int_list(t->cfg, "model", "input", shape, 3, &ndim, err))) return rc;
    in.ndim = ndim;
    for (int i = 0; i < DT_MAX_DIMS; i++) in.dims[i] = shape[i];
  }
  if ((rc = dt_model_build(&t->model, t->device, t->cfg, in, err))) return rc;
  const char *def = dt_loss_uses_labels(t->model.loss) ? "labels"
                    : t->opt.binary_addition          ? "bits"
                                                      : "one_hot";
  if ((rc = dt_config_get_choice(t->cfg, "model", "target", def, target_names, &target, err)))
    return rc;
  t->target = (target_kind)target;
  if ((t->target == TARGET_LABELS) != (bool)dt_loss_uses_labels(t->model.loss))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [model] target = %s does not fit loss '%s'%s",
                        dt_config_where(t->cfg, "model", "target"), target_names[t->target],
                        dt_loss_names[t->model.loss],
                        t->target == TARGET_LABELS ? " (use one_hot or input)" : " (use labels)");
  return check_model_fits_data(t, err);
}

int trainer_setup(trainer_t *t, dt_config_t *cfg, const char *config_path, dt_comm_t *comm,
                  dt_device_t *dev, dt_log_t log, bool show_progress, dt_error_t *err) {
  memset(t, 0, sizeof *t);
  t->cfg = cfg;
  t->comm = comm;
  t->device = dev;
  t->log = log;
  int rc;
  t->last_ckpt_step = -1;
  if ((rc = run_options_read(cfg, &t->opt, err)) || (rc = ckpt_options_read(cfg, &t->ckpt, err)))
    return rc;
  comm->timeout_s = t->opt.timeout_s;
  comm->allreduce = (dt_allreduce_algo)t->opt.allreduce;
  dt_optim_config_t ocfg;
  if ((rc = dt_optim_config_read(cfg, &ocfg, err)) ||
      (rc = train_log_read(&t->tlog, cfg, config_path, comm->rank == 0, &t->log, err)))
    return rc;
  if ((rc = load_data(t, err))) return rc;
  if ((rc = read_model(t, err))) return rc;
  if (t->opt.ps && (rc = ps_sync_setup(&t->ps, cfg, &t->train, comm->world, &t->log, err)))
    return rc;
  bool has_acc = t->model.loss == DT_LOSS_SOFTMAX_CE || t->model.loss == DT_LOSS_BCE_LOGITS;
  t->metrics = DT_METRIC_BIT(DT_METRIC_LOSS) | (has_acc ? DT_METRIC_BIT(DT_METRIC_ACCURACY) : 0);
  if (t->val.n)
    t->metrics |= DT_METRIC_BIT(DT_METRIC_VAL_LOSS) |
                  (has_acc ? DT_METRIC_BIT(DT_METRIC_VAL_ACCURACY) : 0);
  if ((rc = dt_early_stopping_read(cfg, t->metrics, &t->early_stopping, err)) ||
      (rc = dt_reduce_lr_read(cfg, t->metrics, &t->reduce_lr, err)) ||
      (rc = dt_csv_log_read(cfg, &t->csv_opts, err)) ||
      (rc = dt_config_get_double(cfg, "train", "clipnorm", 0.0, 0.0, 1e30, &t->clipnorm, err)))
    return rc;
  if (t->ckpt.save_best_only && strncmp(t->ckpt.monitor, "val_", 4) == 0 && t->val.n == 0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [checkpoint] monitor = %s needs validation data: set "
                        "data.validation_split > 0 or monitor the training %s",
                        dt_config_where(cfg, "checkpoint", "monitor"), t->ckpt.monitor,
                        t->ckpt.monitor + 4);

  t->steps_per_epoch = (long)dt_batches_per_epoch(t->train.n, (size_t)t->opt.batch_size,
                                                  comm->world);
  if (t->steps_per_epoch == 0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [train] batch_size = %ld x %d rank(s) is larger than the %zu "
                        "training samples",
                        dt_config_where(cfg, "train", "batch_size"), t->opt.batch_size,
                        comm->world, t->train.n);
  /* The linear scaling rule (Goyal et al.): N ranks take steps N times as large on a
   * global batch N times as large; schedule.warmup_steps ramps up to it. */
  double lr = t->opt.scale_lr ? t->opt.lr * comm->world : t->opt.lr;
  if ((rc = dt_schedule_read(cfg, lr, t->steps_per_epoch, t->steps_per_epoch * t->opt.epochs,
                             &t->schedule, err)))
    return rc;
  if (t->opt.scale_lr && comm->world > 1)
    dt_log_info(&t->log, "train.scale_lr: lr %g x %d ranks = %g (warmup %ld steps)", t->opt.lr,
                comm->world, lr, t->schedule.warmup_steps);
  /* Everything has been read: anything left over is a typo or a misplaced key. */
  if ((rc = dt_config_check_unused(cfg, err))) return rc;

  /* Evaluation reuses the training batch's arena in chunks of the same size: a larger
   * chunk would be a little faster but cost memory for the whole run. */
  int capacity = (int)t->opt.batch_size;
  if ((rc = dt_model_prepare(&t->model, capacity, err)) ||
      (rc = dt_optim_init(&t->optim, &ocfg, t->model.num_params, err)))
    return rc;
  if (t->early_stopping.opt.enabled && t->early_stopping.opt.restore_best_weights &&
      !(t->best_weights = malloc(sizeof(float) * (t->model.num_params + t->model.num_states))))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for restore_best_weights");
  t->perm = malloc(sizeof *t->perm * (t->train.n ? t->train.n : 1));
  t->labels = malloc(sizeof *t->labels * (size_t)capacity);
  if (t->target != TARGET_LABELS)
    t->targets = malloc(sizeof *t->targets * (size_t)capacity * dt_model_output_size(&t->model));
  if (!t->perm || !t->labels || (t->target != TARGET_LABELS && !t->targets))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory setting up training");
  if ((rc = dt_grad_sync_init(&t->sync, comm, t->model.grad_buf, t->model.num_params,
                              t->opt.bucket_mb, err)))
    return rc;
  if (comm->world > 1) {
    t->model.on_grads_ready = dt_grad_sync_ready;
    t->model.grads_ready_ctx = &t->sync;
    run_shape_t shape = {t->model.num_params, t->steps_per_epoch, t->sync.nbuckets};
    if ((rc = agreement_check(comm, cfg, &shape, err))) return rc;
  }
  /* The watchdog test's fault switch (see trainer.h). */
  const char *stall_rank = getenv("DT_TEST_STALL_RANK");
  const char *stall_step = getenv("DT_TEST_STALL_AT_STEP");
  if (stall_rank && stall_step && atoi(stall_rank) == comm->rank)
    t->stall_at_step = atol(stall_step);

  /* Every rank initializes from the same seed; rank 0's values are broadcast anyway so
   * that ranks agree even if their initial values differed. */
  dt_rng_t init_rng;
  dt_rng_seed(&init_rng, dt_rng_mix(t->opt.seed, 0x1417));
  if ((rc = dt_model_init_params(&t->model, &init_rng, err))) return rc;
  if ((rc = dt_comm_broadcast(comm, t->model.param_buf, t->model.num_params * sizeof(float), 0,
                              err)))
    return dt_error_prefix(err, "sending the initial parameters from rank 0: ");
  dt_rng_seed(&t->rng, dt_rng_mix(dt_rng_mix(t->opt.seed, 0xd20b), (uint64_t)comm->rank));
  dt_device_set_threads(t->device, (int)t->opt.threads);
  progress_init(&t->progress, log.out, show_progress && dt_log_enabled(&log));
  return train_log_open(&t->tlog, cfg, &t->model, err);
}

/* Fills t->targets for a batch whose inputs are in acts[0] and labels in t->labels. */
static void fill_targets(trainer_t *t, int batch) {
  size_t out = dt_model_output_size(&t->model);
  if (t->target == TARGET_ONE_HOT) {
    memset(t->targets, 0, sizeof(float) * out * (size_t)batch);
    for (int b = 0; b < batch; b++) t->targets[(size_t)b * out + (size_t)t->labels[b]] = 1.0f;
  } else if (t->target == TARGET_BITS) {
    for (int b = 0; b < batch; b++)
      for (size_t i = 0; i < out; i++)
        t->targets[(size_t)b * out + i] = (float)((t->labels[b] >> i) & 1);
  } else if (t->target == TARGET_INPUT) {
    memcpy(t->targets, t->model.acts[0], sizeof(float) * out * (size_t)batch);
  }
}

int trainer_evaluate(trainer_t *t, const dt_dataset_t *ds, eval_result_t *out, dt_error_t *err) {
  dt_model_t *m = &t->model;
  int world = t->comm->world, rank = t->comm->rank;
  /* Each rank evaluates a contiguous share; the sums are added up across ranks. */
  size_t begin = ds->n * (size_t)rank / (size_t)world;
  size_t end = ds->n * (size_t)(rank + 1) / (size_t)world;
  /* loss * samples, correct, accuracy total, samples, samples with every output right */
  double sums[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
  uint32_t idx[1024];
  for (size_t pos = begin; pos < end;) {
    int chunk = (int)(end - pos < (size_t)m->capacity ? end - pos : (size_t)m->capacity);
    if (chunk > 1024) chunk = 1024;
    for (int i = 0; i < chunk; i++) idx[i] = (uint32_t)(pos + (size_t)i);
    dt_dataset_gather(ds, idx, (size_t)chunk, m->acts[0], t->labels);
    fill_targets(t, chunk);
    const float *y = dt_model_forward(m, chunk, false, &t->rng);
    int dim = (int)dt_model_output_size(m);
    sums[0] += dt_loss_compute(m->loss, y, chunk, dim, t->labels, t->targets, NULL) * chunk;
    if (t->target == TARGET_BITS)
      for (int b = 0; b < chunk; b++) {
        bool all = true;
        for (int i = 0; i < dim; i++)
          all &= (y[b * dim + i] > 0.0f) == (t->targets[b * dim + i] > 0.5f);
        sums[4] += all;
      }
    size_t total;
    sums[1] += (double)dt_loss_count_correct(m->loss, y, chunk, dim, t->labels, t->targets, &total);
    sums[2] += (double)total;
    sums[3] += chunk;
    pos += (size_t)chunk;
  }
  int rc = dt_comm_allreduce_sum_f64(t->comm, sums, 5, err);
  if (rc) return rc;
  out->samples = (size_t)sums[3];
  out->loss = sums[3] > 0 ? sums[0] / sums[3] : NAN;
  out->accuracy = sums[2] > 0 ? sums[1] / sums[2] : NAN;
  out->exact = t->target == TARGET_BITS && sums[3] > 0 ? sums[4] / sums[3] : NAN;
  return 0;
}

/* The schedule's lr for the current step, scaled down by ReduceLROnPlateau. */
static double current_lr(const trainer_t *t) {
  return dt_reduce_lr_apply(&t->reduce_lr, dt_schedule_lr(&t->schedule, t->step));
}

/* One optimization step on global batch g of the current epoch; returns the batch's
 * mean loss and adds to the correct/total counters. */
static int train_step(trainer_t *t, size_t g, double *loss, double *correct, double *total,
                      step_times_t *times, dt_error_t *err) {
  dt_model_t *m = &t->model;
  double t0 = dt_now_s();
  dt_grad_sync_begin(&t->sync, t->step + 1);
  if (t->stall_at_step == t->step + 1) {
    dt_log_warn(&t->log, "DT_TEST_STALL_RANK/DT_TEST_STALL_AT_STEP: this rank stops answering "
                "at step %ld (a fault switch for tests)", t->step + 1);
    for (;;) pause();
  }
  int batch = (int)t->opt.batch_size;
  const uint32_t *idx =
      dt_shard_batch(t->perm, g, (size_t)batch, t->comm->rank, t->comm->world);
  dt_dataset_gather(&t->train, idx, (size_t)batch, m->acts[0], t->labels);
  fill_targets(t, batch);
  double t1 = dt_now_s();
  const float *y = dt_model_forward(m, batch, true, &t->rng);
  int dim = (int)dt_model_output_size(m);
  *loss = dt_loss_compute(m->loss, y, batch, dim, t->labels, t->targets, m->dout);
  size_t n;
  *correct += (double)dt_loss_count_correct(m->loss, y, batch, dim, t->labels, t->targets, &n);
  *total += (double)n;
  dt_model_backward(m, batch);
  double t2 = dt_now_s();
  int rc = dt_grad_sync_finish(&t->sync, err);
  if (rc) return rc;
  /* The gradients are the same on every rank by now, so clipping agrees too. */
  if (t->clipnorm > 0) dt_clip_by_global_norm(m->grad_buf, m->num_params, (float)t->clipnorm);
  double t3 = dt_now_s();
  float lr = (float)current_lr(t);
  if (t->opt.ps) {
    /* The parameter servers run the optimizer: gradients go out, parameters come in. */
    if ((rc = ps_sync_step(&t->ps, m, lr, err))) return rc;
  } else {
    dt_optim_begin_step(&t->optim);
    dt_optim_update(&t->optim, m->param_buf, m->grad_buf, 0, m->num_params, lr, m->params,
                    m->nparams);
  }
  double t4 = dt_now_s();
  times->data_s = t1 - t0;
  times->compute_s = (t2 - t1) + (t4 - t3);
  times->comm_s = t3 - t2;
  t->comm_wait_s += t3 - t2;
  t->step_s += t4 - t0;
  train_log_step(&t->tlog, t->step, *loss, lr, (double)batch * t->comm->world / (t4 - t0), times);
  t->step++;
  t->steps_run++;
  return 0;
}

/* batches: those this process ran in the epoch (fewer than an epoch after a resume). */
static void print_epoch(trainer_t *t, long epoch, long batches, double seconds, double loss,
                        double acc, const eval_result_t *val) {
  char line[512], steps[48];
  /* After a resume in the middle of an epoch, say how much of it this run did. */
  if (batches == t->steps_per_epoch) snprintf(steps, sizeof steps, "%ld steps", batches);
  else snprintf(steps, sizeof steps, "%ld of %ld steps", batches, t->steps_per_epoch);
  size_t used = (size_t)snprintf(line, sizeof line, "Epoch %ld/%ld - %s - %.1fs - loss: %.4f",
                                 epoch, t->opt.epochs, steps, seconds, loss);
  if (!isnan(acc)) used += (size_t)snprintf(line + used, sizeof line - used, " - accuracy: %.4f", acc);
  if (val && val->samples) {
    used += (size_t)snprintf(line + used, sizeof line - used, " - val_loss: %.4f", val->loss);
    if (!isnan(val->accuracy))
      used += (size_t)snprintf(line + used, sizeof line - used, " - val_accuracy: %.4f",
                               val->accuracy);
  }
  double samples = (double)batches * (double)t->opt.batch_size * t->comm->world;
  snprintf(line + used, sizeof line - used, " - %.0f samples/s", samples / seconds);
  dt_log_info(&t->log, "%s", line);
}

/* True when a SIGTERM/SIGINT asks the run to stop. In a multi-rank job the ranks
 * agree on it, every PREEMPT_POLL_STEPS steps, so that they stop at the same step
 * (a signal may reach them at different moments, or only some of them). */
enum { PREEMPT_POLL_STEPS = 16 };
static int stop_requested(trainer_t *t, bool *stop, dt_error_t *err) {
  *stop = false;
  if (t->comm->world == 1) {
    *stop = preempt_signal() != 0;
    return 0;
  }
  if (t->step % PREEMPT_POLL_STEPS != 0) return 0;
  double flag = preempt_signal() != 0;
  int rc = dt_comm_allreduce_sum_f64(t->comm, &flag, 1, err);
  *stop = flag > 0;
  return rc;
}

/* A checkpoint that cannot be written is reported and training goes on: the run
 * itself is not lost, and `latest` still names the previous good checkpoint. */
static void save_or_warn(trainer_t *t, const char *why) {
  dt_error_t err = {0};
  if (ckpt_save(t, why, &err)) {
    t->ckpt_failures++;
    dt_log_error(&t->log, "checkpoint not written, training goes on: %s", err.msg);
  }
}

/* The value of checkpoint.monitor for this epoch; NaN if there is none. */
static double monitored(const trainer_t *t, double loss, double acc, const eval_result_t *val) {
  const char *m = t->ckpt.monitor;
  if (strcmp(m, "loss") == 0) return loss;
  if (strcmp(m, "accuracy") == 0) return acc;
  if (!val->samples) return NAN;
  return strcmp(m, "val_loss") == 0 ? val->loss : val->accuracy;
}

/* An autoencoder's first validation (or test) images and their reconstructions, to
 * TensorBoard. Runs on the logging rank only; it reuses the training arena. */
static void log_reconstructions(trainer_t *t, long epoch) {
  dt_model_t *m = &t->model;
  const dt_dataset_t *ds = t->val.n ? &t->val : &t->test;
  int n = m->capacity < 8 ? m->capacity : 8;
  if ((size_t)n > ds->n) n = (int)ds->n;
  if (!t->tlog.enabled || ds->ndim < 2 || n <= 0) return;
  uint32_t idx[8];
  for (int i = 0; i < n; i++) idx[i] = (uint32_t)i;
  dt_dataset_gather(ds, idx, (size_t)n, m->acts[0], t->labels);
  size_t dim = dt_model_input_size(m);
  float inputs[8 * 784], *out = malloc(sizeof(float) * (size_t)n * dim);
  if (!out || dim > 784) {
    free(out);
    return;
  }
  memcpy(inputs, m->acts[0], sizeof(float) * (size_t)n * dim);
  const float *y = dt_model_forward(m, n, false, &t->rng);
  /* Logits of BCE go through the sigmoid that the loss fuses. */
  for (size_t i = 0; i < (size_t)n * dim; i++)
    out[i] = m->loss == DT_LOSS_BCE_LOGITS ? 1.0f / (1.0f + expf(-y[i])) : y[i];
  train_log_reconstructions(&t->tlog, epoch, inputs, out, n, ds->shape[0], ds->shape[1]);
  free(out);
}

/* The epoch's callbacks: CSV row, ReduceLROnPlateau, EarlyStopping (which keeps a
 * copy of the best weights for restore_best_weights). */
static int run_callbacks(trainer_t *t, long epoch, double loss, double acc,
                         const eval_result_t *val, dt_error_t *err) {
  dt_epoch_metrics_t em = {{loss, acc, val->samples ? val->loss : NAN,
                            val->samples ? val->accuracy : NAN}};
  double lr = current_lr(t);
  int rc;
  if (t->csv.f && (rc = dt_csv_log_row(&t->csv, epoch + 1, &em, lr, err))) return rc;
  if (t->reduce_lr.opt.enabled) {
    bool reduced;
    dt_reduce_lr_update(&t->reduce_lr, em.v[t->reduce_lr.opt.monitor], lr, &reduced);
    if (reduced)
      dt_log_info(&t->log, "Epoch %ld: ReduceLROnPlateau: %s did not improve for %ld epochs, "
                  "learning rate now %g", epoch + 1, dt_metric_names[t->reduce_lr.opt.monitor],
                  t->reduce_lr.opt.patience, current_lr(t));
  }
  dt_early_stopping_t *es = &t->early_stopping;
  if (es->opt.enabled) {
    dt_early_stopping_decision_t d = dt_early_stopping_update(es, em.v[es->opt.monitor], epoch);
    if (d.improved && t->best_weights) {
      memcpy(t->best_weights, t->model.param_buf, sizeof(float) * t->model.num_params);
      memcpy(t->best_weights + t->model.num_params, t->model.state_buf,
             sizeof(float) * t->model.num_states);
    }
    if (d.stop)
      dt_log_info(&t->log, "Epoch %ld: early stopping: %s has not improved for %ld epochs (best "
                  "%.4f at epoch %ld)", epoch + 1, dt_metric_names[es->opt.monitor],
                  (long)es->st.wait, es->st.best, (long)es->st.best_epoch + 1);
  }
  return 0;
}

/* The end of an epoch: metrics across ranks, validation, the epoch line and log, and
 * the epoch's checkpoint. */
static int finish_epoch(trainer_t *t, long batches, double seconds, dt_error_t *err) {
  long epoch = t->epoch;
  /* Training metrics are the mean over this rank's batches, averaged across ranks. */
  double sums[3] = {t->epoch_batches ? t->epoch_loss_sum / (double)t->epoch_batches : NAN,
                    t->epoch_correct, t->epoch_total};
  int rc = dt_comm_allreduce_sum_f64(t->comm, sums, 3, err);
  if (rc) return dt_error_prefix(err, "epoch %ld metrics: ", epoch + 1);
  /* Batch norm's moving averages follow each rank's own batches; their average makes
   * every rank evaluate, and save, the same model (TF's MirroredStrategy does so too).
   * Training itself uses batch statistics, so this changes no gradient. */
  if (t->model.num_states && t->comm->world > 1 &&
      (rc = dt_comm_allreduce_avg(t->comm, t->model.state_buf, t->model.num_states, err)))
    return dt_error_prefix(err, "averaging the layers' state: ");
  eval_result_t val = {0};
  if (t->val.n && (rc = trainer_evaluate(t, &t->val, &val, err))) return rc;
  double train_acc = sums[2] > 0 ? sums[1] / sums[2] : NAN;
  double loss = sums[0] / t->comm->world;
  print_epoch(t, epoch + 1, batches, seconds, loss, train_acc, &val);
  train_log_epoch(&t->tlog, epoch + 1, loss, train_acc, val.samples ? val.loss : NAN,
                  val.samples ? val.accuracy : NAN, &t->model);

  if (t->target == TARGET_INPUT) log_reconstructions(t, epoch + 1);
  if ((rc = run_callbacks(t, epoch, loss, train_acc, &val, err))) return rc;

  /* The position moves to the start of the next epoch before the checkpoint. */
  t->epoch++;
  t->batch_in_epoch = 0;
  t->epoch_loss_sum = t->epoch_correct = t->epoch_total = 0.0;
  t->epoch_batches = 0;
  if (!t->ckpt.dir[0]) return 0;
  double value = monitored(t, loss, train_acc, &val);
  bool improved = !isnan(value) &&
                  (!t->has_best || (t->ckpt.mode == MONITOR_MIN ? value < t->best_metric
                                                                : value > t->best_metric));
  if (improved) {
    t->best_metric = value;
    t->has_best = true;
  }
  bool due = t->ckpt.every_epochs && t->epoch % t->ckpt.every_epochs == 0;
  if (due && (!t->ckpt.save_best_only || improved)) {
    char why[96];
    snprintf(why, sizeof why, improved ? "epoch %ld, best %s %.4f" : "epoch %ld", t->epoch,
             t->ckpt.monitor, value);
    save_or_warn(t, why);
    /* `best` keeps the best checkpoint from pruning and tells users which it is. */
    if (improved && t->last_ckpt_step == t->step && t->comm->rank == 0) {
      char name[64];
      snprintf(name, sizeof name, "ckpt-%010ld", t->step);
      dt_error_t berr = {0};
      if (dt_ckpt_set_best(t->ckpt.dir, name, &berr))
        dt_log_warn(&t->log, "cannot mark the best checkpoint: %s", berr.msg);
    }
  }
  return 0;
}

/* True once EarlyStopping has decided (also in a checkpoint that a run resumes). */
static bool stopped_early(const trainer_t *t) {
  return t->early_stopping.opt.enabled && t->early_stopping.st.stopped_epoch >= 0;
}

int trainer_run(trainer_t *t, dt_error_t *err) {
  int rc;
  /* After a --resume, so that the servers' parameters win over the checkpoint's. */
  if (t->opt.ps && (rc = ps_sync_start(&t->ps, &t->model, &t->optim.cfg, t->opt.timeout_s, err)))
    return rc;
  /* The CSV log of a resumed run keeps the rows of the epochs the checkpoint has. */
  if (t->csv_opts.path[0] && t->comm->rank == 0 &&
      (rc = dt_csv_log_open(&t->csv, t->csv_opts.path, t->csv_opts.append || t->resumed,
                            t->resumed ? t->epoch : LONG_MAX, t->metrics, err)))
    return rc;
  while (t->epoch < t->opt.epochs && !stopped_early(t)) {
    dt_epoch_permutation(t->opt.seed, (uint64_t)t->epoch, t->perm, t->train.n);
    progress_begin(&t->progress, t->steps_per_epoch);
    double start = dt_now_s();
    long first = t->batch_in_epoch;
    for (long g = first; g < t->steps_per_epoch; g++) {
      double loss;
      step_times_t times;
      if ((rc = train_step(t, (size_t)g, &loss, &t->epoch_correct, &t->epoch_total, &times, err)))
        return rc;
      if (!isfinite(loss))
        return dt_error_set(err, DT_ERR_STATE,
                            "the training loss became %s at step %ld (epoch %ld); lower "
                            "train.lr or check the data",
                            isnan(loss) ? "NaN" : "infinite", t->step, t->epoch + 1);
      t->epoch_loss_sum += loss;
      t->epoch_batches++;
      t->batch_in_epoch = g + 1;
      progress_update(&t->progress, g + 1, t->epoch_loss_sum / (double)t->epoch_batches,
                      t->epoch_total > 0 ? t->epoch_correct / t->epoch_total : NAN);
      bool stop;
      if ((rc = stop_requested(t, &stop, err))) return rc;
      if (stop) {
        progress_end(&t->progress);
        int sig = preempt_signal();
        dt_log_warn(&t->log, "%s: stopping after step %ld (epoch %ld, batch %ld)",
                    sig == SIGINT    ? "SIGINT received"
                    : sig == SIGTERM ? "SIGTERM received"
                    : sig == SIGUSR1 ? "SIGUSR1 received"
                                     : "another rank received a stop signal",
                    t->step, t->epoch + 1, t->batch_in_epoch);
        if (t->opt.ps && (rc = ps_sync_leave(&t->ps, &t->model, err))) return rc;
        if (!t->ckpt.dir[0])
          return dt_error_set(err, DT_ERR_STATE, "stopped by a signal at step %ld without a "
                              "checkpoint: set checkpoint.dir to keep the progress", t->step);
        if ((rc = ckpt_save(t, "preempted", err))) return rc;
        train_log_flush(&t->tlog);
        t->preempted = true;
        return 0;
      }
      if (t->ckpt.dir[0] && t->ckpt.every_steps && t->step % t->ckpt.every_steps == 0) {
        char why[64];
        snprintf(why, sizeof why, "every %ld steps", t->ckpt.every_steps);
        save_or_warn(t, why);
      }
    }
    double seconds = dt_now_s() - start;
    progress_end(&t->progress);
    if ((rc = finish_epoch(t, t->steps_per_epoch - first, seconds, err))) return rc;
  }
  const dt_early_stopping_t *es = &t->early_stopping;
  if (t->best_weights && es->st.has_best) {
    memcpy(t->model.param_buf, t->best_weights, sizeof(float) * t->model.num_params);
    memcpy(t->model.state_buf, t->best_weights + t->model.num_params,
           sizeof(float) * t->model.num_states);
    dt_log_info(&t->log, "Restored the weights of epoch %ld (best %s %.4f)",
                (long)es->st.best_epoch + 1, dt_metric_names[es->opt.monitor], es->st.best);
  }
  if (t->comm->world > 1 && t->steps_run > 0)
    dt_log_info(&t->log, "Sync: %d ranks, %d gradient bucket(s) of up to %.2f MB; waiting for "
                "gradients after backward: %.3f ms/step, %.1f%% of step time", t->comm->world,
                t->sync.nbuckets, (double)t->sync.bucket * sizeof(float) / (1 << 20),
                1e3 * t->comm_wait_s / (double)t->steps_run, 100.0 * t->comm_wait_s / t->step_s);
  if (t->opt.ps && (rc = ps_sync_finish(&t->ps, &t->model, err))) return rc;
  if ((rc = trainer_evaluate(t, &t->test, &t->test_result, err))) return rc;
  train_log_flush(&t->tlog);
  if (isnan(t->test_result.accuracy))
    dt_log_info(&t->log, "Test: loss: %.4f (%zu samples)", t->test_result.loss,
                t->test_result.samples);
  else if (!isnan(t->test_result.exact))
    dt_log_info(&t->log, "Test: loss: %.4f - accuracy: %.4f - all bits right: %.4f (%zu samples)",
                t->test_result.loss, t->test_result.accuracy, t->test_result.exact,
                t->test_result.samples);
  else
    dt_log_info(&t->log, "Test: loss: %.4f - accuracy: %.4f (%zu samples)", t->test_result.loss,
                t->test_result.accuracy, t->test_result.samples);
  return 0;
}

void trainer_free(trainer_t *t) {
  ps_sync_free(&t->ps);
  train_log_close(&t->tlog);
  if (t->csv.f) dt_csv_log_close(&t->csv, NULL);
  free(t->best_weights);
  dt_model_free(&t->model);
  dt_optim_free(&t->optim);
  dt_dataset_free(&t->train_file);
  dt_dataset_free(&t->test_file);
  free(t->perm);
  free(t->labels);
  free(t->targets);
  memset(t, 0, sizeof *t);
}
