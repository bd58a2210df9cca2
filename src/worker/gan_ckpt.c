/* Checkpoints of a GAN run (see gan_ckpt.h). */
#define _POSIX_C_SOURCE 200809L
#include "gan_ckpt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/checkpoint.h"
#include "dtrain/json.h"

/* One rank's part of the position, gathered to rank 0. */
typedef struct {
  uint64_t rng[4];
  double sums[4];
  double batches;
} rank_part_t;

static const char *const file_names[2][2] = {
    {"generator.safetensors", "generator_optimizer.safetensors"},
    {"discriminator.safetensors", "discriminator_optimizer.safetensors"}};

/* Writes (w non-NULL) or reads (dir non-NULL) one model's file. */
static int model_file(dt_ckpt_writer_t *w, const char *dir, int which, bool optimizer,
                      gan_t *gan, const char *const *meta, dt_error_t *err) {
  dt_model_t *m = which ? &gan->d : &gan->g;
  dt_optim_t *o = which ? &gan->d_opt : &gan->g_opt;
  float *params, *states;
  int rc, n;
  if ((rc = dt_model_to_host(m, DT_MODEL_PARAMS, &params, err)) ||
      (rc = dt_model_to_host(m, DT_MODEL_STATES, &states, err)))
    return rc;
  dt_param_info_t *tensors;
  float **bases;
  /* The tensors as a single run's checkpoint lists them (checkpointing.h). */
  if ((rc = optimizer ? ckpt_optimizer_tensors(m, o, &tensors, &bases, &n, err)
                      : ckpt_weight_tensors(m, params, states, &tensors, &bases, &n, err)))
    return rc;
  const char *file = file_names[which][optimizer];
  if (w) {
    rc = dt_ckpt_add_safetensors(w, file, tensors, n, (const float *const *)bases, meta, NULL,
                                 err);
  } else {
    void *data = NULL;
    size_t len = 0;
    char what[DT_CKPT_PATH_MAX + 64];
    snprintf(what, sizeof what, "%s/%s", dir, file);
    rc = dt_ckpt_read_file(dir, file, &data, &len, err);
    if (!rc) rc = dt_safetensors_decode_parts(data, len, tensors, n, bases, what, err);
    free(data);
    if (!rc && !optimizer && !(rc = dt_model_from_host(m, DT_MODEL_PARAMS, err)))
      rc = dt_model_from_host(m, DT_MODEL_STATES, err);
  }
  free(tensors);
  free(bases);
  return rc;
}

/* gan.json: the shared position and every rank's part. Returns a malloc'd text. */
static char *position_json(const gan_ckpt_env_t *env, const gan_t *gan,
                           const gan_position_t *pos, const rank_part_t *all, const char *why) {
  int world = env->comm->world;
  size_t cap = 1024 + (size_t)world * 512;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  size_t used = (size_t)snprintf(
      buf, cap,
      "{\n  \"format\": \"dtrain-gan\",\n  \"step\": %ld,\n  \"epoch\": %ld,\n"
      "  \"batch_in_epoch\": %ld,\n  \"world\": %d,\n  \"seed\": \"%" PRIu64 "\",\n"
      "  \"g_optimizer\": \"%s\",\n  \"g_optimizer_step\": %" PRId64 ",\n"
      "  \"d_optimizer\": \"%s\",\n  \"d_optimizer_step\": %" PRId64 ",\n"
      "  \"zrng\": \"%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 "\",\n"
      "  \"reason\": \"%s\",\n  \"ranks\": [",
      pos->step, pos->epoch, pos->batch_in_epoch, world, env->seed,
      dt_optim_names[gan->g_opt.cfg.kind], gan->g_opt.step, dt_optim_names[gan->d_opt.cfg.kind],
      gan->d_opt.step, pos->zrng.s[0], pos->zrng.s[1], pos->zrng.s[2], pos->zrng.s[3], why);
  for (int r = 0; r < world && used < cap; r++) {
    const rank_part_t *p = &all[r];
    /* %.17g reads back to the same bits. */
    used += (size_t)snprintf(
        buf + used, cap - used,
        "%s\n    {\"rng\": \"%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 "\", "
        "\"sums\": [%.17g, %.17g, %.17g, %.17g], \"batches\": %.17g}",
        r ? "," : "", p->rng[0], p->rng[1], p->rng[2], p->rng[3], p->sums[0], p->sums[1],
        p->sums[2], p->sums[3], p->batches);
  }
  if (used < cap) used += (size_t)snprintf(buf + used, cap - used, "\n  ]\n}\n");
  if (used >= cap) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* Rank 0's writing: every file, then the commit. */
static int write_all(const gan_ckpt_env_t *env, gan_t *gan, const gan_position_t *pos,
                     const rank_part_t *all, const char *name, const char *why, dt_error_t *err) {
  dt_ckpt_writer_t *w;
  int rc = dt_ckpt_begin(env->opt->dir, name, &w, err);
  if (rc) return rc;
  size_t cfg_len = dt_config_to_string(env->cfg, NULL, 0);
  char *cfg_text = malloc(cfg_len + 1);
  char *json = position_json(env, gan, pos, all, why);
  if (!cfg_text || !json) {
    free(cfg_text);
    free(json);
    dt_ckpt_abort(w);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a GAN checkpoint");
  }
  dt_config_to_string(env->cfg, cfg_text, cfg_len + 1);
  char step[32];
  snprintf(step, sizeof step, "%ld", pos->step);
  const char *meta[] = {"format", "dtrain-gan", "step", step, "config", cfg_text, NULL};
  const char *ometa[] = {"format", "dtrain-gan", "step", step, NULL};
  for (int which = 0; which < 2 && !rc; which++) {
    rc = model_file(w, NULL, which, false, gan, meta, err);
    if (!rc) rc = model_file(w, NULL, which, true, gan, ometa, err);
  }
  if (!rc) rc = dt_ckpt_add_file(w, "gan.json", json, strlen(json), err);
  free(cfg_text);
  free(json);
  if (rc) {
    dt_ckpt_abort(w);
    return rc;
  }
  char info[256];
  snprintf(info, sizeof info, "{\"step\": %ld, \"epoch\": %ld, \"world\": %d, \"reason\": \"%s\"}",
           pos->step, pos->epoch, env->comm->world, why);
  return dt_ckpt_commit(w, info, (int)env->opt->keep_last, err);
}

int gan_ckpt_save(const gan_ckpt_env_t *env, gan_t *gan, const gan_position_t *pos,
                  const char *why, dt_error_t *err) {
  dt_comm_t *comm = env->comm;
  dt_ckpt_prune_in_background(true); /* as ckpt_save: pruning beside training */
  rank_part_t mine = {{pos->rng.s[0], pos->rng.s[1], pos->rng.s[2], pos->rng.s[3]},
                      {pos->sums[0], pos->sums[1], pos->sums[2], pos->sums[3]},
                      (double)pos->batches};
  rank_part_t *all = calloc((size_t)comm->world, sizeof *all);
  if (!all) return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a GAN checkpoint");
  int rc = dt_comm_allgather(comm, &mine, all, sizeof mine, err);
  if (rc) {
    free(all);
    return rc;
  }
  char name[64];
  snprintf(name, sizeof name, "ckpt-%010ld", pos->step);
  dt_error_t local = {0};
  rc = comm->rank == 0 ? write_all(env, gan, pos, all, name, why, &local) : 0;
  free(all);
  /* Everyone learns rank 0's outcome. */
  double failed = rc != 0;
  int crc = dt_comm_broadcast(comm, &failed, sizeof failed, 0, err);
  if (crc) return crc;
  if (failed)
    return comm->rank == 0 ? dt_error_set(err, local.code, "checkpoint %s: %s", name, local.msg)
                           : dt_error_set(err, DT_ERR_IO, "rank 0 could not write checkpoint %s",
                                          name);
  dt_log_info(env->log, "Checkpoint %s/%s (%s)", env->opt->dir, name, why);
  return 0;
}

static int parse_words(const char *s, uint64_t w[4]) {
  return s && sscanf(s, "%" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64, &w[0], &w[1], &w[2],
                     &w[3]) == 4;
}

static int bad(dt_error_t *err, const char *what, const char *key) {
  return dt_error_set(err, DT_ERR_FORMAT, "%s: missing or bad \"%s\"", what, key);
}

/* gan.json into pos and the optimizers' step counts, checked against this run. */
static int load_position(const gan_ckpt_env_t *env, gan_t *gan, gan_position_t *pos,
                         const char *dir, dt_error_t *err) {
  char what[DT_CKPT_PATH_MAX + 64];
  snprintf(what, sizeof what, "%s/gan.json", dir);
  void *data;
  size_t len;
  dt_json_t *j;
  int rc = dt_ckpt_read_file(dir, "gan.json", &data, &len, err);
  if (rc) return rc;
  rc = dt_json_parse(data, len, what, &j, err);
  free(data);
  if (rc) return rc;
  const char *nums[] = {"step", "epoch", "batch_in_epoch", "world", "g_optimizer_step",
                        "d_optimizer_step"};
  double v[6];
  for (int i = 0; i < 6 && !rc; i++) {
    const dt_json_t *n = dt_json_get_typed(j, nums[i], DT_JSON_NUMBER);
    if (!n || n->number < 0) rc = bad(err, what, nums[i]);
    else v[i] = n->number;
  }
  const dt_json_t *zr = dt_json_get_typed(j, "zrng", DT_JSON_STRING);
  const dt_json_t *ranks = dt_json_get_typed(j, "ranks", DT_JSON_ARRAY);
  const dt_json_t *go = dt_json_get_typed(j, "g_optimizer", DT_JSON_STRING);
  const dt_json_t *dop = dt_json_get_typed(j, "d_optimizer", DT_JSON_STRING);
  if (!rc && (!zr || !parse_words(zr->string, pos->zrng.s))) rc = bad(err, what, "zrng");
  if (!rc && (!go || !dop)) rc = bad(err, what, "g_optimizer");
  if (!rc && (int)v[3] != env->comm->world)
    rc = dt_error_set(err, DT_ERR_CONFIG, "%s: the GAN run was saved with %d rank(s) and "
                      "resumes with the same number only (this run has %d)", what, (int)v[3],
                      env->comm->world);
  if (!rc && (strcmp(go->string, dt_optim_names[gan->g_opt.cfg.kind]) != 0 ||
              strcmp(dop->string, dt_optim_names[gan->d_opt.cfg.kind]) != 0))
    rc = dt_error_set(err, DT_ERR_CONFIG, "%s: the checkpoint's optimizers are %s (generator) "
                      "and %s (discriminator), the config's %s and %s", what, go->string,
                      dop->string, dt_optim_names[gan->g_opt.cfg.kind],
                      dt_optim_names[gan->d_opt.cfg.kind]);
  if (!rc && (!ranks || ranks->count != env->comm->world)) rc = bad(err, what, "ranks");
  if (!rc) {
    const dt_json_t *r = ranks->child;
    for (int i = 0; i < env->comm->rank; i++) r = r->next;
    const dt_json_t *rng = dt_json_get_typed(r, "rng", DT_JSON_STRING);
    const dt_json_t *sums = dt_json_get_typed(r, "sums", DT_JSON_ARRAY);
    const dt_json_t *batches = dt_json_get_typed(r, "batches", DT_JSON_NUMBER);
    if (!rng || !parse_words(rng->string, pos->rng.s) || !sums || sums->count != 4 || !batches) {
      rc = bad(err, what, "ranks");
    } else {
      int i = 0;
      for (const dt_json_t *e = sums->child; e; e = e->next) pos->sums[i++] = e->number;
      pos->batches = (long)batches->number;
    }
  }
  dt_json_free(j);
  if (rc) return rc;
  pos->step = (long)v[0];
  pos->epoch = (long)v[1];
  pos->batch_in_epoch = (long)v[2];
  gan->g_opt.step = (int64_t)v[4];
  gan->d_opt.step = (int64_t)v[5];
  return 0;
}

int gan_ckpt_resume(const gan_ckpt_env_t *env, gan_t *gan, gan_position_t *pos,
                    const char *from, bool *found, dt_error_t *err) {
  dt_comm_t *comm = env->comm;
  struct {
    char dir[DT_CKPT_PATH_MAX];
    int code; /* 0 found, 1 none at all, 2 none usable */
  } pick;
  memset(&pick, 0, sizeof pick);
  dt_error_t local = {0};
  if (comm->rank == 0) {
    int rc = dt_ckpt_find_latest(from, env->log, pick.dir, &local);
    pick.code = rc == 0 ? 0 : rc == DT_ERR_NOT_FOUND ? 1 : 2;
  }
  int rc = dt_comm_broadcast(comm, &pick, sizeof pick, 0, err);
  if (rc) return rc;
  *found = pick.code == 0;
  if (pick.code == 1) {
    dt_log_info(env->log, "--resume: %s; starting from scratch", local.code ? local.msg : from);
    return 0;
  }
  if (pick.code == 2)
    return comm->rank == 0 ? dt_error_set(err, DT_ERR_FORMAT, "%s", local.msg)
                           : dt_error_set(err, DT_ERR_FORMAT, "no usable checkpoint in %s", from);
  /* The files were verified by rank 0 (sizes and CRC32C) when it picked them. */
  rc = load_position(env, gan, pos, pick.dir, &local);
  for (int which = 0; which < 2 && !rc; which++) {
    rc = model_file(NULL, pick.dir, which, false, gan, NULL, &local);
    if (!rc) rc = model_file(NULL, pick.dir, which, true, gan, NULL, &local);
  }
  /* All ranks fail together. */
  double failed = rc != 0;
  int crc = dt_comm_allreduce_sum_f64(comm, &failed, 1, err);
  if (crc) return crc;
  if (rc) return dt_error_set(err, local.code, "resuming from %s: %s", pick.dir, local.msg);
  if (failed)
    return dt_error_set(err, DT_ERR_FORMAT, "resuming from %s failed on another rank", pick.dir);
  dt_log_info(env->log, "Resumed from %s: epoch %ld, batch %ld, step %ld", pick.dir,
              pos->epoch + 1, pos->batch_in_epoch, pos->step);
  return 0;
}
