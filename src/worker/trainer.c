/* The training loop (see trainer.h). */
#define _POSIX_C_SOURCE 200809L
#include "trainer.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/clip.h"
#include "dtrain/clock.h"
#include "dtrain/keras.h"
#include "dtrain/loader.h"
#include "preempt.h"

static const char *const target_names[] = {"labels", "one_hot", "input", "bits", "values", NULL};

/* The largest label of ds, or -1 without labels. */
static int max_label(const dt_dataset_t *ds) {
  int max = -1;
  for (size_t i = 0; ds->ykind == DT_Y_CLASSES && i < ds->n; i++) {
    int v = (int)dt_array_get(&ds->y, ds->first + i, 0);
    if (v > max) max = v;
  }
  return max;
}

/* The file a dataset's targets come from, for messages. */
static const char *targets_file(const dt_dataset_t *ds) {
  return ds->y_what ? ds->y_what : ds->what;
}

/* The model's input must take the data's samples, and its output must fit the targets. */
static int check_model_fits_data(trainer_t *t, dt_error_t *err) {
  const dt_model_t *m = &t->model;
  const run_data_t *d = &t->data;
  const dt_dataset_t *train = &d->file[SPLIT_TRAIN];
  char a[64], b[64];
  if (dt_model_input_size(m) != train->dim)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [model] input %s has %zu values but the samples of '%s' are %s",
                        dt_config_where(t->cfg, "model", "input"),
                        dt_shape_str(&m->in_shape, a, sizeof a), dt_model_input_size(m),
                        train->what,
                        dt_shape_str(&(dt_shape_t){train->ndim, {train->shape[0], train->shape[1],
                                                                  train->shape[2], 1}},
                                     b, sizeof b));
  size_t out = dt_model_output_size(m);
  int classes = train->num_classes;
  const char *last = m->layers[m->nrun - 1].section;
  bool by_class = t->target == TARGET_LABELS || t->target == TARGET_ONE_HOT;
  if (by_class && out != (size_t)classes)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] the last layer has %zu outputs but the labels of '%s' have %d "
                        "classes: set its units = %d",
                        dt_config_where(t->cfg, last, "units"), last, out, targets_file(train),
                        classes, classes);
  /* Validation and test files are read on their own: a label the model has no output
   * for would make the loss read past the sample's outputs (issue 14, defect 9). */
  for (int s = SPLIT_VAL; by_class && s < NSPLITS; s++) {
    const dt_dataset_t *f = &d->file[s];
    int max = max_label(f);
    if (f->what && max >= (int)out)
      return dt_error_set(err, DT_ERR_FORMAT,
                          "'%s': %s label %d, but the model has %zu outputs (classes 0 to %zu, "
                          "from the training labels of '%s')",
                          targets_file(f), s == SPLIT_VAL ? "validation" : "test", max, out,
                          out - 1, targets_file(train));
  }
  if (t->target == TARGET_BITS && out != (size_t)d->opt.bits)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] the model has %zu outputs but target = bits needs one per "
                        "bit of the sum (data.bits = %ld)",
                        dt_config_where(t->cfg, last, "units"), last, out, d->opt.bits);
  if (t->target == TARGET_INPUT && out != train->dim)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] the last layer has %zu outputs but reconstructing the input "
                        "needs %zu",
                        dt_config_where(t->cfg, last, "units"), last, out, train->dim);
  if (t->target == TARGET_VALUES) {
    if (train->ykind == DT_Y_NONE)
      return dt_error_set(err, DT_ERR_CONFIG, "%s: [model] target = values, but '%s' has no "
                          "targets", dt_config_where(t->cfg, "model", "target"), train->what);
    if (out != train->y.row)
      return dt_error_set(err, DT_ERR_SHAPE,
                          "%s: [%s] the last layer has %zu outputs but the targets of '%s' "
                          "have %zu value%s per sample: set its units = %zu",
                          dt_config_where(t->cfg, last, "units"), last, out, targets_file(train),
                          train->y.row, train->y.row == 1 ? "" : "s", train->y.row);
  }
  return 0;
}

/* Binary cross-entropy learns probabilities: every target value must lie in [0, 1]. */
static int check_bce_targets(const trainer_t *t, dt_error_t *err) {
  for (int s = 0; s < NSPLITS; s++) {
    const dt_dataset_t *f = &t->data.file[s];
    if (!f->what || f->ykind == DT_Y_NONE) continue;
    for (size_t i = 0; i < f->n; i++)
      for (size_t j = 0; j < f->y.row; j++) {
        double v = dt_array_get(&f->y, f->first + i, j);
        if (!(v >= 0.0 && v <= 1.0)) {
          char where[64];
          return dt_error_set(err, DT_ERR_FORMAT, "'%s': %s: target %g, but "
                              "binary_crossentropy needs targets in [0, 1] (0/1 labels for a "
                              "single sigmoid unit)", targets_file(f),
                              dt_dataset_sample_where(f, i, where, sizeof where), v);
        }
      }
  }
  return 0;
}

/* The target a loss trains against when [model] target is not set. */
static const char *default_target(const trainer_t *t) {
  const dt_dataset_t *train = &t->data.file[SPLIT_TRAIN];
  if (dt_loss_uses_labels(t->model.loss)) return "labels";
  if (t->data.opt.format == FORMAT_BINARY_ADDITION) return "bits";
  if (train->ykind == DT_Y_NONE) return "input";
  /* A 0/1 label for one sigmoid unit, or regression values: the targets as they are. */
  if (dt_model_output_size(&t->model) == train->y.row) return "values";
  return "one_hot";
}

static int read_model(trainer_t *t, dt_error_t *err) {
  int shape[DT_MAX_DIMS] = {1, 1, 1, 1}, ndim = 0, target, rc;
  const dt_dataset_t *train = &t->data.file[SPLIT_TRAIN];
  dt_shape_t in = {train->ndim, {train->shape[0], train->shape[1], train->shape[2], 1}};
  /* A 3-d image shape whose channel is 1 is given to flat layers as is; the dense
   * layer flattens whatever it gets. An explicit input shape must match the data. */
  if (dt_config_has_key(t->cfg, "model", "input")) {
    if ((rc = dt_config_get_int_list(t->cfg, "model", "input", shape, 3, &ndim, err))) return rc;
    in.ndim = ndim;
    for (int i = 0; i < DT_MAX_DIMS; i++) in.dims[i] = shape[i];
  }
  /* A NumPy list of input arrays (train_x = x.npz:a, x.npz:b) gives one model input each. */
  dt_shape_t ins[DT_MAX_IO_PARTS] = {in};
  int nin = t->data.nx_parts > 1 ? t->data.nx_parts : 1;
  if (nin > 1) memcpy(ins, t->data.x_parts, sizeof ins[0] * (size_t)nin);
  if ((rc = dt_model_build_multi(&t->model, t->device, t->cfg, ins, nin, err))) return rc;
  if (t->model.nout > 1) {
    /* Several outputs train on the data's target values, split among them (multi_io.h). */
    if ((rc = dt_config_get_choice(t->cfg, "model", "target", "values", target_names, &target,
                                   err)))
      return rc;
    if (target != TARGET_VALUES)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [model] target = %s: a model with several outputs trains on the "
                          "data's target values (target = values)",
                          dt_config_where(t->cfg, "model", "target"), target_names[target]);
    t->target = TARGET_VALUES;
    if ((rc = run_data_prepare(&t->data, t->cfg, false, false, err))) return rc;
    return multi_io_setup(&t->mio, &t->model, &t->data, t->cfg, (int)t->opt.batch_size, err);
  }
  if ((rc = dt_config_get_choice(t->cfg, "model", "target", default_target(t), target_names,
                                 &target, err)))
    return rc;
  t->target = (target_kind)target;
  if ((t->target == TARGET_LABELS) != (bool)dt_loss_uses_labels(t->model.loss))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [model] target = %s does not fit loss '%s'%s",
                        dt_config_where(t->cfg, "model", "target"), target_names[t->target],
                        dt_loss_names[t->model.loss],
                        t->target == TARGET_LABELS ? " (use one_hot, values or input)"
                                                   : " (use labels)");
  bool by_class = t->target == TARGET_LABELS || t->target == TARGET_ONE_HOT;
  bool embedding_input = strcmp(t->model.layers[0].ops->type, "embedding") == 0;
  if ((rc = run_data_prepare(&t->data, t->cfg, by_class, embedding_input, err))) return rc;
  if (t->model.loss == DT_LOSS_BCE_LOGITS && t->target == TARGET_VALUES &&
      (rc = check_bce_targets(t, err)))
    return rc;
  if ((rc = check_model_fits_data(t, err))) return rc;
  /* Several inputs: evaluation gathers a batch's samples here before scattering them. */
  if (nin > 1 &&
      !(t->mio.x = malloc(sizeof *t->mio.x * dt_model_input_size(&t->model) *
                          (size_t)t->opt.batch_size)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the model's inputs");
  return 0;
}

/* The replicas start from the same parameters: rank 0's are broadcast. */
static int broadcast_initial_params(trainer_t *t, dt_error_t *err) {
  float *params;
  int rc = dt_model_to_host(&t->model, DT_MODEL_PARAMS, &params, err);
  if (!rc) rc = dt_comm_broadcast(t->comm, params, t->model.num_params * sizeof(float), 0, err);
  if (!rc) rc = dt_model_from_host(&t->model, DT_MODEL_PARAMS, err);
  return rc ? dt_error_prefix(err, "sending the initial parameters from rank 0: ") : 0;
}

/* [model] init_weights: start from the weights of a file in dtrain's tensor names (an
 * import's init_weights.safetensors, a checkpoint's model.safetensors) instead of the
 * initializers; a resumed run's checkpoint replaces them afterwards. */
static int load_init_weights(trainer_t *t, dt_error_t *err) {
  const char *path;
  int rc = dt_config_get_string(t->cfg, "model", "init_weights", "", &path, err);
  if (rc || !path[0]) return rc;
  if ((rc = dt_keras_weights_load(&t->model, path, err)))
    dt_error_prefix(err, "%s: ", dt_config_where(t->cfg, "model", "init_weights"));
  return rc;
}

int trainer_setup(trainer_t *t, dt_config_t *cfg, const char *config_path, dt_comm_t *comm,
                  dt_device_t *dev, dt_log_t log, const trainer_flags_t *flags,
                  dt_error_t *err) {
  memset(t, 0, sizeof *t);
  t->cfg = cfg;
  t->comm = comm;
  t->device = dev;
  t->log = log;
  t->hooks = flags->hooks;
  run_state_init(&t->run);
  int rc;
  if ((rc = run_options_read(cfg, &t->opt, err)) || (rc = ckpt_options_read(cfg, &t->ckpt, err)) ||
      (rc = final_model_read(cfg, &t->final_model, err)))
    return rc;
  t->opt.resume = flags->resume;
  comm->timeout_s = t->opt.timeout_s;
  comm->allreduce = (dt_allreduce_algo)t->opt.allreduce;
  dt_optim_config_t ocfg;
  if ((rc = dt_optim_config_read(cfg, &ocfg, err)) ||
      (rc = train_log_read(&t->tlog, cfg, config_path, comm->rank == 0, &t->log, err)))
    return rc;
  if ((rc = run_data_read(&t->data, cfg, err)) ||
      (rc = run_data_load(&t->data, cfg, t->opt.seed, err)) || (rc = read_model(t, err)))
    return rc;
  exchange_env_t xenv = {cfg, &t->opt, comm, &t->log, &t->model, &t->optim, &t->hooks};
  if ((rc = exchange_setup(&t->exchange, &xenv, &t->data.train, err))) return rc;
  bool has_acc = t->model.nout == 1 &&
                 (t->model.loss == DT_LOSS_SOFTMAX_CE || t->model.loss == DT_LOSS_BCE_LOGITS);
  t->metrics = DT_METRIC_BIT(DT_METRIC_LOSS) | (has_acc ? DT_METRIC_BIT(DT_METRIC_ACCURACY) : 0);
  if (t->data.val.n)
    t->metrics |= DT_METRIC_BIT(DT_METRIC_VAL_LOSS) |
                  (has_acc ? DT_METRIC_BIT(DT_METRIC_VAL_ACCURACY) : 0);
  if ((rc = dt_early_stopping_read(cfg, t->metrics, &t->run.early_stopping, err)) ||
      (rc = dt_reduce_lr_read(cfg, t->metrics, &t->run.reduce_lr, err)) ||
      (rc = dt_csv_log_read(cfg, &t->csv_opts, err)))
    return rc;
  if (t->ckpt.save_best_only && strncmp(t->ckpt.monitor, "val_", 4) == 0 && t->data.val.n == 0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [checkpoint] monitor = %s needs validation data: set "
                        "data.validation_split > 0 or monitor the training %s",
                        dt_config_where(cfg, "checkpoint", "monitor"), t->ckpt.monitor,
                        t->ckpt.monitor + 4);

  t->steps_per_epoch = (long)dt_batches_per_epoch(t->data.train.n, (size_t)t->opt.batch_size,
                                                  comm->world);
  if (t->steps_per_epoch == 0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [train] batch_size = %ld x %d rank(s) is larger than the %zu "
                        "training samples",
                        dt_config_where(cfg, "train", "batch_size"), t->opt.batch_size,
                        comm->world, t->data.train.n);
  /* The linear scaling rule (Goyal et al.): N ranks take steps N times as large on a
   * global batch N times as large; schedule.warmup_steps ramps up to it. */
  double lr = t->opt.scale_lr ? t->opt.lr * comm->world : t->opt.lr;
  if ((rc = dt_schedule_read(cfg, lr, t->steps_per_epoch, t->steps_per_epoch * t->opt.epochs,
                             &t->schedule, err)))
    return rc;
  if (t->opt.scale_lr && comm->world > 1)
    dt_log_info(&t->log, "train.scale_lr: lr %g x %d ranks = %g (warmup %ld steps)", t->opt.lr,
                comm->world, lr, t->schedule.warmup_steps);
  /* [model] init_weights is loaded after initialization (load_init_weights). */
  const char *init_weights;
  if ((rc = dt_config_get_string(cfg, "model", "init_weights", "", &init_weights, err))) return rc;
  /* Everything has been read: anything left over is a typo or a misplaced key. */
  if ((rc = dt_config_check_unused(cfg, err)) || flags->config_only) return rc;

  /* Evaluation reuses the training batch's arena in chunks of the same size: a larger
   * chunk would be a little faster but cost memory for the whole run. */
  int capacity = (int)t->opt.batch_size;
  /* The threads first: the convolutions' workspaces are sized for them. */
  t->opt.threads = run_options_threads(&t->opt, dt_comm_mpi_launched());
  if ((rc = dt_device_set_threads(t->device, (int)t->opt.threads, err))) return rc;
  const dt_device_math_t math = {.conv = (dt_conv_impl)t->opt.conv,
                                 .precision = (dt_precision)t->opt.precision};
  if ((rc = dt_device_set_math(t->device, &math, err)))
    return dt_error_prefix(err, "%s: [train] precision = %s, conv = %s: ",
                           dt_config_where(cfg, "train", "precision"),
                           math.precision == DT_PRECISION_BF16 ? "bf16" : "fp32",
                           math.conv == DT_CONV_IM2COL   ? "im2col"
                           : math.conv == DT_CONV_ONEDNN ? "onednn"
                                                         : "auto");
  if ((rc = dt_model_prepare(&t->model, capacity, err)) ||
      (rc = dt_optim_init(&t->optim, &ocfg, t->model.num_params, err)))
    return rc;
  t->optim.parallel = dt_device_parallel(t->device);
  const dt_early_stopping_opts_t *es = &t->run.early_stopping.opt;
  if (es->enabled && es->restore_best_weights &&
      !(t->run.best_weights = malloc(sizeof(float) * (t->model.num_params + t->model.num_states))))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for restore_best_weights");
  t->perm = malloc(sizeof *t->perm * (t->data.train.n ? t->data.train.n : 1));
  t->labels = malloc(sizeof *t->labels * (size_t)capacity);
  if (t->target != TARGET_LABELS)
    t->targets = malloc(sizeof *t->targets * (size_t)capacity * dt_model_output_size(&t->model));
  if (!t->perm || !t->labels || (t->target != TARGET_LABELS && !t->targets))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory setting up training");
  if ((rc = exchange_prepare(&t->exchange, t->steps_per_epoch, err))) return rc;
  if (!(t->preprocess_json = run_data_preprocess_json(&t->data)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory describing the preprocessing");

  /* Every rank initializes from the same seed; rank 0's values are broadcast anyway so
   * that ranks agree even if their initial values differed. */
  dt_rng_t init_rng;
  dt_rng_seed(&init_rng, dt_rng_mix(t->opt.seed, 0x1417));
  if ((rc = dt_model_init_params(&t->model, &init_rng, err))) return rc;
  if ((rc = load_init_weights(t, err))) return rc;
  if ((rc = broadcast_initial_params(t, err))) return rc;
  dt_rng_seed(&t->run.rng, dt_rng_mix(dt_rng_mix(t->opt.seed, 0xd20b), (uint64_t)comm->rank));
  /* A VAE: its loss terms are reported apart, and its prior samples pictured. */
  t->has_aux = dt_model_has_aux_loss(&t->model);
  dt_error_t lerr = {0};
  t->has_latent = t->has_aux && latent_find(&t->model, NULL, &t->latent, &lerr) == 0 &&
                  t->latent.from >= 0;
  progress_init(&t->progress, log.out, dt_log_enabled(&log) ? flags->progress : PROGRESS_OFF,
                flags->progress_every_s);
  return 0;
}

/* Fills t->targets for a batch whose inputs are in acts[0] and labels in t->labels. */
static void fill_targets(trainer_t *t, int batch) {
  model_fill_targets(&t->model, t->target, t->labels, t->targets, batch);
}

int trainer_evaluate(trainer_t *t, const dt_dataset_t *ds, eval_result_t *out, dt_error_t *err) {
  /* Evaluation's noise (a VAE's sampling) is a stream of its own, the same for every
   * evaluation: evaluating never moves the training stream, and epochs compare alike. */
  dt_rng_t rng;
  dt_rng_seed(&rng, dt_rng_mix(dt_rng_mix(t->opt.seed, 0xe7a1), (uint64_t)t->comm->rank));
  model_eval_env_t env = {&t->model, t->target, &t->data.scaling, t->comm,
                          t->labels, t->targets, &rng, &t->mio};
  return model_evaluate(&env, ds, out, err);
}

/* The schedule's lr for the current step, scaled down by ReduceLROnPlateau. */
static double current_lr(const trainer_t *t) {
  return dt_reduce_lr_apply(&t->run.reduce_lr, dt_schedule_lr(&t->schedule, t->run.step));
}

/* The watchdog test's fault switch: this rank stops answering at this step. */
static void stall_if_asked(trainer_t *t, long step) {
  if (t->hooks.stall_rank != t->comm->rank || t->hooks.stall_at_step != step) return;
  dt_log_warn(&t->log, "DT_TEST_STALL_RANK/DT_TEST_STALL_AT_STEP: this rank stops answering "
              "at step %ld (a fault switch for tests)", step);
  for (;;) pause();
}

/* Hands this rank's share of global batch g of the current epoch to the loader, if the
 * epoch has it. */
static void submit_batch(trainer_t *t, size_t g) {
  if ((long)g >= t->steps_per_epoch) return;
  size_t batch = (size_t)t->opt.batch_size;
  const uint32_t *idx = dt_shard_batch(t->perm, g, batch, t->comm->rank, t->comm->world);
  dt_loader_submit(t->loader, idx, batch, (uint64_t)t->run.epoch);
}

/* The rest of a step after backward: the exchange, checks, clipping and the update. */
static int finish_step(trainer_t *t, const double *loss, double t0, double t1,
                       step_times_t *times, int batch, dt_error_t *err) {
  dt_model_t *m = &t->model;
  int rc;
  double t2 = dt_now_s();
  rc = exchange_reduce(&t->exchange, err);
  if (rc) return rc;
  /* Before the update: a parameter server would apply this step's gradient for every
   * worker, and a NaN there poisons the shared parameters for good. After the reduce,
   * so that ranks of an all-reduce leave no collective half done. */
  if (!isfinite(*loss))
    return dt_error_set(err, DT_ERR_STATE,
                        "the training loss became %s at step %ld (epoch %ld); lower "
                        "train.lr or check the data",
                        isnan(*loss) ? "NaN" : "infinite", t->run.step + 1, t->run.epoch + 1);
  /* The gradients are the same on every rank by now, so clipping agrees too. */
  if (t->opt.clipnorm > 0)
    dt_clip_by_global_norm(m->grad_buf, m->num_params, (float)t->opt.clipnorm);
  double t3 = dt_now_s();
  float lr = (float)current_lr(t);
  if ((rc = exchange_update(&t->exchange, lr, err))) return rc;
  double t4 = dt_now_s();
  times->data_s = t1 - t0;
  times->compute_s = (t2 - t1) + (t4 - t3);
  times->comm_s = t3 - t2;
  t->stats.wait_s += t3 - t2;
  t->stats.step_s += t4 - t0;
  train_log_step(&t->tlog, t->run.step, *loss, lr, (double)batch * t->comm->world / (t4 - t0),
                 times);
  t->run.step++;
  t->stats.steps++;
  return 0;
}

/* One optimization step on global batch g of the current epoch; returns the batch's
 * mean loss and adds to the correct/total counters. */
static int train_step(trainer_t *t, size_t g, double *loss, double *correct, double *total,
                      step_times_t *times, dt_error_t *err) {
  dt_model_t *m = &t->model;
  double t0 = dt_now_s();
  exchange_begin_step(&t->exchange, t->run.step + 1);
  stall_if_asked(t, t->run.step + 1);
  int batch = (int)t->opt.batch_size;
  /* This step's batch was prepared by the loader while the last step computed; the
   * next one starts now. */
  const float *x;
  const int32_t *labels;
  const float *values;
  double waited = 0.0;
  int rc = dt_loader_wait(t->loader, &x, &labels, &values, &waited, err);
  t->stats.data_wait_s += waited;
  if (rc) return dt_error_prefix(err, "reading the training batch of step %ld: ",
                                 t->run.step + 1);
  submit_batch(t, g + 1);
  dt_model_set_inputs(m, x, batch);
  if (m->nout > 1) {
    multi_io_fill(&t->mio, values, batch);
    double t1 = dt_now_s();
    dt_model_forward(m, batch, true, &t->run.rng);
    *loss = multi_io_loss(&t->mio, m, batch, true, &t->mio_sums);
    t->mio_batches += 1.0;
    dt_model_backward(m, batch);
    return finish_step(t, loss, t0, t1, times, batch, err);
  }
  if (labels) memcpy(t->labels, labels, sizeof *labels * (size_t)batch);
  if (values && t->target == TARGET_VALUES)
    memcpy(t->targets, values, sizeof(float) * dt_model_output_size(m) * (size_t)batch);
  fill_targets(t, batch);
  double t1 = dt_now_s();
  const float *y = dt_model_forward(m, batch, true, &t->run.rng);
  int dim = (int)dt_model_output_size(m);
  *loss = dt_loss_compute(m->loss, y, batch, dim, t->labels, t->targets, m->dout);
  if (t->has_aux) {
    /* The layers' terms (a VAE's KL) join the loss; their backward adds their gradient. */
    double kl, kl_raw;
    int rc = dt_model_aux_loss(m, batch, &kl, &kl_raw, err);
    if (rc) return rc;
    t->epoch_recon_sum += *loss;
    t->epoch_kl_sum += kl;
    t->aux_batches++;
    *loss += kl;
  }
  size_t n;
  *correct += (double)dt_loss_count_correct(m->loss, y, batch, dim, t->labels, t->targets, &n);
  *total += (double)n;
  dt_model_backward(m, batch);
  return finish_step(t, loss, t0, t1, times, batch, err);
}

/* batches: those this process ran in the epoch (fewer than an epoch after a resume). */
static void print_epoch(trainer_t *t, long epoch, long batches, double seconds, double loss,
                        double acc, const eval_result_t *val, const double terms[2]) {
  char line[512], steps[48];
  /* After a resume in the middle of an epoch, say how much of it this run did. */
  if (batches == t->steps_per_epoch) snprintf(steps, sizeof steps, "%ld steps", batches);
  else snprintf(steps, sizeof steps, "%ld of %ld steps", batches, t->steps_per_epoch);
  size_t used = (size_t)snprintf(line, sizeof line, "Epoch %ld/%ld - %s - %.1fs - loss: %.4f",
                                 epoch, t->opt.epochs, steps, seconds, loss);
  if (!isnan(terms[0]))
    used += (size_t)snprintf(line + used, sizeof line - used,
                             " - reconstruction_loss: %.4f - kl_loss: %.4f", terms[0], terms[1]);
  if (!isnan(acc)) used += (size_t)snprintf(line + used, sizeof line - used, " - accuracy: %.4f", acc);
  if (val && val->samples) {
    used += (size_t)snprintf(line + used, sizeof line - used, " - val_loss: %.4f", val->loss);
    if (!isnan(val->reconstruction))
      used += (size_t)snprintf(line + used, sizeof line - used,
                               " - val_reconstruction_loss: %.4f - val_kl_loss: %.4f",
                               val->reconstruction, val->kl);
    if (!isnan(val->accuracy))
      used += (size_t)snprintf(line + used, sizeof line - used, " - val_accuracy: %.4f",
                               val->accuracy);
    if (!isnan(val->mae))
      used += (size_t)snprintf(line + used, sizeof line - used, " - val_mae: %.4f", val->mae);
  }
  /* Several outputs: each one's loss (and accuracy), for training and validation. */
  if (t->model.nout > 1 && used < sizeof line) {
    used += multi_io_format(&t->model, "", &t->mio_sums, t->mio_batches, line + used,
                            sizeof line - used);
    if (val && val->samples && used < sizeof line)
      used += multi_io_format(&t->model, "val_", &val->outs, val->outs_n, line + used,
                              sizeof line - used);
  }
  double samples = (double)batches * (double)t->opt.batch_size * t->comm->world;
  snprintf(line + used, sizeof line - used, " - %.0f samples/s", samples / seconds);
  dt_log_info(&t->log, "%s", line);
}

/* What checkpointing needs of the trainer besides the run state, model and optimizer. */
static ckpt_env_t ckpt_env(trainer_t *t) {
  return (ckpt_env_t){&t->ckpt,       t->cfg,           t->comm,
                      &t->log,        t->opt.seed,      t->opt.batch_size,
                      t->steps_per_epoch, t->preprocess_json};
}

/* The final model (final_model.h) from the trainer's current weights. */
static int save_final_model(trainer_t *t, const char *why, bool average_states, dt_error_t *err) {
  final_model_run_t r = {t->comm,  &t->model,    t->cfg,         t->preprocess_json,
                         t->tlog.dir, &t->log,  t->run.step,     t->run.epoch, t->target,
                         NULL};
  return final_model_save(&t->final_model, &r, why, average_states, err);
}

static int save(trainer_t *t, const char *why, dt_error_t *err) {
  ckpt_env_t env = ckpt_env(t);
  return ckpt_save(&env, &t->run, &t->model, &t->optim, why, err);
}

int trainer_resume(trainer_t *t, const char *from, bool *found, dt_error_t *err) {
  ckpt_env_t env = ckpt_env(t);
  return ckpt_resume(&env, &t->run, &t->model, &t->optim, from, found, err);
}

/* A checkpoint that cannot be written is reported and training goes on: the run
 * itself is not lost, and `latest` still names the previous good checkpoint. */
static void save_or_warn(trainer_t *t, const char *why) {
  dt_error_t err = {0};
  if (save(t, why, &err)) {
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

/* How many validation images the reconstruction picture shows. */
enum { RECONSTRUCTIONS = 8 };

/* An autoencoder's first validation (or, without a validation split, training) images
 * and their reconstructions, to TensorBoard. The test images are not in memory during
 * training (load_test_images). Runs on the logging rank only; it reuses the training
 * arena. The picture is grayscale: inputs of one channel only. */
static void log_reconstructions(trainer_t *t, long epoch) {
  dt_model_t *m = &t->model;
  const dt_dataset_t *ds = t->data.val.n ? &t->data.val : &t->data.train;
  int n = m->capacity < RECONSTRUCTIONS ? m->capacity : RECONSTRUCTIONS;
  if ((size_t)n > ds->n) n = (int)ds->n;
  size_t dim = dt_model_input_size(m);
  if (!t->tlog.enabled || ds->ndim < 2 || n <= 0 ||
      dim != (size_t)ds->shape[0] * (size_t)ds->shape[1])
    return;
  uint32_t idx[RECONSTRUCTIONS];
  for (int i = 0; i < n; i++) idx[i] = (uint32_t)i;
  dt_error_t err = {0};
  if (dt_dataset_gather(ds, &t->data.scaling, idx, (size_t)n, m->acts[0], t->labels, NULL, &err))
    return;
  /* Inputs and reconstructions in one allocation, sized from the model. */
  float *inputs = malloc(sizeof(float) * (size_t)n * dim * 2);
  if (!inputs) return;
  float *out = inputs + (size_t)n * dim;
  memcpy(inputs, m->acts[0], sizeof(float) * (size_t)n * dim);
  /* No noise: a VAE reconstructs from the mean of its code (sampling.c). */
  const float *y = dt_model_forward(m, n, false, NULL);
  /* Logits of BCE go through the sigmoid that the loss fuses. */
  for (size_t i = 0; i < (size_t)n * dim; i++)
    out[i] = m->loss == DT_LOSS_BCE_LOGITS ? 1.0f / (1.0f + expf(-y[i])) : y[i];
  train_log_reconstructions(&t->tlog, epoch, inputs, out, n, ds->shape[0], ds->shape[1]);
  free(inputs);
}

/* How many prior samples the VAE's picture shows. */
enum { PRIOR_SAMPLES = 32 };

/* A VAE's decoder run on latent vectors drawn from the prior N(0, 1), to TensorBoard:
 * the same vectors every epoch (a stream of their own), so the pictures show one set of
 * samples as training shapes them. Logging rank only; reuses the training arena. */
static void log_prior_samples(trainer_t *t, long epoch) {
  dt_model_t *m = &t->model;
  const dt_dataset_t *ds = &t->data.train;
  int n = m->capacity < PRIOR_SAMPLES ? m->capacity : PRIOR_SAMPLES;
  size_t dim = dt_model_output_size(m);
  if (!t->tlog.enabled || !t->tlog.images || !t->has_latent || ds->ndim < 2 || n <= 0 ||
      dim != (size_t)ds->shape[0] * (size_t)ds->shape[1])
    return;
  float *z = malloc(sizeof(float) * (size_t)n * (t->latent.dim + dim));
  if (!z) return;
  float *out = z + (size_t)n * t->latent.dim;
  dt_rng_t rng;
  dt_rng_seed(&rng, dt_rng_mix(t->opt.seed, 0x5a3b));
  dt_error_t err = {0};
  if (latent_generate(m, &t->latent, n, &rng, z, out, &err) == 0)
    train_log_samples(&t->tlog, epoch, out, n, ds->shape[0], ds->shape[1]);
  else
    dt_log_warn(&t->log, "TensorBoard logging: no prior samples for epoch %ld: %s", epoch, err.msg);
  free(z);
}

/* Copies the model's weights and state into the run state's best weights (from) or
 * back into the model (!from), on the host. */
static int copy_best_weights(trainer_t *t, bool from, dt_error_t *err) {
  dt_model_t *m = &t->model;
  float *params, *states, *best = t->run.best_weights;
  int rc = dt_model_to_host(m, DT_MODEL_PARAMS, &params, err);
  if (!rc) rc = dt_model_to_host(m, DT_MODEL_STATES, &states, err);
  if (rc) return rc;
  if (from) {
    memcpy(best, params, sizeof(float) * m->num_params);
    memcpy(best + m->num_params, states, sizeof(float) * m->num_states);
    return 0;
  }
  memcpy(params, best, sizeof(float) * m->num_params);
  memcpy(states, best + m->num_params, sizeof(float) * m->num_states);
  if (!(rc = dt_model_from_host(m, DT_MODEL_PARAMS, err)))
    rc = dt_model_from_host(m, DT_MODEL_STATES, err);
  return rc;
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
  dt_reduce_lr_t *rl = &t->run.reduce_lr;
  if (rl->opt.enabled) {
    bool reduced;
    dt_reduce_lr_update(rl, em.v[rl->opt.monitor], lr, &reduced);
    if (reduced)
      dt_log_info(&t->log, "Epoch %ld: ReduceLROnPlateau: %s did not improve for %ld epochs, "
                  "learning rate now %g", epoch + 1, dt_metric_names[rl->opt.monitor],
                  rl->opt.patience, current_lr(t));
  }
  dt_early_stopping_t *es = &t->run.early_stopping;
  if (es->opt.enabled) {
    dt_early_stopping_decision_t d = dt_early_stopping_update(es, em.v[es->opt.monitor], epoch);
    if (d.improved && t->run.best_weights && (rc = copy_best_weights(t, true, err))) return rc;
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
  run_state_t *rs = &t->run;
  long epoch = rs->epoch;
  /* Training metrics are the mean over this rank's batches, averaged across ranks. */
  double sums[5] = {rs->epoch_batches ? rs->epoch_loss_sum / (double)rs->epoch_batches : NAN,
                    rs->epoch_correct, rs->epoch_total,
                    t->aux_batches ? t->epoch_recon_sum / (double)t->aux_batches : NAN,
                    t->aux_batches ? t->epoch_kl_sum / (double)t->aux_batches : NAN};
  int rc = dt_comm_allreduce_sum_f64(t->comm, sums, 5, err);
  if (rc) return dt_error_prefix(err, "epoch %ld metrics: ", epoch + 1);
  /* Every replica evaluates, and saves, the same layer state. */
  if ((rc = exchange_sync_state(&t->exchange, err)))
    return dt_error_prefix(err, "averaging the layers' state: ");
  eval_result_t val = {0};
  if (t->data.val.n && (rc = trainer_evaluate(t, &t->data.val, &val, err))) return rc;
  double train_acc = sums[2] > 0 ? sums[1] / sums[2] : NAN;
  double loss = sums[0] / t->comm->world;
  if (t->model.nout > 1) {
    /* Per-output means over every rank's batches. */
    multi_io_sums_t *ms = &t->mio_sums;
    if ((rc = dt_comm_allreduce_sum_f64(t->comm, (double *)ms, sizeof *ms / sizeof(double),
                                        err)) ||
        (rc = dt_comm_allreduce_sum_f64(t->comm, &t->mio_batches, 1, err)))
      return dt_error_prefix(err, "epoch %ld metrics: ", epoch + 1);
    for (int k = 0; t->tlog.enabled && k < t->model.nout; k++) {
      char name[DT_NAME_MAX + 16];
      const dt_model_output_t *o = &t->model.outputs[k];
      snprintf(name, sizeof name, "epoch_%s_loss", o->name);
      dt_events_scalar(t->tlog.train, name, epoch + 1, ms->loss[k] / t->mio_batches, NULL);
      if (val.samples) dt_events_scalar(t->tlog.val, name, epoch + 1, val.outs.loss[k] / val.outs_n, NULL);
      if (ms->total[k] > 0) {
        snprintf(name, sizeof name, "epoch_%s_accuracy", o->name);
        dt_events_scalar(t->tlog.train, name, epoch + 1, ms->correct[k] / ms->total[k], NULL);
        if (val.samples && val.outs.total[k] > 0)
          dt_events_scalar(t->tlog.val, name, epoch + 1, val.outs.correct[k] / val.outs.total[k],
                           NULL);
      }
    }
  }
  const double terms[2] = {sums[3] / t->comm->world, sums[4] / t->comm->world};
  print_epoch(t, epoch + 1, batches, seconds, loss, train_acc, &val, terms);
  memset(&t->mio_sums, 0, sizeof t->mio_sums);
  t->mio_batches = 0.0;
  train_log_epoch(&t->tlog, epoch + 1, loss, train_acc, val.samples ? val.loss : NAN,
                  val.samples ? val.accuracy : NAN, &t->model);
  if (t->has_aux) {
    train_log_terms(&t->tlog, epoch + 1, terms[0], terms[1],
                    val.samples ? val.reconstruction : NAN, val.samples ? val.kl : NAN);
    log_prior_samples(t, epoch + 1);
  }

  if (t->target == TARGET_INPUT) log_reconstructions(t, epoch + 1);
  if ((rc = run_callbacks(t, epoch, loss, train_acc, &val, err))) return rc;

  /* The position moves to the start of the next epoch before the checkpoint. */
  run_state_next_epoch(rs);
  if (!t->ckpt.dir[0]) return 0;
  double value = monitored(t, loss, train_acc, &val);
  bool improved = !isnan(value) &&
                  (!rs->has_best || (t->ckpt.mode == MONITOR_MIN ? value < rs->best_metric
                                                                 : value > rs->best_metric));
  if (improved) {
    rs->best_metric = value;
    rs->has_best = true;
  }
  bool due = t->ckpt.every_epochs && rs->epoch % t->ckpt.every_epochs == 0;
  if (due && (!t->ckpt.save_best_only || improved)) {
    char why[96];
    snprintf(why, sizeof why, improved ? "epoch %ld, best %s %.4f" : "epoch %ld", rs->epoch,
             t->ckpt.monitor, value);
    save_or_warn(t, why);
    /* `best` keeps the best checkpoint from pruning and tells users which it is. */
    if (improved && rs->last_ckpt_step == rs->step && t->comm->rank == 0) {
      char name[64];
      snprintf(name, sizeof name, "ckpt-%010ld", rs->step);
      dt_error_t berr = {0};
      if (dt_ckpt_set_best(t->ckpt.dir, name, &berr))
        dt_log_warn(&t->log, "cannot mark the best checkpoint: %s", berr.msg);
    }
  }
  return 0;
}

/* Stopping on a signal: the exchange leaves, then the preemption checkpoint. */
static int stop_for_signal(trainer_t *t, dt_error_t *err) {
  const run_state_t *rs = &t->run;
  progress_end(&t->progress);
  int sig = preempt_signal();
  dt_log_warn(&t->log, "%s: stopping after step %ld (epoch %ld, batch %ld)",
              sig == SIGINT    ? "SIGINT received"
              : sig == SIGTERM ? "SIGTERM received"
              : sig == SIGUSR1 ? "SIGUSR1 received"
                               : "another rank received a stop signal",
              rs->step, rs->epoch + 1, rs->batch_in_epoch);
  int rc = exchange_leave(&t->exchange, err);
  if (rc) return rc;
  /* The checkpoint first: it keeps each rank's own layer state, which the final model
   * then replaces by the ranks' average. Without checkpoint.dir the model is all that
   * is kept. */
  if (t->ckpt.dir[0] && (rc = save(t, "preempted", err))) return rc;
  char why[96];
  snprintf(why, sizeof why, "step %ld (stopped by a signal)", rs->step);
  if ((rc = save_final_model(t, why, true, err))) return rc;
  train_log_flush(&t->tlog);
  t->preempted = true;
  return 0;
}

/* The steps of the current epoch from its batch_in_epoch on; *stopped when a signal
 * ended the run after its checkpoint. */
static int run_epoch(trainer_t *t, bool *stopped, dt_error_t *err) {
  run_state_t *rs = &t->run;
  int rc;
  *stopped = false;
  dt_epoch_permutation(t->opt.seed, (uint64_t)rs->epoch, t->perm, t->data.train.n);
  t->epoch_recon_sum = t->epoch_kl_sum = 0.0;
  t->aux_batches = 0;
  submit_batch(t, (size_t)rs->batch_in_epoch);
  double start = dt_now_s();
  long first = rs->batch_in_epoch;
  progress_begin(&t->progress, rs->epoch + 1, t->opt.epochs, first, t->steps_per_epoch);
  for (long g = first; g < t->steps_per_epoch; g++) {
    double loss = 0.0;
    step_times_t times;
    if ((rc = train_step(t, (size_t)g, &loss, &rs->epoch_correct, &rs->epoch_total, &times, err)))
      return rc;
    rs->epoch_loss_sum += loss;
    rs->epoch_batches++;
    rs->batch_in_epoch = g + 1;
    if (t->has_aux)
      progress_set_terms(&t->progress, t->epoch_recon_sum / (double)t->aux_batches,
                         t->epoch_kl_sum / (double)t->aux_batches);
    progress_update(&t->progress, g + 1, rs->epoch_loss_sum / (double)rs->epoch_batches,
                    rs->epoch_total > 0 ? rs->epoch_correct / rs->epoch_total : NAN);
    bool stop;
    if ((rc = exchange_agree_stop(&t->exchange, rs->step, preempt_signal() != 0, &stop, err)))
      return rc;
    if (stop) {
      *stopped = true;
      return stop_for_signal(t, err);
    }
    if (t->ckpt.dir[0] && t->ckpt.every_steps && rs->step % t->ckpt.every_steps == 0) {
      char why[64];
      snprintf(why, sizeof why, "every %ld steps", t->ckpt.every_steps);
      save_or_warn(t, why);
    }
  }
  double seconds = dt_now_s() - start;
  progress_end(&t->progress);
  return finish_epoch(t, t->steps_per_epoch - first, seconds, err);
}

static void print_test_result(trainer_t *t) {
  const eval_result_t *r = &t->test_result;
  if (t->model.nout > 1) {
    char outs[512];
    multi_io_format(&t->model, "", &r->outs, r->outs_n, outs, sizeof outs);
    dt_log_result(&t->log, "Test: loss: %.4f%s (%zu samples)", r->loss, outs, r->samples);
    return;
  }
  if (!isnan(r->neg_elbo))
    dt_log_result(&t->log, "Test: loss: %.4f - reconstruction_loss: %.4f - kl_loss: %.4f - "
                  "negative ELBO: %.2f nats per sample (binary cross-entropy summed over the "
                  "%zu outputs + KL) (%zu samples)", r->loss, r->reconstruction, r->kl,
                  r->neg_elbo, dt_model_output_size(&t->model), r->samples);
  else if (!isnan(r->reconstruction))
    dt_log_result(&t->log, "Test: loss: %.4f - reconstruction_loss: %.4f - kl_loss: %.4f "
                  "(%zu samples)", r->loss, r->reconstruction, r->kl, r->samples);
  else if (!isnan(r->mae))
    dt_log_result(&t->log, "Test: loss: %.4f - mae: %.4f (%zu samples)", r->loss, r->mae,
                  r->samples);
  else if (isnan(r->accuracy))
    dt_log_result(&t->log, "Test: loss: %.4f (%zu samples)", r->loss, r->samples);
  else if (!isnan(r->exact))
    dt_log_result(&t->log, "Test: loss: %.4f - accuracy: %.4f - all bits right: %.4f (%zu samples)",
                r->loss, r->accuracy, r->exact, r->samples);
  else
    dt_log_result(&t->log, "Test: loss: %.4f - accuracy: %.4f (%zu samples)", r->loss, r->accuracy,
                r->samples);
}

/* The background loader of training batches (dtrain/loader.h). */
static int create_loader(trainer_t *t, dt_error_t *err) {
  const run_data_t *d = &t->data;
  bool by_class = t->target == TARGET_LABELS || t->target == TARGET_ONE_HOT ||
                  t->target == TARGET_BITS;
  dt_loader_opts_t o = {.ds = &d->train,
                        .scaling = &d->scaling,
                        .augment = &d->opt.augment,
                        .value_range = d->scaling.kind == DT_SCALE_1_255 ? 1.0f : 255.0f,
                        .seed = t->opt.seed,
                        .threads = (int)d->opt.threads,
                        .capacity = (size_t)t->opt.batch_size,
                        .want_labels = by_class,
                        .want_values = t->target == TARGET_VALUES};
  return dt_loader_create(&t->loader, &o, err);
}

/* With --verbose every rank says how many training samples it read: each reads only
 * its own shards of every global batch. */
static void report_reads(const trainer_t *t) {
  if (!t->loader) return;
  const exchange_stats_t *st = &t->stats;
  dt_log_info(&t->log, "Data: rank %d read %zu training samples in this run (its training "
              "split has %zu); waiting for batches took %.2f s, %.1f%% of step time",
              t->comm->rank, dt_loader_samples_read(t->loader), t->data.train.n,
              st->data_wait_s, st->step_s > 0 ? 100.0 * st->data_wait_s / st->step_s : 0.0);
}

int trainer_run(trainer_t *t, dt_error_t *err) {
  run_state_t *rs = &t->run;
  int rc;
  if ((rc = exchange_start(&t->exchange, err))) return rc;
  /* After start: a PS worker's part of the training set is known only then. */
  if ((rc = create_loader(t, err))) return rc;
  /* After start: a PS worker knows its id only then, and logs to a run of its own. */
  if ((rc = train_log_open(&t->tlog, t->cfg, &t->model, exchange_log_name(&t->exchange), err)))
    return rc;
  /* The CSV log of a resumed run keeps the rows of the epochs the checkpoint has. */
  if (t->csv_opts.path[0] && t->comm->rank == 0 &&
      (rc = dt_csv_log_open(&t->csv, t->csv_opts.path, t->csv_opts.append || rs->resumed,
                            rs->resumed ? rs->epoch : LONG_MAX, t->metrics, err)))
    return rc;
  while (rs->epoch < t->opt.epochs && !run_state_stopped_early(rs)) {
    bool stopped;
    if ((rc = run_epoch(t, &stopped, err)) || stopped) return rc;
  }
  const dt_early_stopping_t *es = &rs->early_stopping;
  char why[96];
  snprintf(why, sizeof why, "final, epoch %ld", rs->epoch);
  if (rs->best_weights && es->st.has_best) {
    if ((rc = copy_best_weights(t, false, err))) return rc;
    dt_log_info(&t->log, "Restored the weights of epoch %ld (best %s %.4f)",
                (long)es->st.best_epoch + 1, dt_metric_names[es->opt.monitor], es->st.best);
    snprintf(why, sizeof why, "best, epoch %ld (restore_best_weights)",
             (long)es->st.best_epoch + 1);
  }
  if ((rc = exchange_finish(&t->exchange, err))) return rc;
  /* The layers' state was averaged over the ranks at the end of the last epoch. */
  if ((rc = save_final_model(t, why, false, err))) return rc;
  exchange_report(&t->exchange, &t->stats);
  report_reads(t);
  dt_loader_destroy(t->loader);
  t->loader = NULL;
  train_log_flush(&t->tlog);
  if (!t->data.test.n && !t->data.test_inputs_deferred) return 0;
  if ((rc = run_data_load_deferred_test(&t->data, err)) ||
      (rc = trainer_evaluate(t, &t->data.test, &t->test_result, err)))
    return rc;
  print_test_result(t);
  return 0;
}

void trainer_free(trainer_t *t) {
  dt_loader_destroy(t->loader);
  exchange_free(&t->exchange);
  train_log_close(&t->tlog);
  if (t->csv.f) dt_csv_log_close(&t->csv, NULL);
  run_state_free(&t->run);
  dt_model_free(&t->model);
  multi_io_free(&t->mio);
  dt_optim_free(&t->optim);
  run_data_free(&t->data);
  free(t->preprocess_json);
  free(t->perm);
  free(t->labels);
  free(t->targets);
  memset(t, 0, sizeof *t);
}
