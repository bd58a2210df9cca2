/* Training checkpoints: their contents, writing them from every rank, and resuming
 * (see checkpointing.h). */
#define _POSIX_C_SOURCE 200809L
#include "checkpointing.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/clock.h"
#include "dtrain/json.h"

static const char *const monitor_names[] = {"val_loss", "val_accuracy", "loss", "accuracy", NULL};
static const char *const mode_names[] = {"auto", "min", "max", NULL};

int ckpt_options_read(dt_config_t *cfg, ckpt_options_t *o, dt_error_t *err) {
  memset(o, 0, sizeof *o);
  const char *dir;
  int monitor, mode, rc;
  if ((rc = dt_config_get_string(cfg, "checkpoint", "dir", "", &dir, err)) ||
      (rc = dt_config_get_int(cfg, "checkpoint", "every_steps", 0, 0, 1L << 40, &o->every_steps,
                              err)) ||
      (rc = dt_config_get_int(cfg, "checkpoint", "every_epochs", 1, 0, 1L << 20,
                              &o->every_epochs, err)) ||
      (rc = dt_config_get_int(cfg, "checkpoint", "keep_last", 3, 0, 1L << 20, &o->keep_last, err)) ||
      (rc = dt_config_get_bool(cfg, "checkpoint", "save_best_only", false, &o->save_best_only,
                               err)) ||
      (rc = dt_config_get_choice(cfg, "checkpoint", "monitor", "val_loss", monitor_names, &monitor,
                                 err)) ||
      (rc = dt_config_get_choice(cfg, "checkpoint", "mode", "auto", mode_names, &mode, err)))
    return rc;
  if (snprintf(o->dir, sizeof o->dir, "%s", dir) >= (int)sizeof o->dir)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [checkpoint] dir: path too long",
                        dt_config_where(cfg, "checkpoint", "dir"));
  /* A file in the way would only be noticed at the first checkpoint, possibly hours
   * in; a directory that does not exist yet is made then. */
  struct stat st;
  if (o->dir[0] && stat(o->dir, &st) == 0 && !S_ISDIR(st.st_mode))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [checkpoint] dir = %s is not a directory",
                        dt_config_where(cfg, "checkpoint", "dir"), o->dir);
  o->monitor = monitor_names[monitor];
  /* Like Keras' "auto": accuracies are maximized, losses minimized. */
  o->mode = mode == 2 || (mode == 0 && strstr(o->monitor, "accuracy")) ? MONITOR_MAX : MONITOR_MIN;
  return 0;
}

/* One save or resume: the run's parts, and the model's buffers on the host (fetched
 * once per checkpoint with dt_model_to_host). */
typedef struct {
  const ckpt_env_t *env;
  run_state_t *rs;
  const dt_model_t *m;
  const dt_optim_t *o;
  float *params, *states; /* (num_params), (num_states) */
} parts_t;

/* The model's parameters and state on the host. */
static int host_buffers(dt_model_t *m, float **params, float **states, dt_error_t *err) {
  int rc = dt_model_to_host(m, DT_MODEL_PARAMS, params, err);
  if (!rc) rc = dt_model_to_host(m, DT_MODEL_STATES, states, err);
  return rc;
}

/* ---- writing ---- */

static void checkpoint_name(long step, char *name, size_t cap) {
  snprintf(name, cap, "ckpt-%010ld", step);
}

int ckpt_weight_tensors(const dt_model_t *m, float *params, float *state,
                        dt_param_info_t **tensors, float ***bases, int *n, dt_error_t *err) {
  *n = m->nparams + m->nstates;
  *tensors = malloc(sizeof **tensors * (size_t)(*n ? *n : 1));
  *bases = malloc(sizeof **bases * (size_t)(*n ? *n : 1));
  if (!*tensors || !*bases) {
    free(*tensors);
    free(*bases);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the model's tensor list");
  }
  for (int i = 0; i < m->nparams; i++) {
    (*tensors)[i] = m->params[i];
    (*bases)[i] = params;
  }
  for (int i = 0; i < m->nstates; i++) {
    (*tensors)[m->nparams + i] = m->states[i];
    (*bases)[m->nparams + i] = state;
  }
  return 0;
}

/* A model file's __metadata__: format, step, epoch, world and the run's config (whose
 * text, malloc'd, goes to *cfg_text for the caller to free). */
static int weights_meta(const parts_t *p, const char *meta[11], char num[3][32], char **cfg_text,
                        dt_error_t *err) {
  size_t cfg_len = dt_config_to_string(p->env->cfg, NULL, 0);
  if (!(*cfg_text = malloc(cfg_len + 1)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
  dt_config_to_string(p->env->cfg, *cfg_text, cfg_len + 1);
  snprintf(num[0], sizeof num[0], "%ld", p->rs->step);
  snprintf(num[1], sizeof num[1], "%ld", p->rs->epoch);
  snprintf(num[2], sizeof num[2], "%d", p->env->comm->world);
  const char *m[] = {"format", "dtrain", "step", num[0], "epoch", num[1],
                     "world", num[2], "config", *cfg_text, NULL};
  memcpy(meta, m, sizeof m);
  return 0;
}

/* A model file into the checkpoint, straight from the buffers: the parameter tensors
 * from params, then the state tensors from state. Its size is added to *bytes. */
static int add_weights(const parts_t *p, dt_ckpt_writer_t *w, const char *file, float *params,
                       float *state, size_t *bytes, dt_error_t *err) {
  dt_param_info_t *tensors;
  float **bases;
  int n;
  int rc = ckpt_weight_tensors(p->m, params, state, &tensors, &bases, &n, err);
  if (rc) return rc;
  const char *meta[11];
  char num[3][32], *cfg_text = NULL;
  uint64_t size = 0;
  if (!(rc = weights_meta(p, meta, num, &cfg_text, err)))
    rc = dt_ckpt_add_safetensors(w, file, tensors, n, (const float *const *)bases, meta, &size,
                                 err);
  *bytes += size;
  free(tensors);
  free(bases);
  free(cfg_text);
  return rc;
}

int ckpt_optimizer_tensors(const dt_model_t *m, const dt_optim_t *o, dt_param_info_t **tensors,
                           float ***bases, int *n, dt_error_t *err) {
  int moments = dt_optim_num_moments(o);
  *n = m->nparams * moments;
  *tensors = malloc(sizeof **tensors * (size_t)(*n ? *n : 1));
  *bases = malloc(sizeof **bases * (size_t)(*n ? *n : 1));
  if (!*tensors || !*bases) {
    free(*tensors);
    free(*bases);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the optimizer state");
  }
  for (int k = 0; k < moments; k++)
    for (int i = 0; i < m->nparams; i++) {
      dt_param_info_t *p = &(*tensors)[k * m->nparams + i];
      *p = m->params[i];
      snprintf(p->name, sizeof p->name, "%.48s.moment%c", m->params[i].name, k ? '2' : '1');
      (*bases)[k * m->nparams + i] = k == 0 ? o->moment1 : o->moment2;
    }
  return 0;
}

static int add_optimizer(const parts_t *p, dt_ckpt_writer_t *w, size_t *bytes, dt_error_t *err) {
  dt_param_info_t *tensors;
  float **bases;
  int n, rc;
  if ((rc = ckpt_optimizer_tensors(p->m, p->o, &tensors, &bases, &n, err))) return rc;
  char step[32];
  snprintf(step, sizeof step, "%" PRId64, p->o->step);
  const char *meta[] = {"type", dt_optim_names[p->o->cfg.kind], "step", step, NULL};
  uint64_t size = 0;
  rc = dt_ckpt_add_safetensors(w, "optimizer.safetensors", tensors, n,
                               (const float *const *)bases, meta, &size, err);
  *bytes += size;
  free(tensors);
  free(bases);
  return rc;
}

/* This rank's own file, written into dir; its size and CRC32C for rank 0's manifest.
 * Rank 0 passes its writer w instead: the file is recorded at once and fsync'd at
 * commit with the others (*crc is then not set). */
static int write_rank(const parts_t *p, dt_ckpt_writer_t *w, const char *dir, const char *file,
                      uint64_t *size, uint32_t *crc, dt_error_t *err) {
  const run_state_t *rs = p->rs;
  char rank[16], world[16], rng[96], sums[3][32], batches[32];
  snprintf(rank, sizeof rank, "%d", p->env->comm->rank);
  snprintf(world, sizeof world, "%d", p->env->comm->world);
  snprintf(rng, sizeof rng, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64,
           rs->rng.s[0], rs->rng.s[1], rs->rng.s[2], rs->rng.s[3]);
  /* %.17g prints a double that reads back to the same bits. */
  snprintf(sums[0], sizeof sums[0], "%.17g", rs->epoch_loss_sum);
  snprintf(sums[1], sizeof sums[1], "%.17g", rs->epoch_correct);
  snprintf(sums[2], sizeof sums[2], "%.17g", rs->epoch_total);
  snprintf(batches, sizeof batches, "%ld", rs->epoch_batches);
  const char *meta[] = {"rank", rank, "world", world, "rng", rng, "epoch_loss_sum", sums[0],
                        "epoch_correct", sums[1], "epoch_total", sums[2], "epoch_batches", batches,
                        NULL};
  int n = p->m->nstates;
  const float **bases = malloc(sizeof *bases * (size_t)(n > 0 ? n : 1));
  if (!bases) return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
  for (int i = 0; i < n; i++) bases[i] = p->states;
  int rc = w ? dt_ckpt_add_safetensors(w, file, p->m->states, n, bases, meta, size, err)
             : dt_safetensors_write(dir, file, p->m->states, n, bases, meta, size, crc, err);
  free(bases);
  return rc;
}

/* "[a, b, c]" with every double printed to read back to the same bits. */
static void json_doubles(const double *v, int n, char *buf, size_t cap) {
  size_t used = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < n && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, i ? ", %.17g" : "%.17g", v[i]);
  if (used < cap) snprintf(buf + used, cap - used, "]");
}

static size_t trainer_json(const ckpt_env_t *env, const run_state_t *rs, const char *why,
                           char *buf, size_t cap) {
  char best[40] = "null", es[256], rl[256];
  if (rs->has_best) snprintf(best, sizeof best, "%.17g", rs->best_metric);
  double es_state[DT_EARLY_STOPPING_STATE_DOUBLES], rl_state[DT_REDUCE_LR_STATE_DOUBLES];
  dt_early_stopping_pack(&rs->early_stopping.st, es_state);
  dt_reduce_lr_pack(&rs->reduce_lr.st, rl_state);
  json_doubles(es_state, DT_EARLY_STOPPING_STATE_DOUBLES, es, sizeof es);
  json_doubles(rl_state, DT_REDUCE_LR_STATE_DOUBLES, rl, sizeof rl);
  int world = env->comm->world;
  long samples = rs->batch_in_epoch * env->batch_size * world;
  return (size_t)snprintf(
      buf, cap,
      "{\n  \"step\": %ld,\n  \"epoch\": %ld,\n  \"batch_in_epoch\": %ld,\n"
      "  \"samples_in_epoch\": %ld,\n  \"steps_per_epoch\": %ld,\n  \"world\": %d,\n"
      "  \"batch_size\": %ld,\n  \"seed\": \"%" PRIu64 "\",\n  \"monitor\": \"%s\",\n"
      "  \"best_metric\": %s,\n  \"early_stopping\": %s,\n  \"reduce_lr\": %s,\n"
      "  \"reason\": \"%s\"\n}\n",
      rs->step, rs->epoch, rs->batch_in_epoch, samples, env->steps_per_epoch, world,
      env->batch_size, env->seed, env->opt->monitor, best, es, rl, why);
}

/* Rank 0's part of a save once every rank's file is in: the shared files, then commit. */
static int write_shared(const parts_t *p, dt_ckpt_writer_t *w, float *state, const char *why,
                        size_t *bytes, dt_error_t *err) {
  const run_state_t *rs = p->rs;
  int rc = add_weights(p, w, "model.safetensors", p->params, state, bytes, err);
  if (!rc) rc = add_optimizer(p, w, bytes, err);
  /* EarlyStopping's copy of the best weights, which restore_best_weights needs. */
  if (!rc && rs->best_weights && rs->early_stopping.st.has_best)
    rc = add_weights(p, w, "best_weights.safetensors", rs->best_weights,
                     rs->best_weights + p->m->num_params, bytes, err);
  char json[2048], info[256];
  size_t jl = trainer_json(p->env, rs, why, json, sizeof json);
  if (!rc) rc = dt_ckpt_add_file(w, "trainer.json", json, jl, err);
  const char *pre = p->env->preprocess_json;
  if (!rc && pre) rc = dt_ckpt_add_file(w, "preprocess.json", pre, strlen(pre), err);
  snprintf(info, sizeof info, "{\"step\": %ld, \"epoch\": %ld, \"world\": %d, \"reason\": \"%s\"}",
           rs->step, rs->epoch, p->env->comm->world, why);
  if (rc) {
    dt_ckpt_abort(w);
    return rc;
  }
  return dt_ckpt_commit(w, info, (int)p->env->opt->keep_last, err);
}

/* One rank's report after writing its own file. */
typedef struct {
  uint64_t failed, size, crc;
} rank_record_t;

int ckpt_save(const ckpt_env_t *env, run_state_t *rs, dt_model_t *m, const dt_optim_t *o,
              const char *why, dt_error_t *err) {
  dt_comm_t *comm = env->comm;
  const char *root = env->opt->dir;
  double start = dt_now_s();
  /* Old checkpoints are removed beside training, not in its time (the process still
   * waits for that before it exits or looks at checkpoints again). */
  dt_ckpt_prune_in_background(true);
  char name[64], tmp[DT_CKPT_PATH_MAX + 80];
  checkpoint_name(rs->step, name, sizeof name);
  snprintf(tmp, sizeof tmp, "%s/.tmp-%s", root, name);
  parts_t p = {env, rs, m, o, NULL, NULL};
  int hrc = host_buffers(m, &p.params, &p.states, err);
  if (hrc) return dt_error_prefix(err, "checkpoint %s: ", name);

  /* The shared state is the average over ranks (batch norm's moving averages drift
   * apart between ranks); each rank's own copy goes into its rank file. */
  float *state = p.states;
  if (m->num_states && comm->world > 1) {
    if (!(state = malloc(sizeof *state * m->num_states)))
      return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
    memcpy(state, p.states, sizeof *state * m->num_states);
    int rc = dt_comm_allreduce_avg(comm, state, m->num_states, err);
    if (rc) {
      free(state);
      return rc;
    }
  }

  dt_ckpt_writer_t *w = NULL;
  dt_error_t local = {0};
  int rc = comm->rank == 0 ? dt_ckpt_begin(root, name, &w, &local) : 0;
  double failed = rc != 0;
  int crc = dt_comm_allreduce_sum_f64(comm, &failed, 1, err);
  if (crc) goto out_comm;
  if (failed) {
    rc = comm->rank == 0 ? dt_error_set(err, local.code, "%s", local.msg)
                         : dt_error_set(err, DT_ERR_IO, "rank 0 could not start checkpoint %s",
                                        name);
    goto out;
  }

  /* Every rank writes its own file into the temporary directory. */
  uint64_t len = 0;
  char file[64];
  snprintf(file, sizeof file, "rank-%d.safetensors", comm->rank);
  uint32_t fcrc = 0;
  rc = write_rank(&p, w, tmp, file, &len, &fcrc, &local);
  rank_record_t mine = {rc != 0, len, fcrc};
  if (rc) dt_log_warn(env->log, "checkpoint %s: %s", name, local.msg);
  rank_record_t *all = malloc(sizeof *all * (size_t)comm->world);
  if (!all) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
    goto out;
  }
  if ((crc = dt_comm_allgather(comm, &mine, all, sizeof mine, err))) {
    free(all);
    goto out_comm;
  }
  size_t bytes = 0;
  int bad_rank = -1;
  for (int r = 0; r < comm->world; r++) {
    if (all[r].failed && bad_rank < 0) bad_rank = r;
    bytes += all[r].size;
  }
  rc = 0;
  if (comm->rank == 0) {
    if (bad_rank >= 0) {
      rc = bad_rank == 0 ? dt_error_set(err, local.code, "%s", local.msg)
                         : dt_error_set(err, DT_ERR_IO, "rank %d could not write its state file "
                                        "(its message is above)", bad_rank);
      dt_ckpt_abort(w);
    } else {
      /* Rank 0's own record is in already (write_rank), first as before. */
      for (int r = 1; r < comm->world && !rc; r++) {
        snprintf(file, sizeof file, "rank-%d.safetensors", r);
        rc = dt_ckpt_add_record(w, file, all[r].size, (uint32_t)all[r].crc, err);
      }
      if (rc)
        dt_ckpt_abort(w);
      else
        rc = write_shared(&p, w, state, why, &bytes, err);
    }
    w = NULL;
  }
  free(all);
  /* Everyone learns rank 0's outcome. */
  double outcome[2] = {rc != 0, (double)bytes};
  if (comm->rank != 0) outcome[0] = outcome[1] = 0.0;
  if ((crc = dt_comm_allreduce_sum_f64(comm, outcome, 2, err))) goto out_comm;
  if (outcome[0] && comm->rank != 0)
    rc = dt_error_set(err, DT_ERR_IO, "checkpoint %s was not written (rank 0 says why)", name);
  if (!rc) {
    double s = dt_now_s() - start;
    dt_log_info(env->log, "Checkpoint %s/%s written (%s): %.1f MB in %.3f s, %.0f MB/s", root,
                name, why, outcome[1] / 1e6, s, outcome[1] / 1e6 / (s > 0 ? s : 1e-9));
    rs->last_ckpt_step = rs->step;
  }
  goto out;
out_comm:
  rc = crc;
  if (w) dt_ckpt_abort(w);
out:
  if (state != p.states) free(state);
  return rc;
}

/* ---- resuming ---- */

/* Reads an integer member of trainer.json in [min, max]. The bound also keeps the
 * conversion to long defined: a hand-edited 1e19 would wrap to a negative epoch. */
static int json_long(const dt_json_t *j, const char *key, long min, long max, const char *what,
                     long *out, dt_error_t *err) {
  const dt_json_t *v = dt_json_get_typed(j, key, DT_JSON_NUMBER);
  if (!v || v->number != floor(v->number))
    return dt_error_set(err, DT_ERR_FORMAT, "%s: no integer \"%s\"", what, key);
  if (!(v->number >= (double)min && v->number <= (double)max))
    return dt_error_set(err, DT_ERR_FORMAT, "%s: \"%s\" = %g is outside [%ld, %ld]", what, key,
                        v->number, min, max);
  *out = (long)v->number;
  return 0;
}

static int meta_double(const void *data, size_t len, const char *key, const char *what,
                       double *out, dt_error_t *err) {
  char v[64], *end;
  int rc = dt_safetensors_metadata(data, len, key, v, sizeof v, err);
  if (rc) return dt_error_prefix(err, "%s: ", what);
  *out = strtod(v, &end);
  if (end == v || *end) return dt_error_set(err, DT_ERR_FORMAT, "%s: bad \"%s\" '%s'", what, key, v);
  return 0;
}

/* Reads a whole checkpoint file; `what` gets "DIR/FILE" for messages. */
static int read_part(const char *dir, const char *file, void **data, size_t *len, char *what,
                     size_t what_cap, dt_error_t *err) {
  snprintf(what, what_cap, "%s/%s", dir, file);
  return dt_ckpt_read_file(dir, file, data, len, err);
}

/* The large files of a checkpoint are read once, straight into the model's and the
 * optimizer's buffers, and checked against the manifest as they arrive (rank 0 checked
 * only their sizes when it picked the checkpoint). *corrupt: a file does not match its
 * manifest entry, so the buffers hold damaged values and the caller must load another
 * checkpoint over them. check_head, if given, looks at the file's __metadata__ before
 * any data are read. */
typedef int (*head_check_fn)(const void *head, size_t len, const char *what, void *ctx,
                             dt_error_t *err);

static int read_tensors(const char *dir, const char *file, const dt_param_info_t *tensors, int n,
                        float *const *bases, head_check_fn check_head, void *ctx, bool *corrupt,
                        dt_error_t *err) {
  char what[DT_CKPT_PATH_MAX + 64];
  snprintf(what, sizeof what, "%s/%s", dir, file);
  dt_ckpt_in_t *in;
  int rc = dt_ckpt_in_open(dir, file, &in, corrupt, err);
  if (rc) return rc;
  void *head = NULL;
  size_t head_len = 0;
  rc = dt_safetensors_read_head(in, what, &head, &head_len, err);
  if (!rc && check_head) rc = check_head(head, head_len, what, ctx, err);
  if (!rc) rc = dt_safetensors_read_data(in, head, head_len, tensors, n, bases, what, err);
  free(head);
  return dt_ckpt_in_close(in, rc, corrupt, err);
}

/* A model file into params and state (tensor names and shapes must match). */
static int decode_weights(const dt_model_t *m, const char *dir, const char *file, float *params,
                          float *state, bool *corrupt, dt_error_t *err) {
  dt_param_info_t *tensors;
  float **bases;
  int n;
  int rc = ckpt_weight_tensors(m, params, state, &tensors, &bases, &n, err);
  if (rc) return rc;
  rc = read_tensors(dir, file, tensors, n, bases, NULL, NULL, corrupt, err);
  free(tensors);
  free(bases);
  return rc;
}

/* The optimizer file's __metadata__: the same kind of optimizer, and its step count. */
typedef struct {
  const dt_optim_t *o;
  double step;
} optim_meta_t;

static int check_optimizer_head(const void *head, size_t len, const char *what, void *ctx,
                                dt_error_t *err) {
  optim_meta_t *om = ctx;
  char type[32];
  int rc;
  if ((rc = dt_safetensors_metadata(head, len, "type", type, sizeof type, err)) ||
      (rc = meta_double(head, len, "step", what, &om->step, err)))
    return dt_error_prefix(err, "%s: ", what);
  if (strcmp(type, dt_optim_names[om->o->cfg.kind]) != 0)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: the checkpoint's optimizer is '%s' but the config "
                        "says optimizer.type = %s", what, type, dt_optim_names[om->o->cfg.kind]);
  return 0;
}

/* An array of n numbers from trainer.json into v; false if absent or malformed. */
static bool json_array(const dt_json_t *j, const char *key, double *v, int n) {
  const dt_json_t *a = dt_json_get_typed(j, key, DT_JSON_ARRAY);
  if (!a || a->count != n) return false;
  int i = 0;
  for (const dt_json_t *e = a->child; e; e = e->next, i++) {
    if (e->type != DT_JSON_NUMBER) return false;
    v[i] = e->number;
  }
  return true;
}

/* The callbacks' state. A checkpoint written before a callback was enabled has none:
 * that callback starts fresh. */
static int load_callbacks(run_state_t *rs, const dt_json_t *j, const char *what,
                          dt_error_t *err) {
  double es[DT_EARLY_STOPPING_STATE_DOUBLES], rl[DT_REDUCE_LR_STATE_DOUBLES];
  int rc;
  if (json_array(j, "early_stopping", es, DT_EARLY_STOPPING_STATE_DOUBLES) &&
      (rc = dt_early_stopping_unpack(es, &rs->early_stopping.st, what, err)))
    return rc;
  if (json_array(j, "reduce_lr", rl, DT_REDUCE_LR_STATE_DOUBLES) &&
      (rc = dt_reduce_lr_unpack(rl, &rs->reduce_lr.st, what, err)))
    return rc;
  return 0;
}

/* The position (trainer.json) and the shared model and optimizer files. The optimizer's
 * step count goes to *optim_step. */
static int load_shared(const parts_t *p, const char *dir, long *saved_world, long *samples,
                       int64_t *optim_step, bool *corrupt, dt_error_t *err) {
  run_state_t *rs = p->rs;
  char what[DT_CKPT_PATH_MAX + 64];
  void *data;
  size_t len;
  dt_json_t *j;
  long step = 0, epoch = 0, batch = 0, world = 0;
  int rc = read_part(dir, "trainer.json", &data, &len, what, sizeof what, err);
  if (rc) return rc;
  rc = dt_json_parse(data, len, what, &j, err);
  free(data);
  if (rc) return rc;
  /* Counts a run can reach: 2^40 steps or samples is far beyond any real run and still
   * exact in a double. */
  const long count_max = 1L << 40;
  if ((rc = json_long(j, "step", 0, count_max, what, &step, err)) ||
      (rc = json_long(j, "epoch", 0, count_max, what, &epoch, err)) ||
      (rc = json_long(j, "batch_in_epoch", 0, count_max, what, &batch, err)) ||
      (rc = json_long(j, "samples_in_epoch", 0, count_max, what, samples, err)) ||
      (rc = json_long(j, "world", 1, 1L << 24, what, &world, err))) {
    dt_json_free(j);
    return rc;
  }
  const dt_json_t *best = dt_json_get_typed(j, "best_metric", DT_JSON_NUMBER);
  const dt_json_t *seed = dt_json_get_typed(j, "seed", DT_JSON_STRING);
  rs->has_best = best != NULL;
  rs->best_metric = best ? best->number : 0.0;
  if (seed && strtoull(seed->string, NULL, 10) != p->env->seed)
    dt_log_warn(p->env->log, "the checkpoint was trained with train.seed = %s, this run has "
                "%" PRIu64 ": the data order and noise from here on follow the new seed",
                seed->string, p->env->seed);
  rc = load_callbacks(rs, j, what, err);
  dt_json_free(j);
  if (rc) return rc;
  rs->step = step;
  rs->epoch = epoch;
  rs->batch_in_epoch = batch;
  *saved_world = world;

  /* Parameters and the shared (rank-averaged) state; the best weights if kept. */
  const dt_model_t *m = p->m;
  if ((rc = decode_weights(m, dir, "model.safetensors", p->params, p->states, corrupt, err)))
    return rc;
  if (rs->best_weights && rs->early_stopping.st.has_best &&
      (rc = decode_weights(m, dir, "best_weights.safetensors", rs->best_weights,
                           rs->best_weights + m->num_params, corrupt, err)))
    return rc;

  /* The optimizer: the same kind, its moments and step count. */
  int on;
  dt_param_info_t *otensors;
  float **obases;
  optim_meta_t om = {p->o, 0.0};
  if (!(rc = ckpt_optimizer_tensors(m, p->o, &otensors, &obases, &on, err))) {
    rc = read_tensors(dir, "optimizer.safetensors", otensors, on, obases, check_optimizer_head, &om,
                      corrupt, err);
    free(otensors);
    free(obases);
  }
  *optim_step = (int64_t)om.step;
  return rc;
}

/* This rank's own file: PRNG, the epoch's running sums, its copy of the state. */
static int load_rank(const parts_t *p, const char *dir, dt_error_t *err) {
  run_state_t *rs = p->rs;
  char what[DT_CKPT_PATH_MAX + 64], file[64], rng[96];
  void *data;
  size_t len;
  snprintf(file, sizeof file, "rank-%d.safetensors", p->env->comm->rank);
  int rc = read_part(dir, file, &data, &len, what, sizeof what, err);
  if (rc) return rc;
  if ((rc = dt_safetensors_metadata(data, len, "rng", rng, sizeof rng, err)) ||
      sscanf(rng, "%" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64, &rs->rng.s[0], &rs->rng.s[1],
             &rs->rng.s[2], &rs->rng.s[3]) != 4)
    rc = dt_error_set(err, DT_ERR_FORMAT, "%s: no PRNG state", what);
  if (!rc) rc = meta_double(data, len, "epoch_loss_sum", what, &rs->epoch_loss_sum, err);
  if (!rc) rc = meta_double(data, len, "epoch_correct", what, &rs->epoch_correct, err);
  if (!rc) rc = meta_double(data, len, "epoch_total", what, &rs->epoch_total, err);
  double batches = 0;
  if (!rc) rc = meta_double(data, len, "epoch_batches", what, &batches, err);
  rs->epoch_batches = (long)batches;
  if (!rc) rc = dt_safetensors_decode(data, len, p->m->states, p->m->nstates, p->states, what, err);
  free(data);
  return rc;
}

/* The bytes of the files in a checkpoint directory (for the throughput report). */
static double dir_bytes(const char *dir) {
  double total = 0;
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  char p[DT_CKPT_PATH_MAX + 300];
  struct stat st;
  while ((e = readdir(d)))
    if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p && stat(p, &st) == 0 &&
        S_ISREG(st.st_mode))
      total += (double)st.st_size;
  closedir(d);
  return total;
}

int ckpt_resume(const ckpt_env_t *env, run_state_t *rs, dt_model_t *m, dt_optim_t *o,
                const char *from, bool *found, dt_error_t *err) {
  dt_comm_t *comm = env->comm;
  double start = dt_now_s();
  /* The large files are checked while they are loaded, not before (see read_tensors).
   * If one turns out corrupt, rank 0 picks the next checkpoint and every rank loads it
   * over the damaged values: every tensor of those files is in every checkpoint, and
   * the run state goes back to what it was before the first try. */
  const char *deferred[] = {"model.safetensors", "optimizer.safetensors",
                            rs->best_weights ? "best_weights.safetensors" : NULL, NULL};
  const run_state_t initial = *rs;
  char **rejected = NULL, why[DT_ERROR_MSG_MAX] = "";
  int nrejected = 0;
  bool give_up = false; /* rank 0 could not note a rejected checkpoint (out of memory) */
  struct {
    char dir[DT_CKPT_PATH_MAX];
    int code; /* 0 found, 1 none at all, 2 none usable */
  } pick;
  dt_error_t local = {0};
  long saved_world = 0, samples = 0;
  int64_t optim_step = 0;
  bool same_world = false;
  int rc = 0, comm_rc;
  double flags[2] = {0, 0}; /* ranks that failed, ranks that found a file corrupt */
  for (;;) {
    /* Rank 0 picks the checkpoint; everyone loads that one. */
    memset(&pick, 0, sizeof pick);
    if (comm->rank == 0 && give_up) {
      pick.code = 2;
    } else if (comm->rank == 0) {
      dt_error_clear(&local);
      const dt_ckpt_find_opts_t fo = {deferred, (const char *const *)rejected, why};
      rc = dt_ckpt_find(from, &fo, env->log, pick.dir, &local);
      pick.code = rc == 0 ? 0 : rc == DT_ERR_NOT_FOUND ? 1 : 2;
    }
    if ((comm_rc = dt_comm_broadcast(comm, &pick, sizeof pick, 0, err))) break;
    if (pick.code != 0) break;
    *rs = initial;
    bool corrupt = false;
    dt_error_clear(&local);
    parts_t p = {env, rs, m, o, NULL, NULL};
    rc = host_buffers(m, &p.params, &p.states, &local);
    if (!rc) rc = load_shared(&p, pick.dir, &saved_world, &samples, &optim_step, &corrupt, &local);
    same_world = saved_world == comm->world;
    if (!rc && same_world) rc = load_rank(&p, pick.dir, &local);
    /* What was loaded on the host becomes the model's. */
    if (!rc) rc = dt_model_from_host(m, DT_MODEL_PARAMS, &local);
    if (!rc) rc = dt_model_from_host(m, DT_MODEL_STATES, &local);
    if (!rc) o->step = optim_step;
    /* All ranks fail together: one that cannot load must not leave others training. */
    flags[0] = rc != 0;
    flags[1] = corrupt;
    if ((comm_rc = dt_comm_allreduce_sum_f64(comm, flags, 2, err))) break;
    /* A corrupt checkpoint under a root: the next one. (A checkpoint named directly
     * has nothing to fall back to, as when it fails to verify.) */
    if (flags[1] == 0 || strcmp(pick.dir, from) == 0) break;
    if (comm->rank != 0) continue;
    snprintf(why, sizeof why, "%s", corrupt ? local.msg : "a file does not match its manifest "
             "on another rank (corrupt)");
    const char *slash = strrchr(pick.dir, '/');
    char **grown = realloc(rejected, sizeof *rejected * ((size_t)nrejected + 2));
    if (grown) rejected = grown;
    if (!grown || !(rejected[nrejected] = strdup(slash ? slash + 1 : pick.dir))) {
      give_up = true;
      dt_error_set(&local, DT_ERR_NOMEM, "out of memory resuming after: %.900s", why);
      continue;
    }
    rejected[++nrejected] = NULL;
  }
  for (int i = 0; i < nrejected; i++) free(rejected[i]);
  free(rejected);
  if (comm_rc) return comm_rc;
  *found = pick.code == 0;
  if (pick.code == 1) {
    dt_log_info(env->log, "--resume: %s; starting from scratch", local.code ? local.msg : from);
    return 0;
  }
  if (pick.code == 2)
    return comm->rank == 0 ? dt_error_set(err, local.code == DT_ERR_NOMEM ? DT_ERR_NOMEM
                                                                          : DT_ERR_FORMAT,
                                          "%s", local.msg)
                           : dt_error_set(err, DT_ERR_FORMAT, "no usable checkpoint in %s", from);
  if (rc) return dt_error_set(err, local.code, "resuming from %s: %s", pick.dir, local.msg);
  if (flags[0]) return dt_error_set(err, DT_ERR_FORMAT, "resuming from %s failed on another rank",
                                    pick.dir);

  long steps_per_epoch = env->steps_per_epoch;
  if (!same_world) {
    /* The data cursor is re-derived: the epoch's permutation depends on (seed, epoch)
     * only, so the same samples come next in any world size; the global batch differs,
     * so the step count is re-counted in the new epoch length. */
    long global = env->batch_size * comm->world;
    rs->batch_in_epoch = samples / global;
    if (rs->batch_in_epoch > steps_per_epoch) rs->batch_in_epoch = steps_per_epoch;
    rs->step = rs->epoch * steps_per_epoch + rs->batch_in_epoch;
    rs->epoch_loss_sum = rs->epoch_correct = rs->epoch_total = 0.0;
    rs->epoch_batches = 0;
    dt_log_warn(env->log, "resuming a %ld-rank checkpoint with %d rank(s): parameters and "
                "optimizer state carry over; epoch %ld continues at batch %ld of %ld (%ld of its "
                "samples were done, %ld are repeated); each rank starts a fresh noise stream, and "
                "this epoch's training metrics count from here", saved_world, comm->world,
                rs->epoch + 1, rs->batch_in_epoch, steps_per_epoch, samples,
                samples - rs->batch_in_epoch * global);
  }
  if (rs->batch_in_epoch > steps_per_epoch)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: batch %ld of an epoch of %ld batches: the "
                        "checkpoint does not fit this data and batch size", pick.dir,
                        rs->batch_in_epoch, steps_per_epoch);
  rs->resumed = true;
  double mb = dir_bytes(pick.dir) / 1e6, secs = dt_now_s() - start;
  dt_log_info(env->log, "Resumed from %s: epoch %ld, batch %ld, step %ld (%.1f MB verified and "
              "loaded in %.3f s, %.0f MB/s)", pick.dir, rs->epoch + 1, rs->batch_in_epoch,
              rs->step, mb, secs, mb / (secs > 0 ? secs : 1e-9));
  return 0;
}
