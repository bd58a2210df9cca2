/* Server checkpoints (see ps_server.h), in the atomic directory format of
 * checkpoint.h under ps.checkpoint_dir, one directory per save named by the version:
 *
 *   ps-000000000001200/
 *     model.pb            the INIT message without parameters: tensors, optimizer,
 *                         signature, this server's place in the split
 *     range.safetensors   "params", "moment1", "moment2" (as the optimizer has them)
 *                         of the range; metadata: version, optimizer step, the sync
 *                         round's clock,
 *                         and the live workers' clocks
 *
 * The workers listed are members again after --resume, for ps.heartbeat_timeout_s:
 * SSP and sync keep waiting for them as they reconnect instead of running ahead. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/checkpoint.h"
#include "ps_server.h"

static const char MODEL_FILE[] = "model.pb";
static const char RANGE_FILE[] = "range.safetensors";

/* The range's tensors for safetensors: params and the optimizer's moments. */
static int range_tensors(const ps_server_t *s, dt_param_info_t t[3], float *bases[3],
                         dt_error_t *err) {
  if (s->n > (size_t)INT32_MAX)
    return dt_error_set(err, DT_ERR_ARG, "a range of %zu parameters is too large to checkpoint",
                        s->n);
  static const char *const names[] = {"params", "moment1", "moment2"};
  float *b[3] = {s->params, s->optim.moment1, s->optim.moment2};
  int k = 1 + dt_optim_num_moments(&s->optim);
  for (int i = 0; i < k; i++) {
    memset(&t[i], 0, sizeof t[i]);
    snprintf(t[i].name, sizeof t[i].name, "%s", names[i]);
    t[i].shape = dt_shape_1d((int)s->n);
    t[i].count = s->n;
    bases[i] = b[i];
  }
  return k;
}

static int pack_model(const ps_server_t *s, uint8_t **out, size_t *len, dt_error_t *err) {
  Dtrain__Ps__Init in = DTRAIN__PS__INIT__INIT;
  Dtrain__Ps__Optimizer o = DTRAIN__PS__OPTIMIZER__INIT;
  Dtrain__Ps__Tensor *ts = calloc((size_t)s->ntensors, sizeof *ts);
  Dtrain__Ps__Tensor **tp = calloc((size_t)s->ntensors, sizeof *tp);
  uint32_t *dims = calloc((size_t)s->ntensors * DT_MAX_DIMS, sizeof *dims);
  int rc = 0;
  if (!ts || !tp || !dims) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
    goto done;
  }
  for (int i = 0; i < s->ntensors; i++) {
    const dt_param_info_t *t = &s->tensors[i];
    dtrain__ps__tensor__init(&ts[i]);
    ts[i].name = (char *)(uintptr_t)t->name;
    ts[i].n_shape = (size_t)t->shape.ndim;
    ts[i].shape = dims + (size_t)i * DT_MAX_DIMS;
    for (int d = 0; d < t->shape.ndim; d++) ts[i].shape[d] = (uint32_t)t->shape.dims[d];
    ts[i].offset = t->offset;
    ts[i].count = t->count;
    ts[i].decay = t->decay;
    tp[i] = &ts[i];
  }
  o.kind = (uint32_t)s->ocfg.kind;
  o.momentum = s->ocfg.momentum;
  o.nesterov = s->ocfg.nesterov;
  o.beta1 = s->ocfg.beta1;
  o.beta2 = s->ocfg.beta2;
  o.rho = s->ocfg.rho;
  o.epsilon = s->ocfg.eps;
  o.weight_decay = s->ocfg.weight_decay;
  in.signature = s->signature;
  in.num_params = s->num_params;
  in.server_index = s->index;
  in.num_servers = s->nservers;
  in.n_tensors = (size_t)s->ntensors;
  in.tensors = tp;
  in.optimizer = &o;
  *len = protobuf_c_message_get_packed_size(&in.base);
  if (!(*out = malloc(*len ? *len : 1))) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
    goto done;
  }
  protobuf_c_message_pack(&in.base, *out);
done:
  free(ts);
  free(tp);
  free(dims);
  return rc;
}

/* "id:clock,id:clock" of the live workers (malloc'd): the clock of each one's latest
 * push that the saved parameters hold. In sync mode the pushes of the round being
 * summed are not in them: their workers send them again after a restart. */
static char *members_text(const ps_server_t *s) {
  size_t cap = 32 * (size_t)s->nmembers + 1, used = 0;
  char *t = malloc(cap);
  if (!t) return NULL;
  t[0] = '\0';
  for (int i = 0; i < s->nmembers; i++) {
    int64_t clock = s->members[i]->pushed;
    if (s->cfg.consistency == DT_PS_SYNC && clock > s->round_clock - 1) clock = s->round_clock - 1;
    used += (size_t)snprintf(t + used, cap - used, "%s%u:%" PRId64, i ? "," : "",
                             s->members[i]->id, clock);
  }
  return t;
}

int ps_ckpt_save(ps_server_t *s, dt_error_t *err) {
  if (!s->cfg.checkpoint_dir[0] || !s->initialized) return 0;
  char name[64], version[32], step[32], round[32], sig[32];
  snprintf(name, sizeof name, "ps-%015" PRIu64, s->version);
  snprintf(version, sizeof version, "%" PRIu64, s->version);
  snprintf(step, sizeof step, "%" PRId64, s->optim.step);
  snprintf(round, sizeof round, "%" PRId64, s->round_clock);
  snprintf(sig, sizeof sig, "%016" PRIx64, s->signature);
  char *members = members_text(s);
  uint8_t *model = NULL;
  size_t model_len = 0, range_len = 0;
  void *range = NULL;
  dt_param_info_t t[3];
  float *bases[3];
  int rc = members ? 0 : dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
  int k = rc ? 0 : range_tensors(s, t, bases, err);
  if (k < 0) rc = k;
  const char *meta[] = {"format",   "dtrain-ps-range", "version", version, "optim_step", step,
                        "round",    round,             "members", members, "signature",  sig,
                        NULL};
  if (!rc) rc = pack_model(s, &model, &model_len, err);
  if (!rc)
    rc = dt_safetensors_encode_parts(t, k, (const float *const *)bases, meta, &range, &range_len,
                                     err);
  dt_ckpt_writer_t *w = NULL;
  if (!rc) rc = dt_ckpt_begin(s->cfg.checkpoint_dir, name, &w, err);
  if (!rc && (rc = dt_ckpt_add_file(w, MODEL_FILE, model, model_len, err)) == 0)
    rc = dt_ckpt_add_file(w, RANGE_FILE, range, range_len, err);
  if (!rc) {
    char info[256];
    snprintf(info, sizeof info,
             "{\"kind\": \"dtrain-ps\", \"version\": %s, \"server_index\": %u, "
             "\"num_servers\": %u, \"signature\": \"%s\"}",
             version, s->index, s->nservers, sig);
    rc = dt_ckpt_commit(w, info, (int)s->cfg.keep_checkpoints, err);
    w = NULL;
  }
  if (w) dt_ckpt_abort(w);
  free(members);
  free(model);
  free(range);
  s->last_ckpt_time = ps_now();
  if (rc) return dt_error_prefix(err, "checkpoint %s/%s: ", s->cfg.checkpoint_dir, name);
  s->last_ckpt_version = s->version;
  dt_log_info(&s->log, "checkpoint %s/%s written: version %" PRIu64 ", %d live worker(s)",
              s->cfg.checkpoint_dir, name, s->version, s->nmembers);
  return 0;
}

void ps_ckpt_maybe(ps_server_t *s, double now) {
  if (!s->cfg.checkpoint_dir[0] || !s->initialized || s->version == s->last_ckpt_version) return;
  bool by_time = s->cfg.checkpoint_every_s > 0 && now - s->last_ckpt_time >= s->cfg.checkpoint_every_s;
  bool by_count = s->cfg.checkpoint_every_updates > 0 &&
                  s->version - s->last_ckpt_version >= (uint64_t)s->cfg.checkpoint_every_updates;
  if (!by_time && !by_count) return;
  dt_error_t err = {0};
  /* A failed save (disk full) is reported and training goes on: the previous
   * checkpoint is intact, and the next attempt comes at the next interval. */
  if (ps_ckpt_save(s, &err)) dt_log_error(&s->log, "%s", err.msg);
}

static int meta_u64(const void *data, size_t len, const char *key, uint64_t *out,
                    const char *dir, dt_error_t *err) {
  char v[64];
  int rc = dt_safetensors_metadata(data, len, key, v, sizeof v, err);
  if (rc) return dt_error_prefix(err, "%s/%s: ", dir, RANGE_FILE);
  char *end;
  unsigned long long x = strtoull(v, &end, 10);
  if (!v[0] || *end)
    return dt_error_set(err, DT_ERR_FORMAT, "%s/%s: metadata %s = '%s' is not a number", dir,
                        RANGE_FILE, key, v);
  *out = x;
  return 0;
}

static int restore_members(ps_server_t *s, const void *data, size_t len, const char *dir,
                           dt_error_t *err) {
  size_t cap = 64 + 32 * 65536;
  char *v = malloc(cap);
  if (!v) return dt_error_set(err, DT_ERR_NOMEM, "out of memory restoring a checkpoint");
  int rc = dt_safetensors_metadata(data, len, "members", v, cap, err);
  for (char *p = v; rc == 0 && *p;) {
    char *end;
    unsigned long id = strtoul(p, &end, 10);
    long long clock = 0;
    if (end == p || *end != ':' || id > UINT32_MAX) {
      rc = dt_error_set(err, DT_ERR_FORMAT, "%s/%s: bad members list '%.64s'", dir, RANGE_FILE,
                        v);
      break;
    }
    p = end + 1;
    clock = strtoll(p, &end, 10);
    if (end == p || (*end && *end != ',') || clock < 0) {
      rc = dt_error_set(err, DT_ERR_FORMAT, "%s/%s: bad members list '%.64s'", dir, RANGE_FILE,
                        v);
      break;
    }
    p = *end ? end + 1 : end;
    if (ps_member_find(s, (uint32_t)id)) continue;
    member_t *m = ps_member_add(s, (uint32_t)id, clock, err);
    if (!m) {
      rc = DT_ERR_NOMEM;
      break;
    }
    /* sync: it was in the rounds before, and is in the ones to come. */
    m->joined = true;
    m->last_push = clock;
  }
  free(v);
  return rc;
}

int ps_ckpt_restore(ps_server_t *s, dt_error_t *err) {
  char dir[DT_CKPT_PATH_MAX];
  int rc = dt_ckpt_find_latest(s->cfg.checkpoint_dir, &s->log, dir, err);
  if (rc) return rc;
  void *model = NULL, *range = NULL;
  size_t model_len = 0, range_len = 0;
  Dtrain__Ps__Init *in = NULL;
  if ((rc = dt_ckpt_read_file(dir, MODEL_FILE, &model, &model_len, err)) ||
      (rc = dt_ckpt_read_file(dir, RANGE_FILE, &range, &range_len, err)))
    goto done;
  in = dtrain__ps__init__unpack(NULL, model_len, model);
  if (!in) {
    rc = dt_error_set(err, DT_ERR_FORMAT, "%s/%s does not parse as dtrain.ps.Init", dir,
                      MODEL_FILE);
    goto done;
  }
  if ((rc = dt_ps_check_init(in, SIZE_MAX, err))) {
    dt_error_prefix(err, "%s/%s: ", dir, MODEL_FILE);
    goto done;
  }
  if ((rc = ps_shard_init(s, in, NULL, err))) goto done;
  dt_param_info_t t[3];
  float *bases[3];
  int k = range_tensors(s, t, bases, err);
  char what[DT_CKPT_PATH_MAX + 32];
  snprintf(what, sizeof what, "%s/%s", dir, RANGE_FILE);
  uint64_t version, step, round;
  if (k < 0) rc = k;
  else if (!(rc = dt_safetensors_decode_parts(range, range_len, t, k, bases, what, err)) &&
           !(rc = meta_u64(range, range_len, "version", &version, dir, err)) &&
           !(rc = meta_u64(range, range_len, "optim_step", &step, dir, err)) &&
           !(rc = meta_u64(range, range_len, "round", &round, dir, err)))
    rc = restore_members(s, range, range_len, dir, err);
  if (rc) {
    ps_shard_free(s);
    goto done;
  }
  s->version = version;
  s->optim.step = (int64_t)step;
  s->round_clock = round > 0 ? (int64_t)round : 1;
  s->last_ckpt_version = version;
  s->last_ckpt_time = ps_now();
  dt_log_info(&s->log, "resumed from %s: version %" PRIu64 ", server %u of %u, parameters [%"
              PRIu64 ", %" PRIu64 "); waiting up to %g s for %d worker(s) to reconnect", dir,
              version, s->index, s->nservers, s->begin, s->end, s->cfg.heartbeat_timeout_s,
              s->nmembers);
done:
  if (in) dtrain__ps__init__free_unpacked(in, NULL);
  free(model);
  free(range);
  return rc;
}
