/* Datasets loaded with a saved model's preprocessing (see model_data.h). */
#define _POSIX_C_SOURCE 200809L
#include "model_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dtrain/csv.h"
#include "dtrain/idx.h"
#include "dtrain/images.h"
#include "dtrain/numpy.h"
#include "dtrain/text.h"
#include "run_data.h"

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* The model's own data format (preprocess.json), or NULL. */
static const char *model_format(const saved_model_t *sm) {
  const dt_json_t *f = dt_json_get_typed(sm->preprocess, "format", DT_JSON_STRING);
  return f ? f->string : NULL;
}

static const char *infer_format(const saved_model_t *sm, const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return "images";
  if (ends_with(path, ".npy") || strstr(path, ".npz")) return "numpy";
  if (ends_with(path, ".csv")) return "csv";
  if (ends_with(path, ".tsv") || ends_with(path, ".txt")) return "text";
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strstr(base, "idx") || strstr(base, "ubyte")) return "idx";
  return model_format(sm);
}

/* A JSON array of strings joined with commas into a malloc'd string ("" when absent). */
static char *joined(const dt_json_t *obj, const char *key) {
  const dt_json_t *a = dt_json_get_typed(obj, key, DT_JSON_ARRAY);
  size_t len = 1;
  for (const dt_json_t *e = a ? a->child : NULL; e; e = e->next)
    if (e->type == DT_JSON_STRING) len += strlen(e->string) + 1;
  char *s = malloc(len);
  if (!s) return NULL;
  s[0] = '\0';
  for (const dt_json_t *e = a ? a->child : NULL; e; e = e->next)
    if (e->type == DT_JSON_STRING) {
      if (s[0]) strcat(s, ",");
      strcat(s, e->string);
    }
  return s;
}

/* A stand-in training set that carries the model's class names and, for text, its
 * vocabulary (the members of preprocess.json, which dt_text_load reads). */
typedef struct {
  dt_dataset_t ds;
  const char **names;
  char *meta;
} reference_t;

static int make_reference(const saved_model_t *sm, reference_t *r, dt_error_t *err) {
  memset(r, 0, sizeof *r);
  int n = 0;
  r->names = saved_model_class_names(sm, &n);
  r->ds.class_names = (char **)r->names;
  r->ds.num_classes = n;
  r->ds.what = sm->dir;
  /* preprocess.json without its outer braces. */
  const char *open = strchr(sm->preprocess_json, '{'), *close = strrchr(sm->preprocess_json, '}');
  if (open && close && close > open) {
    if (!(r->meta = strndup(open + 1, (size_t)(close - open - 1))))
      return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    r->ds.meta_json = r->meta;
  }
  return 0;
}

static void free_reference(reference_t *r) {
  free(r->names);
  free(r->meta);
}

static int json_int(const dt_json_t *obj, const char *key, int idx, int def) {
  const dt_json_t *v = dt_json_get(obj, key);
  if (v && v->type == DT_JSON_ARRAY) {
    const dt_json_t *e = v->child;
    for (int i = 0; e && i < idx; i++) e = e->next;
    v = e;
  }
  return v && v->type == DT_JSON_NUMBER ? (int)v->number : def;
}

/* Loads the file(s) in the model's way. */
static int load_format(const saved_model_t *sm, const char *format, const model_input_t *in,
                       dt_dataset_t *ds, dt_error_t *err) {
  int rc;
  const dt_json_t *pre = sm->preprocess;
  if (strcmp(format, "idx") == 0) {
    if (in->y) {
      rc = dt_idx_load_pair(ds, in->x, in->y, true, err);
      if (rc != DT_ERR_FORMAT) return rc;
    }
    if ((rc = dt_idx_load(in->x, ds, err)) || !in->y) return rc;
    dt_dataset_t y;
    if ((rc = dt_idx_load(in->y, &y, err))) {
      dt_dataset_free(ds);
      return rc;
    }
    if ((rc = dt_dataset_join_targets(ds, &y, err))) dt_dataset_free(ds);
    return rc;
  }
  if (strcmp(format, "numpy") == 0) {
    if ((rc = dt_numpy_load(in->x, ds, err)) || !in->y) return rc;
    dt_dataset_t y;
    if ((rc = dt_numpy_load(in->y, &y, err))) {
      dt_dataset_free(ds);
      return rc;
    }
    if ((rc = dt_dataset_join_targets(ds, &y, err))) dt_dataset_free(ds);
    return rc;
  }
  if (strcmp(format, "csv") == 0) {
    char *features = joined(pre, "features"), *targets = joined(pre, "targets");
    if (!features || !targets) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    else rc = dt_csv_load(in->x, &(dt_csv_opts_t){in->targets ? targets : "", features}, ds, err);
    free(features);
    free(targets);
    return rc;
  }
  reference_t ref;
  if ((rc = make_reference(sm, &ref, err))) return rc;
  if (strcmp(format, "images") == 0) {
    dt_images_opts_t io = {json_int(pre, "image_size", 0, 0), json_int(pre, "image_size", 1, 0),
                           json_int(pre, "channels", 0, 0), ref.names ? &ref.ds : NULL,
                           false, 0, NULL};
    rc = dt_images_load(in->x, &io, ds, err);
  } else if (strcmp(format, "text") == 0) {
    dt_text_opts_t to = {DT_TOKENS_WORDS, 3, 1, &ref.ds, 0.0};
    rc = dt_text_load(in->x, &to, ds, err);
  } else {
    rc = dt_error_set(err, DT_ERR_ARG, "'%s': cannot read format '%s' for a model (idx, csv, "
                      "numpy, images or text)", in->x, format);
  }
  free_reference(&ref);
  return rc;
}

/* The model's scaling, as recorded. */
static int read_scaling(const saved_model_t *sm, size_t dim, dt_scaling_t *s, dt_error_t *err) {
  memset(s, 0, sizeof *s);
  const dt_json_t *kind = dt_json_get_typed(sm->preprocess, "scale", DT_JSON_STRING);
  int k = -1;
  for (int i = 0; kind && dt_scale_names[i]; i++)
    if (strcmp(kind->string, dt_scale_names[i]) == 0) k = i;
  if (k < 0)
    return dt_error_set(err, DT_ERR_FORMAT, "%s/preprocess.json: no known \"scale\" (none, 1/255 "
                        "or standardize)", sm->dir);
  s->kind = (dt_scale_kind)k;
  if (s->kind != DT_SCALE_STANDARDIZE) return 0;
  const dt_json_t *mean = dt_json_get_typed(sm->preprocess, "mean", DT_JSON_ARRAY);
  const dt_json_t *inv = dt_json_get_typed(sm->preprocess, "inv_std", DT_JSON_ARRAY);
  const dt_json_t *sd = dt_json_get_typed(sm->preprocess, "std", DT_JSON_ARRAY);
  const dt_json_t *f = inv ? inv : sd;
  if (!mean || !f || (size_t)mean->count != dim || (size_t)f->count != dim)
    return dt_error_set(err, DT_ERR_FORMAT, "%s/preprocess.json: scale = standardize needs "
                        "\"mean\" and \"std\" of %zu values each", sm->dir, dim);
  s->dim = dim;
  s->mean = malloc(sizeof(float) * dim);
  s->inv_std = malloc(sizeof(float) * dim);
  if (!s->mean || !s->inv_std) return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
  const dt_json_t *a = mean->child, *b = f->child;
  for (size_t j = 0; j < dim; j++, a = a->next, b = b->next) {
    if (a->type != DT_JSON_NUMBER || b->type != DT_JSON_NUMBER || !(b->number != 0))
      return dt_error_set(err, DT_ERR_FORMAT, "%s/preprocess.json: bad standardization value "
                          "at feature %zu", sm->dir, j);
    s->mean[j] = (float)a->number;
    /* Old files have only std (1/inv_std as a float). */
    s->inv_std[j] = inv ? (float)b->number : 1.0f / (float)b->number;
  }
  return 0;
}

/* The dataset must fit the model: its input size, and targets its outputs. */
static int check_fit(const saved_model_t *sm, dt_dataset_t *ds, bool targets, dt_error_t *err) {
  const dt_model_t *m = &sm->model;
  char a[64], b[64];
  if (ds->dim != dt_model_input_size(m))
    return dt_error_set(err, DT_ERR_SHAPE, "'%s': samples of shape %s (%zu values), but the "
                        "model in %s takes %s (%zu values)", ds->what,
                        dt_shape_str(&(dt_shape_t){ds->ndim, {ds->shape[0], ds->shape[1],
                                                               ds->shape[2], 1}}, a, sizeof a),
                        ds->dim, sm->dir, saved_model_input_shape(sm, b, sizeof b),
                        dt_model_input_size(m));
  if (!targets) return 0;
  const char *ywhat = ds->y_what ? ds->y_what : ds->what;
  size_t out = dt_model_output_size(m);
  int rc;
  switch (sm->target) {
    case TARGET_LABELS:
    case TARGET_ONE_HOT:
    case TARGET_BITS:
      if (ds->ykind == DT_Y_NONE)
        return dt_error_set(err, DT_ERR_FORMAT, "'%s': no targets (labels) to evaluate the "
                            "model against", ds->what);
      if ((rc = dt_dataset_targets_as_classes(ds, err))) return rc;
      for (size_t i = 0; sm->target != TARGET_BITS && i < ds->n; i++) {
        double v = dt_array_get(&ds->y, ds->first + i, 0);
        if (v >= (double)out) {
          char where[64];
          return dt_error_set(err, DT_ERR_FORMAT, "'%s': %s: label %g, but the model in %s has "
                              "%zu outputs (classes 0 to %zu)", ywhat,
                              dt_dataset_sample_where(ds, i, where, sizeof where), v, sm->dir,
                              out, out - 1);
        }
      }
      return 0;
    case TARGET_VALUES:
      if (ds->ykind != DT_Y_VALUES || ds->y.row != out)
        return dt_error_set(err, DT_ERR_FORMAT, "'%s': the model in %s needs %zu target "
                            "value(s) per sample, the data have %zu", ywhat, sm->dir, out,
                            ds->ykind == DT_Y_NONE ? (size_t)0 : ds->y.row);
      return 0;
    case TARGET_INPUT:
      return 0;
  }
  return 0;
}

int model_data_load(const saved_model_t *sm, const model_input_t *in, dt_dataset_t *ds,
                    dt_scaling_t *scaling, const char **format_out, dt_error_t *err) {
  memset(ds, 0, sizeof *ds);
  memset(scaling, 0, sizeof *scaling);
  const char *format = in->format ? in->format : infer_format(sm, in->x);
  if (!format)
    return dt_error_set(err, DT_ERR_ARG, "'%s': cannot tell its format: give --format", in->x);
  if (format_out) *format_out = format;
  int rc = load_format(sm, format, in, ds, err);
  if (rc) return rc;
  if (in->limit > 0) dt_dataset_truncate(ds, (size_t)in->limit);
  if (ds->n == 0) rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': no samples", in->x);
  if (!rc) rc = check_fit(sm, ds, in->targets, err);
  if (!rc) rc = read_scaling(sm, ds->dim, scaling, err);
  if (!rc && scaling->kind != DT_SCALE_NONE && ds->integer_ids)
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': token ids, but the model in %s scales its "
                      "inputs (%s)", in->x, sm->dir, dt_scale_names[scaling->kind]);
  if (rc) {
    dt_dataset_free(ds);
    dt_scaling_free(scaling);
  }
  return rc;
}

int model_data_load_test(saved_model_t *sm, dt_dataset_t *ds, dt_scaling_t *scaling,
                         dt_error_t *err) {
  run_data_t d;
  int rc = run_data_read(&d, sm->cfg, err);
  if (rc) return dt_error_prefix(err, "%s: the model's [data]: ", sm->dir);
  if (d.opt.format == FORMAT_BINARY_ADDITION) {
    /* The generated task: the same test set as the run's, from its seed. */
    run_options_t ro;
    if (!(rc = run_options_read(sm->cfg, &ro, err))) rc = run_data_load(&d, sm->cfg, ro.seed, err);
    if (!rc) rc = dt_dataset_targets_as_classes(&d.file[SPLIT_TEST], err);
    if (!rc) rc = read_scaling(sm, d.file[SPLIT_TEST].dim, scaling, err);
    if (!rc) {
      /* The dataset moves out of d, which owns nothing of it afterwards. */
      *ds = d.file[SPLIT_TEST];
      memset(&d.file[SPLIT_TEST], 0, sizeof d.file[SPLIT_TEST]);
    }
    run_data_free(&d);
    return rc;
  }
  if (!d.opt.x[SPLIT_TEST][0]) {
    run_data_free(&d);
    return dt_error_set(err, DT_ERR_CONFIG, "%s: the model's config names no test set: give "
                        "--input FILE", sm->dir);
  }
  /* The dataset may keep pointers to its paths (for messages): they go with it. */
  char *x = strdup(d.opt.x[SPLIT_TEST]);
  char *y = d.opt.y[SPLIT_TEST][0] ? strdup(d.opt.y[SPLIT_TEST]) : NULL;
  model_input_t in = {data_format_names[d.opt.format], x, y, true, d.opt.test_limit};
  if (!x || (d.opt.y[SPLIT_TEST][0] && !y)) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
  run_data_free(&d);
  if (!rc) rc = model_data_load(sm, &in, ds, scaling, NULL, err);
  if (rc) {
    free(x);
    free(y);
    return rc;
  }
  /* dt_data_own frees what it is given when it fails. */
  if ((rc = dt_data_own(ds, x, err))) free(y);
  else if (y) rc = dt_data_own(ds, y, err);
  if (rc) {
    dt_dataset_free(ds);
    dt_scaling_free(scaling);
  }
  return rc;
}
