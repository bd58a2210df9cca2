/* Saved models: writing one, and loading a saved model or a checkpoint (see
 * saved_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "saved_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/log.h"
#include "checkpointing.h"

const char *const saved_model_target_names[] = {"labels", "one_hot", "input", "bits", "values",
                                                NULL};

static const char WEIGHTS_FILE[] = "model.safetensors";
static const char PREPROCESS_FILE[] = "preprocess.json";

/* ---- writing ---- */

int saved_model_write(const char *dir, dt_model_t *m, const dt_config_t *cfg,
                      const char *preprocess_json, const saved_model_info_t *info,
                      dt_error_t *err) {
  float *params, *states;
  int rc = dt_model_to_host(m, DT_MODEL_PARAMS, &params, err);
  if (!rc) rc = dt_model_to_host(m, DT_MODEL_STATES, &states, err);
  if (rc) return dt_error_prefix(err, "saving the model to %s: ", dir);
  size_t cfg_len = dt_config_to_string(cfg, NULL, 0);
  char *cfg_text = malloc(cfg_len + 1);
  dt_param_info_t *tensors = NULL;
  float **bases = NULL;
  int n = 0;
  if (!cfg_text) return dt_error_set(err, DT_ERR_NOMEM, "out of memory saving the model");
  dt_config_to_string(cfg, cfg_text, cfg_len + 1);
  if ((rc = ckpt_weight_tensors(m, params, states, &tensors, &bases, &n, err))) {
    free(cfg_text);
    return rc;
  }
  char step[32], epoch[32], inf[512];
  snprintf(step, sizeof step, "%ld", info->step);
  snprintf(epoch, sizeof epoch, "%ld", info->epoch);
  const char *weights = info->weights ? info->weights : "final";
  const char *target = saved_model_target_names[info->target];
  const char *meta[] = {"format", "dtrain", "kind", "saved-model", "step", step,
                        "epoch", epoch, "target", target, "weights", weights,
                        "config", cfg_text, NULL};
  dt_ckpt_writer_t *w = NULL;
  if (!(rc = dt_ckpt_begin_dir(dir, &w, err))) {
    const char *pre = preprocess_json ? preprocess_json : "{}";
    rc = dt_ckpt_add_safetensors(w, WEIGHTS_FILE, tensors, n, (const float *const *)bases, meta,
                                 NULL, err);
    if (!rc) rc = dt_ckpt_add_file(w, PREPROCESS_FILE, pre, strlen(pre), err);
    /* The weights' description is ours (no quotes or backslashes in it). */
    snprintf(inf, sizeof inf, "{\"kind\": \"saved-model\", \"step\": %ld, \"epoch\": %ld, "
             "\"weights\": \"%s\"}", info->step, info->epoch, weights);
    if (rc) dt_ckpt_abort(w);
    else rc = dt_ckpt_commit(w, inf, 0, err);
  }
  free(tensors);
  free(bases);
  free(cfg_text);
  return rc ? dt_error_prefix(err, "saving the model to %s: ", dir) : 0;
}

/* ---- loading ---- */

/* The directory to look in: a model.safetensors file's folder, else path itself, which
 * must exist. */
static int model_dir(const char *path, char *dir, dt_error_t *err) {
  struct stat st;
  if (stat(path, &st) != 0)
    return dt_error_set(err, errno == ENOENT ? DT_ERR_NOT_FOUND : DT_ERR_IO, "%s: %s", path,
                        strerror(errno));
  if (snprintf(dir, DT_CKPT_PATH_MAX, "%s", path) >= DT_CKPT_PATH_MAX)
    return dt_error_set(err, DT_ERR_ARG, "path too long: %s", path);
  if (S_ISDIR(st.st_mode)) return 0;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (strcmp(base, WEIGHTS_FILE) != 0)
    return dt_error_set(err, DT_ERR_NOT_FOUND, "%s is not a dtrain model: give a saved model's "
                        "or a checkpoint's directory (one with manifest.json and %s)", path,
                        WEIGHTS_FILE);
  if (!slash) snprintf(dir, DT_CKPT_PATH_MAX, ".");
  else if (slash == path) snprintf(dir, DT_CKPT_PATH_MAX, "/");
  else dir[slash - path] = '\0';
  return 0;
}

/* A __metadata__ string of the parsed header, or NULL. */
static const char *meta_string(const dt_json_t *hdr, const char *key) {
  const dt_json_t *meta = dt_json_get_typed(hdr, "__metadata__", DT_JSON_OBJECT);
  const dt_json_t *v = meta ? dt_json_get_typed(meta, key, DT_JSON_STRING) : NULL;
  return v ? v->string : NULL;
}

static long meta_long(const dt_json_t *hdr, const char *key) {
  const char *v = meta_string(hdr, key);
  char *end;
  long x = v ? strtol(v, &end, 10) : -1;
  return v && end != v && !*end ? x : -1;
}

/* The input shape: [model] input, else preprocess.json's input_shape. */
static int input_shape(saved_model_t *sm, const char *what, dt_shape_t *in, dt_error_t *err) {
  int shape[DT_MAX_DIMS] = {1, 1, 1, 1}, ndim = 0, rc;
  if (dt_config_has_key(sm->cfg, "model", "input")) {
    if ((rc = dt_config_get_int_list(sm->cfg, "model", "input", shape, 3, &ndim, err))) return rc;
  } else {
    const dt_json_t *a = dt_json_get_typed(sm->preprocess, "input_shape", DT_JSON_ARRAY);
    if (!a || a->count < 1 || a->count > 3)
      return dt_error_set(err, DT_ERR_FORMAT, "%s/%s: no \"input_shape\" (1 to 3 numbers) and "
                          "the config has no [model] input: the model's input shape is unknown",
                          what, PREPROCESS_FILE);
    for (const dt_json_t *d = a->child; d; d = d->next) {
      if (d->type != DT_JSON_NUMBER || !(d->number >= 1 && d->number <= (1 << 24)))
        return dt_error_set(err, DT_ERR_FORMAT, "%s/%s: \"input_shape\" holds a bad size", what,
                            PREPROCESS_FILE);
      shape[ndim++] = (int)d->number;
    }
  }
  in->ndim = ndim;
  for (int i = 0; i < DT_MAX_DIMS; i++) in->dims[i] = shape[i];
  return 0;
}

/* The target when the file does not record it (a checkpoint): as the trainer chooses it
 * by default ([model] target, else from the loss, the format and the targets). */
static int derive_target(saved_model_t *sm, dt_error_t *err) {
  const dt_model_t *m = &sm->model;
  const dt_json_t *fmt = dt_json_get_typed(sm->preprocess, "format", DT_JSON_STRING);
  const dt_json_t *nt = dt_json_get_typed(sm->preprocess, "num_targets", DT_JSON_NUMBER);
  bool classes = dt_json_get(sm->preprocess, "num_classes") != NULL;
  const char *def = "one_hot";
  if (dt_loss_uses_labels(m->loss)) def = "labels";
  else if (fmt && strcmp(fmt->string, "binary_addition") == 0) def = "bits";
  else if (!classes && !nt) def = "input";
  else if (nt && nt->number == (double)dt_model_output_size(m)) def = "values";
  int target;
  int rc = dt_config_get_choice(sm->cfg, "model", "target", def, saved_model_target_names,
                                &target, err);
  sm->target = (target_kind)target;
  return rc;
}

/* Everything after the head of model.safetensors was read: config, preprocessing,
 * model, then the weights straight into the model's buffers. */
static int load_from(saved_model_t *sm, dt_device_t *dev, dt_ckpt_in_t *in, const void *head,
                     size_t head_len, const char *what, dt_error_t *err) {
  dt_json_t *hdr = NULL;
  uint64_t hl;
  memcpy(&hl, head, 8);
  int rc = dt_json_parse((const char *)head + 8, (size_t)hl, what, &hdr, err);
  if (rc) return rc;
  const char *cfg_text = meta_string(hdr, "config");
  const char *fmt = meta_string(hdr, "format");
  if (!cfg_text || !fmt || strcmp(fmt, "dtrain") != 0) {
    dt_json_free(hdr);
    return dt_error_set(err, DT_ERR_FORMAT, "%s: not a dtrain model file (no __metadata__ "
                        "\"format\": \"dtrain\" with the run's \"config\")", what);
  }
  sm->step = meta_long(hdr, "step");
  sm->epoch = meta_long(hdr, "epoch");
  const char *weights = meta_string(hdr, "weights");
  snprintf(sm->weights, sizeof sm->weights, "%s", weights ? weights : "checkpoint");
  const char *target = meta_string(hdr, "target");
  int tk = -1;
  for (int i = 0; target && saved_model_target_names[i]; i++)
    if (strcmp(target, saved_model_target_names[i]) == 0) tk = i;
  char origin[DT_CKPT_PATH_MAX + 64];
  snprintf(origin, sizeof origin, "%s (its config)", what);
  if (!(sm->cfg = dt_config_new())) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
  if (!rc) rc = dt_config_load_string(sm->cfg, cfg_text, origin, err);
  dt_json_free(hdr);
  if (rc) return rc;

  void *pre;
  size_t pre_len;
  char pwhat[DT_CKPT_PATH_MAX + 32];
  snprintf(pwhat, sizeof pwhat, "%s/%s", sm->dir, PREPROCESS_FILE);
  if ((rc = dt_ckpt_read_file(sm->dir, PREPROCESS_FILE, &pre, &pre_len, err))) return rc;
  sm->preprocess_json = pre;
  if ((rc = dt_json_parse(pre, pre_len, pwhat, &sm->preprocess, err))) return rc;
  if (sm->preprocess->type != DT_JSON_OBJECT)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: not a JSON object", pwhat);

  /* Prediction, evaluation and export know one input and one output. */
  static const char *const io_keys[] = {"inputs", "outputs"};
  for (int k = 0; k < 2; k++) {
    const char *names;
    if (dt_config_has_key(sm->cfg, "model", io_keys[k]) &&
        !(rc = dt_config_get_string(sm->cfg, "model", io_keys[k], "", &names, err)) &&
        strchr(names, ','))
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: the model has several %s ([model] %s = %s): predict, evaluate and "
                          "export take models with one input and one output",
                          what, io_keys[k], io_keys[k], names);
    if (rc) return rc;
  }
  dt_shape_t in_shape;
  if ((rc = input_shape(sm, sm->dir, &in_shape, err))) return rc;
  if ((rc = dt_model_build(&sm->model, dev, sm->cfg, in_shape, err)))
    return dt_error_prefix(err, "%s: building the model of its config: ", what);
  if (tk >= 0) sm->target = (target_kind)tk;
  else if ((rc = derive_target(sm, err))) return rc;

  float *params, *states;
  if ((rc = dt_model_to_host(&sm->model, DT_MODEL_PARAMS, &params, err)) ||
      (rc = dt_model_to_host(&sm->model, DT_MODEL_STATES, &states, err)))
    return rc;
  dt_param_info_t *tensors;
  float **bases;
  int n;
  if ((rc = ckpt_weight_tensors(&sm->model, params, states, &tensors, &bases, &n, err))) return rc;
  rc = dt_safetensors_read_data(in, head, head_len, tensors, n, bases, what, err);
  free(tensors);
  free(bases);
  return rc;
}

int saved_model_load(const char *path, dt_device_t *dev, saved_model_t *out, dt_error_t *err) {
  memset(out, 0, sizeof *out);
  out->step = out->epoch = -1;
  char start[DT_CKPT_PATH_MAX];
  int rc = model_dir(path, start, err);
  if (rc) return rc;
  /* Files read here are checked as they are read; the optimizer's and the best weights
   * are not read at all, so only their sizes are checked. */
  static const char *const deferred[] = {"model.safetensors", "optimizer.safetensors",
                                         "best_weights.safetensors", NULL};
  const dt_ckpt_find_opts_t fo = {deferred, NULL, NULL};
  dt_log_t log = dt_log_make(0, 1);
  if ((rc = dt_ckpt_find(start, &fo, &log, out->dir, err))) {
    if (rc == DT_ERR_NOT_FOUND)
      return dt_error_set(err, DT_ERR_NOT_FOUND, "%s is not a dtrain model: it has no "
                          "manifest.json (a saved model or a checkpoint) and no checkpoints",
                          start);
    return rc;
  }
  char what[DT_CKPT_PATH_MAX + 32];
  snprintf(what, sizeof what, "%s/%s", out->dir, WEIGHTS_FILE);
  dt_ckpt_in_t *in = NULL;
  bool corrupt = false;
  void *head = NULL;
  size_t head_len = 0;
  if ((rc = dt_ckpt_in_open(out->dir, WEIGHTS_FILE, &in, &corrupt, err))) {
    if (rc == DT_ERR_NOT_FOUND || strstr(err->msg, "does not list"))
      dt_error_prefix(err, "%s is not a dtrain model: ", out->dir);
    saved_model_free(out);
    return rc;
  }
  rc = dt_safetensors_read_head(in, what, &head, &head_len, err);
  if (!rc) rc = load_from(out, dev, in, head, head_len, what, err);
  rc = dt_ckpt_in_close(in, rc, &corrupt, err);
  free(head);
  if (!rc) rc = dt_model_from_host(&out->model, DT_MODEL_PARAMS, err);
  if (!rc) rc = dt_model_from_host(&out->model, DT_MODEL_STATES, err);
  if (rc) saved_model_free(out);
  return rc;
}

const char *saved_model_input_shape(const saved_model_t *sm, char *buf, size_t cap) {
  return dt_shape_str(&sm->model.in_shape, buf, cap);
}

const char **saved_model_class_names(const saved_model_t *sm, int *n) {
  *n = 0;
  const dt_json_t *a = dt_json_get_typed(sm->preprocess, "class_names", DT_JSON_ARRAY);
  if (!a || a->count == 0) return NULL;
  const char **names = calloc((size_t)a->count + 1, sizeof *names);
  if (!names) return NULL;
  for (const dt_json_t *e = a->child; e; e = e->next)
    names[(*n)++] = e->type == DT_JSON_STRING ? e->string : "";
  return names;
}

void saved_model_free(saved_model_t *sm) {
  dt_model_free(&sm->model);
  if (sm->cfg) dt_config_free(sm->cfg);
  dt_json_free(sm->preprocess);
  free(sm->preprocess_json);
  memset(sm, 0, sizeof *sm);
}
