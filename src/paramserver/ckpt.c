/* Server checkpoints (see ckpt.h), in the atomic directory format of checkpoint.h
 * under ps.checkpoint_dir, one directory per save named by the version:
 *
 *   ps-000000000001200/
 *     model.pb            the INIT message without parameters: tensors, optimizer,
 *                         signature, this server's place in the split
 *     range.safetensors   "params", "moment1", "moment2" (as the optimizer has them)
 *                         of the range; metadata: version, optimizer step, the sync
 *                         round's clock, and the live workers' clocks
 *
 * The workers listed are members again after --resume, for ps.heartbeat_timeout_s:
 * SSP and sync keep waiting for them as they reconnect instead of running ahead. */
#define _POSIX_C_SOURCE 200809L
#include "ckpt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/checkpoint.h"
#include "dtrain/ps_frame.h"
#include "model_pb.h"

static const char MODEL_FILE[] = "model.pb";
static const char RANGE_FILE[] = "range.safetensors";

/* The range's tensors for safetensors: params and the optimizer's moments. */
static int range_tensors(const ps_range_t *r, dt_param_info_t t[3], float *bases[3],
                         dt_error_t *err) {
  if (r->n > (size_t)INT32_MAX)
    return dt_error_set(err, DT_ERR_ARG, "a range of %zu parameters is too large to checkpoint",
                        r->n);
  static const char *const names[] = {"params", "moment1", "moment2"};
  float *b[3] = {r->params, r->optim.moment1, r->optim.moment2};
  int k = 1 + dt_optim_num_moments(&r->optim);
  for (int i = 0; i < k; i++) {
    memset(&t[i], 0, sizeof t[i]);
    snprintf(t[i].name, sizeof t[i].name, "%s", names[i]);
    t[i].shape = dt_shape_1d((int)r->n);
    t[i].count = r->n;
    bases[i] = b[i];
  }
  return k;
}

/* "id:clock,id:clock" of the live workers (malloc'd). */
static char *members_text(const ps_snapshot_t *st) {
  size_t cap = 32 * (size_t)st->nmembers + 1, used = 0;
  char *t = malloc(cap);
  if (!t) return NULL;
  t[0] = '\0';
  for (int i = 0; i < st->nmembers; i++)
    used += (size_t)snprintf(t + used, cap - used, "%s%u:%" PRId64, i ? "," : "",
                             st->members[i].id, st->members[i].clock);
  return t;
}

int ps_ckpt_save(const char *dir, long keep, const ps_range_t *r, const ps_snapshot_t *st,
                 const dt_log_t *log, dt_error_t *err) {
  char name[64], version[32], step[32], round[32], sig[32];
  snprintf(name, sizeof name, "ps-%015" PRIu64, r->version);
  snprintf(version, sizeof version, "%" PRIu64, r->version);
  snprintf(step, sizeof step, "%" PRId64, r->optim.step);
  snprintf(round, sizeof round, "%" PRId64, st->round);
  snprintf(sig, sizeof sig, "%016" PRIx64, r->signature);
  char *members = members_text(st);
  uint8_t *model = NULL;
  size_t model_len = 0, range_len = 0;
  void *range = NULL;
  dt_param_info_t t[3];
  float *bases[3];
  int rc = members ? 0 : dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
  int k = rc ? 0 : range_tensors(r, t, bases, err);
  if (k < 0) rc = k;
  const char *meta[] = {"format",   "dtrain-ps-range", "version", version, "optim_step", step,
                        "round",    round,             "members", members, "signature",  sig,
                        NULL};
  ps_model_t m = ps_range_model(r);
  if (!rc) rc = ps_model_pack(&m, &model, &model_len, err);
  if (!rc)
    rc = dt_safetensors_encode_parts(t, k, (const float *const *)bases, meta, &range, &range_len,
                                     err);
  dt_ckpt_writer_t *w = NULL;
  if (!rc) rc = dt_ckpt_begin(dir, name, &w, err);
  if (!rc && (rc = dt_ckpt_add_file(w, MODEL_FILE, model, model_len, err)) == 0)
    rc = dt_ckpt_add_file(w, RANGE_FILE, range, range_len, err);
  if (!rc) {
    char info[256];
    snprintf(info, sizeof info,
             "{\"kind\": \"dtrain-ps\", \"version\": %s, \"server_index\": %u, "
             "\"num_servers\": %u, \"signature\": \"%s\"}",
             version, r->index, r->nservers, sig);
    rc = dt_ckpt_commit(w, info, (int)keep, err);
    w = NULL;
  }
  if (w) dt_ckpt_abort(w);
  free(members);
  free(model);
  free(range);
  if (rc) return dt_error_prefix(err, "checkpoint %s/%s: ", dir, name);
  dt_log_info(log, "checkpoint %s/%s written: version %" PRIu64 ", %d live worker(s)", dir, name,
              r->version, st->nmembers);
  return 0;
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

/* The "members" metadata ("id:clock,...") into st. */
static int read_members(const void *data, size_t len, const char *dir, ps_snapshot_t *st,
                        dt_error_t *err) {
  size_t cap = 64 + 32 * 65536;
  char *v = malloc(cap);
  if (!v) return dt_error_set(err, DT_ERR_NOMEM, "out of memory restoring a checkpoint");
  int rc = dt_safetensors_metadata(data, len, "members", v, cap, err);
  int n = 0;
  for (const char *p = v; rc == 0 && *p; p++) n += *p == ',';
  st->nmembers = 0;
  if (rc == 0 && !(st->members = malloc((size_t)(n + 1) * sizeof *st->members)))
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory restoring a checkpoint");
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
    st->members[st->nmembers++] = (ps_member_clock_t){.id = (uint32_t)id, .clock = clock};
  }
  free(v);
  return rc;
}

int ps_ckpt_restore(const char *root, dt_log_t *log, ps_range_t *r, ps_snapshot_t *st,
                    char *path, size_t cap, dt_error_t *err) {
  char dir[DT_CKPT_PATH_MAX];
  memset(st, 0, sizeof *st);
  int rc = dt_ckpt_find_latest(root, log, dir, err);
  if (rc) return rc;
  snprintf(path, cap, "%s", dir);
  void *model = NULL, *range = NULL;
  size_t model_len = 0, range_len = 0;
  Dtrain__Ps__Init *in = NULL;
  dt_param_info_t *tensors = NULL;
  bool have_range = false;
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
  ps_model_t m;
  if ((rc = ps_model_from_init(in, &m, &tensors, err)) || (rc = ps_range_init(r, &m, NULL, err)))
    goto done;
  have_range = true;
  dt_param_info_t t[3];
  float *bases[3];
  int k = range_tensors(r, t, bases, err);
  char what[DT_CKPT_PATH_MAX + 32];
  snprintf(what, sizeof what, "%s/%s", dir, RANGE_FILE);
  uint64_t version, step, round;
  if (k < 0) rc = k;
  else if (!(rc = dt_safetensors_decode_parts(range, range_len, t, k, bases, what, err)) &&
           !(rc = meta_u64(range, range_len, "version", &version, dir, err)) &&
           !(rc = meta_u64(range, range_len, "optim_step", &step, dir, err)) &&
           !(rc = meta_u64(range, range_len, "round", &round, dir, err)))
    rc = read_members(range, range_len, dir, st, err);
  if (rc) goto done;
  r->version = version;
  r->optim.step = (int64_t)step;
  st->round = round > 0 ? (int64_t)round : 1;
done:
  if (rc) {
    if (have_range) ps_range_free(r);
    ps_snapshot_free(st);
  }
  if (in) dtrain__ps__init__free_unpacked(in, NULL);
  free(tensors);
  free(model);
  free(range);
  return rc;
}
