/* The run's data (see run_data.h). */
#define _POSIX_C_SOURCE 200809L
#include "run_data.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/csv.h"
#include "dtrain/idx.h"
#include "dtrain/images.h"
#include "dtrain/numpy.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

const char *const data_format_names[] = {"idx",    "csv",  "numpy",
                                         "images", "text", "binary_addition", NULL};

static const char *const split_names[NSPLITS] = {"train", "validation", "test"};

static const char *const token_names[] = {"words", "chars", NULL};

/* Reads [data] KEY as a path relative to dir (unless absolute) into out; "" when the
 * key is absent and def is NULL. */
static int read_path(dt_config_t *cfg, const char *dir, const char *key, const char *def,
                     char *out, dt_error_t *err) {
  const char *name;
  int rc = dt_config_get_string(cfg, "data", key, def ? def : "", &name, err);
  if (rc) return rc;
  if (!name[0]) {
    out[0] = '\0';
    return 0;
  }
  int n = name[0] == '/' || !dir[0] ? snprintf(out, OPT_PATH_MAX, "%s", name)
                                    : snprintf(out, OPT_PATH_MAX, "%s/%s", dir, name);
  if (n < 0 || n >= OPT_PATH_MAX)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [data] %s: path too long",
                        dt_config_where(cfg, "data", key), key);
  return 0;
}

/* [data] KEY as a comma-separated list of paths, each relative to dir (NumPy lists). */
static int read_path_list(dt_config_t *cfg, const char *dir, const char *key, char *out,
                          dt_error_t *err) {
  const char *text;
  int rc = dt_config_get_string(cfg, "data", key, "", &text, err);
  if (rc || !strchr(text, ',')) return rc ? rc : read_path(cfg, dir, key, NULL, out, err);
  size_t used = 0;
  for (const char *p = text;;) {
    while (*p == ' ' || *p == '\t') p++;
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    if (!len)
      return dt_error_set(err, DT_ERR_CONFIG, "%s: [data] %s = '%s': an empty path in the list",
                          dt_config_where(cfg, "data", key), key, text);
    int n = snprintf(out + used, OPT_PATH_MAX - used, "%s%s%s%.*s", used ? "," : "",
                     p[0] == '/' || !dir[0] ? "" : dir, p[0] == '/' || !dir[0] ? "" : "/",
                     (int)len, p);
    if (n < 0 || used + (size_t)n >= OPT_PATH_MAX)
      return dt_error_set(err, DT_ERR_CONFIG, "%s: [data] %s: paths too long",
                          dt_config_where(cfg, "data", key), key);
    used += (size_t)n;
    if (!end) return 0;
    p = end + 1;
  }
}

/* Loads a NumPy spec, or a comma-separated list of them joined per sample (as float32,
 * in order): the samples of several inputs, or the targets of several outputs. shapes
 * gets each array's per-sample shape and *nparts their count. */
static int load_numpy_list(const char *list, dt_dataset_t *ds, dt_shape_t *shapes, int *nparts,
                           dt_error_t *err) {
  int rc;
  if (!strchr(list, ',')) {
    if ((rc = dt_numpy_load(list, ds, err))) return rc;
    *nparts = 1;
    shapes[0] = (dt_shape_t){ds->ndim, {ds->shape[0], ds->shape[1], ds->shape[2], 1}};
    return 0;
  }
  dt_dataset_t part[DT_MAX_IO_PARTS];
  int n = 0;
  size_t dim = 0;
  char spec[OPT_PATH_MAX];
  rc = 0;
  for (const char *p = list; !rc;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (n == DT_MAX_IO_PARTS) {
      rc = dt_error_set(err, DT_ERR_CONFIG, "'%s': more than %d arrays", list, DT_MAX_IO_PARTS);
      break;
    }
    snprintf(spec, sizeof spec, "%.*s", (int)len, p);
    if ((rc = dt_numpy_load(spec, &part[n], err))) break;
    if (n && part[n].n != part[0].n)
      rc = dt_error_set(err, DT_ERR_FORMAT, "sample count mismatch: '%s' has %zu samples, '%s' "
                        "has %zu", part[0].what, part[0].n, part[n].what, part[n].n);
    shapes[n] = (dt_shape_t){part[n].ndim,
                             {part[n].shape[0], part[n].shape[1], part[n].shape[2], 1}};
    dim += part[n].dim;
    n++;
    if (!end) break;
    p = end + 1;
  }
  float *joined = NULL;
  char *what = NULL;
  if (!rc) {
    memset(ds, 0, sizeof *ds);
    joined = malloc(sizeof *joined * (part[0].n * dim + 1));
    what = strdup(list);
    if (!joined || !what) {
      free(joined);
      free(what);
      rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory joining '%s'", list);
    }
  }
  if (!rc) {
    size_t off = 0;
    for (int k = 0; k < n; k++) {
      for (size_t i = 0; i < part[k].n; i++)
        for (size_t j = 0; j < part[k].dim; j++)
          joined[i * dim + off + j] = (float)dt_array_get(&part[k].x, part[k].first + i, j);
      off += part[k].dim;
    }
    ds->n = part[0].n;
    ds->dim = dim;
    ds->ndim = 1;
    ds->shape[0] = (int)dim;
    ds->shape[1] = ds->shape[2] = 1;
    ds->x = (dt_array_t){DT_F32, joined, dim};
    ds->what = what;
    if (!(rc = dt_data_own(ds, joined, err))) rc = dt_data_own(ds, what, err);
    else free(what);
    *nparts = n;
  }
  for (int k = 0; k < n; k++) dt_dataset_free(&part[k]);
  if (rc) dt_dataset_free(ds);
  return rc;
}

/* The keys that name each split's files, per format. */
static int read_paths(data_options_t *o, dt_config_t *cfg, const char *dir, dt_error_t *err) {
  int rc = 0;
  if (o->format == FORMAT_IDX) {
    static const char *const xk[NSPLITS] = {"train_images", "validation_images", "test_images"};
    static const char *const yk[NSPLITS] = {"train_labels", "validation_labels", "test_labels"};
    static const char *const xd[NSPLITS] = {"train-images-idx3-ubyte.gz", NULL,
                                            "t10k-images-idx3-ubyte.gz"};
    static const char *const yd[NSPLITS] = {"train-labels-idx1-ubyte.gz", NULL,
                                            "t10k-labels-idx1-ubyte.gz"};
    for (int s = 0; s < NSPLITS && !rc; s++)
      if (!(rc = read_path(cfg, dir, xk[s], xd[s], o->x[s], err)))
        rc = read_path(cfg, dir, yk[s], yd[s], o->y[s], err);
  } else if (o->format == FORMAT_NUMPY) {
    static const char *const xk[NSPLITS] = {"train_x", "validation_x", "test_x"};
    static const char *const yk[NSPLITS] = {"train_y", "validation_y", "test_y"};
    for (int s = 0; s < NSPLITS && !rc; s++)
      if (!(rc = read_path_list(cfg, dir, xk[s], o->x[s], err)))
        rc = read_path_list(cfg, dir, yk[s], o->y[s], err);
  } else {
    for (int s = 0; s < NSPLITS && !rc; s++)
      rc = read_path(cfg, dir, split_names[s], NULL, o->x[s], err);
  }
  if (rc) return rc;
  if (!o->x[SPLIT_TRAIN][0])
    return dt_error_set(err, DT_ERR_CONFIG, "%s: data.format = %s needs the training data: "
                        "set data.%s", dt_config_where(cfg, "data", "format"),
                        data_format_names[o->format],
                        o->format == FORMAT_NUMPY ? "train_x" : "train");
  /* A targets file without inputs (or the other way round) is a typo waiting to bite. */
  for (int s = 0; s < NSPLITS; s++)
    if ((o->format == FORMAT_IDX || o->format == FORMAT_NUMPY) && !o->x[s][0] && o->y[s][0])
      return dt_error_set(err, DT_ERR_CONFIG, "[data]: targets for the %s split are given "
                          "but not its inputs", split_names[s]);
  if (o->format == FORMAT_IDX)
    for (int s = 0; s < NSPLITS; s++)
      if (o->x[s][0] && !o->y[s][0])
        return dt_error_set(err, DT_ERR_CONFIG, "[data]: the %s images '%s' have no labels "
                            "file", split_names[s], o->x[s]);
  return 0;
}

static int read_format_keys(data_options_t *o, dt_config_t *cfg, dt_error_t *err) {
  const char *s;
  int rc, n = 0, tokens = 0;
  switch (o->format) {
    case FORMAT_CSV:
      if ((rc = dt_config_get_string(cfg, "data", "targets", "", &s, err))) return rc;
      snprintf(o->targets, sizeof o->targets, "%s", s);
      if ((rc = dt_config_get_string(cfg, "data", "features", "", &s, err))) return rc;
      snprintf(o->features, sizeof o->features, "%s", s);
      return 0;
    case FORMAT_IMAGES: {
      static const char *const modes[] = {"auto", "grayscale", "rgb", NULL};
      int mode;
      if (dt_config_has_key(cfg, "data", "image_size")) {
        if ((rc = dt_config_get_int_list(cfg, "data", "image_size", o->image_size, 2, &n, err)))
          return rc;
        if (n != 2)
          return dt_error_set(err, DT_ERR_CONFIG, "%s: data.image_size is height,width (two "
                              "numbers), not %d", dt_config_where(cfg, "data", "image_size"), n);
      }
      if ((rc = dt_config_get_choice(cfg, "data", "color_mode", "auto", modes, &mode, err)))
        return rc;
      o->channels = mode == 0 ? 0 : mode == 1 ? 1 : 3;
      return 0;
    }
    case FORMAT_TEXT:
      if ((rc = dt_config_get_choice(cfg, "data", "tokens", "words", token_names, &tokens,
                                     err)) ||
          (rc = dt_config_get_int(cfg, "data", "max_tokens", 20000, 3, 1L << 24, &o->max_tokens,
                                  err)) ||
          (rc = dt_config_get_int(cfg, "data", "sequence_length", 100, 1, 1L << 20,
                                  &o->sequence_length, err)))
        return rc;
      o->tokens = (dt_token_kind)tokens;
      return 0;
    case FORMAT_BINARY_ADDITION:
      if ((rc = dt_config_get_int(cfg, "data", "bits", 8, 2, 16, &o->bits, err)) ||
          (rc = dt_config_get_int(cfg, "data", "train_samples", 2000, 1, 1L << 30,
                                  &o->train_samples, err)) ||
          (rc = dt_config_get_int(cfg, "data", "test_samples", 1000, 1, 1L << 30,
                                  &o->test_samples, err)))
        return rc;
      return 0;
    default:
      return 0;
  }
}

int run_data_read(run_data_t *d, dt_config_t *cfg, dt_error_t *err) {
  memset(d, 0, sizeof *d);
  data_options_t *o = &d->opt;
  int rc, format = 0, source = 0, scale;
  /* `source` is the older name of the choice between the IDX files and the generated
   * task; `format` names every format. */
  static const char *const sources[] = {"idx", "binary_addition", NULL};
  bool has_source = dt_config_has_key(cfg, "data", "source");
  if (has_source && dt_config_has_key(cfg, "data", "format"))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: set data.format only (data.source is its "
                        "older name)", dt_config_where(cfg, "data", "source"));
  if (has_source) {
    if ((rc = dt_config_get_choice(cfg, "data", "source", "idx", sources, &source, err)))
      return rc;
    format = source == 1 ? FORMAT_BINARY_ADDITION : FORMAT_IDX;
  } else if ((rc = dt_config_get_choice(cfg, "data", "format", "idx", data_format_names,
                                        &format, err)))
    return rc;
  o->format = (data_format)format;
  const char *dir;
  if ((rc = dt_config_get_string(cfg, "data", "dir", o->format == FORMAT_IDX ? FMNIST_DIR : "",
                                 &dir, err)))
    return rc;
  if (o->format != FORMAT_BINARY_ADDITION && (rc = read_paths(o, cfg, dir, err))) return rc;
  if ((rc = read_format_keys(o, cfg, err))) return rc;
  /* With validation files, nothing is split off the training data unless asked. */
  double split_def = o->x[SPLIT_VAL][0] ? 0.0 : 0.1;
  if ((rc = dt_config_get_double(cfg, "data", "validation_split", split_def, 0.0, 0.9,
                                 &o->validation_split, err)) ||
      (rc = dt_config_get_int(cfg, "data", "train_limit", 0, 0, 1L << 40, &o->train_limit,
                              err)) ||
      (rc = dt_config_get_int(cfg, "data", "test_limit", 0, 0, 1L << 40, &o->test_limit, err)) ||
      (rc = dt_config_get_int(cfg, "data", "threads", 1, 0, 64, &o->threads, err)))
    return rc;
  if (o->x[SPLIT_VAL][0] && o->validation_split > 0)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: data.validation_split = %g and validation "
                        "files: choose one", dt_config_where(cfg, "data", "validation_split"),
                        o->validation_split);
  o->scale = -1;
  if (dt_config_has_key(cfg, "data", "scale")) {
    if ((rc = dt_config_get_choice(cfg, "data", "scale", "none", dt_scale_names, &scale, err)))
      return rc;
    o->scale = scale;
  }
  return dt_augment_read(cfg, &o->augment, err);
}

/* Loads split s of a format into ds. */
static int load_split(run_data_t *d, int s, uint64_t seed, bool keep_inputs, dt_dataset_t *ds,
                      dt_error_t *err) {
  const data_options_t *o = &d->opt;
  const dt_dataset_t *train = s == SPLIT_TRAIN ? NULL : &d->file[SPLIT_TRAIN];
  int rc;
  switch (o->format) {
    case FORMAT_IDX: {
      /* 8-bit images and labels (Fashion-MNIST) take the reader that can leave the
       * inputs for later; every other IDX type and rank, the general one. */
      rc = dt_idx_load_pair(ds, o->x[s], o->y[s], keep_inputs, err);
      if (rc != DT_ERR_FORMAT) return rc;
      /* Not 8-bit images with 8-bit labels (or broken): the general reader, as strict,
       * whose message then stands. */
      dt_dataset_t y;
      if ((rc = dt_idx_load(o->x[s], ds, err))) return rc;
      if ((rc = dt_idx_load(o->y[s], &y, err))) {
        dt_dataset_free(ds);
        return rc;
      }
      if ((rc = dt_dataset_join_targets(ds, &y, err))) dt_dataset_free(ds);
      return rc;
    }
    case FORMAT_NUMPY: {
      dt_shape_t xs[DT_MAX_IO_PARTS], ys[DT_MAX_IO_PARTS];
      int nx = 0, ny = 0;
      if ((rc = load_numpy_list(o->x[s], ds, xs, &nx, err))) return rc;
      if (s == SPLIT_TRAIN) {
        d->nx_parts = nx;
        memcpy(d->x_parts, xs, sizeof xs[0] * (size_t)nx);
      }
      if (!o->y[s][0]) return rc;
      dt_dataset_t y;
      if ((rc = load_numpy_list(o->y[s], &y, ys, &ny, err))) {
        dt_dataset_free(ds);
        return rc;
      }
      if (s == SPLIT_TRAIN) {
        d->ny_parts = ny;
        for (int k = 0; k < ny; k++) d->y_cols[k] = dt_shape_size(&ys[k]);
      }
      if ((rc = dt_dataset_join_targets(ds, &y, err))) dt_dataset_free(ds);
      return rc;
    }
    case FORMAT_CSV: {
      dt_csv_opts_t co = {o->targets, o->features};
      return dt_csv_load(o->x[s], &co, ds, err);
    }
    case FORMAT_IMAGES: {
      dt_images_opts_t io = {o->image_size[0], o->image_size[1], o->channels, train,
                             s == SPLIT_TRAIN, seed, NULL};
      /* Validation and test folders take the training folder's size and channels. */
      if (train) {
        io.height = train->shape[0];
        io.width = train->shape[1];
        io.channels = train->shape[2];
      }
      return dt_images_load(o->x[s], &io, ds, err);
    }
    case FORMAT_TEXT: {
      dt_text_opts_t to = {o->tokens, o->max_tokens, o->sequence_length, train,
                           s == SPLIT_TRAIN ? o->validation_split : 0.0};
      return dt_text_load(o->x[s], &to, ds, err);
    }
    case FORMAT_BINARY_ADDITION:
      break;
  }
  return dt_error_set(err, DT_ERR_ARG, "no loader for data.format %d", (int)o->format);
}

int run_data_load(run_data_t *d, dt_config_t *cfg, uint64_t seed, dt_error_t *err) {
  const data_options_t *o = &d->opt;
  int rc;
  if (o->format == FORMAT_BINARY_ADDITION) {
    if ((rc = dt_dataset_binary_addition(&d->file[SPLIT_TRAIN], &d->file[SPLIT_TEST],
                                         (int)o->bits, (size_t)o->train_samples,
                                         (size_t)o->test_samples, seed, err)))
      return rc;
  } else {
    for (int s = 0; s < NSPLITS; s++) {
      if (!o->x[s][0]) continue;
      /* The IDX test images are checked now and loaded once training is over. */
      bool keep = !(o->format == FORMAT_IDX && s == SPLIT_TEST);
      if ((rc = load_split(d, s, seed, keep, &d->file[s], err))) return rc;
      if (!keep && !d->file[s].x.base) d->test_inputs_deferred = true;
    }
  }
  dt_dataset_t *train_file = &d->file[SPLIT_TRAIN];
  if (o->train_limit > 0) dt_dataset_truncate(train_file, (size_t)o->train_limit);
  if (train_file->n == 0)
    return dt_error_set(err, DT_ERR_FORMAT, "no training samples: '%s' holds none",
                        train_file->what);
  if (d->file[SPLIT_VAL].what) {
    d->train = dt_dataset_view(train_file, 0, train_file->n);
    d->val = dt_dataset_view(&d->file[SPLIT_VAL], 0, d->file[SPLIT_VAL].n);
  } else {
    dt_dataset_split(train_file, o->validation_split, &d->train, &d->val);
  }
  if (d->train.n == 0)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: no training samples left: data.validation_split "
                        "= %g takes all %zu samples of '%s'",
                        dt_config_where(cfg, "data", "validation_split"), o->validation_split,
                        train_file->n, train_file->what);
  dt_dataset_t *test_file = &d->file[SPLIT_TEST];
  if (o->test_limit > 0) dt_dataset_truncate(test_file, (size_t)o->test_limit);
  if (test_file->what && test_file->n == 0)
    return dt_error_set(err, DT_ERR_FORMAT, "no test samples: '%s' holds none", test_file->what);
  d->test = dt_dataset_view(test_file, 0, test_file->n);
  /* Every split must have the training samples' shape and targets. */
  for (int s = SPLIT_VAL; s < NSPLITS; s++) {
    const dt_dataset_t *f = &d->file[s];
    if (!f->what || f == train_file) continue;
    if (f->dim != train_file->dim)
      return dt_error_set(err, DT_ERR_FORMAT, "the %s samples of '%s' have %zu values, the "
                          "training samples of '%s' %zu", split_names[s], f->what, f->dim,
                          train_file->what, train_file->dim);
    if ((f->ykind == DT_Y_NONE) != (train_file->ykind == DT_Y_NONE) ||
        (f->ykind != DT_Y_NONE && f->y.row != train_file->y.row))
      return dt_error_set(err, DT_ERR_FORMAT, "the %s targets of '%s' (%zu per sample) do not "
                          "match the training targets of '%s' (%zu per sample)", split_names[s],
                          f->what, f->ykind == DT_Y_NONE ? (size_t)0 : f->y.row,
                          train_file->what,
                          train_file->ykind == DT_Y_NONE ? (size_t)0 : train_file->y.row);
  }
  return 0;
}

/* Which scaling a format's inputs get when data.scale is not set. */
static dt_scale_kind default_scale(const run_data_t *d, bool embedding_input) {
  const dt_dataset_t *f = &d->file[SPLIT_TRAIN];
  if (embedding_input || f->integer_ids) return DT_SCALE_NONE;
  /* Images and 8-bit inputs of any format are pixels; everything else is taken as it is. */
  if (d->opt.format == FORMAT_IMAGES || (f->x.base && f->x.type == DT_U8)) return DT_SCALE_1_255;
  return DT_SCALE_NONE;
}

int run_data_prepare(run_data_t *d, dt_config_t *cfg, bool labels, bool embedding_input,
                     dt_error_t *err) {
  int rc;
  if (labels)
    for (int s = 0; s < NSPLITS; s++)
      if (d->file[s].what && (rc = dt_dataset_targets_as_classes(&d->file[s], err))) return rc;
  /* The views were taken before the targets became classes. */
  d->train.ykind = d->val.ykind = d->file[SPLIT_TRAIN].ykind;
  d->train.num_classes = d->val.num_classes = d->file[SPLIT_TRAIN].num_classes;
  if (d->file[SPLIT_VAL].what) {
    d->val.ykind = d->file[SPLIT_VAL].ykind;
    d->val.num_classes = d->file[SPLIT_VAL].num_classes;
  }
  d->test.ykind = d->file[SPLIT_TEST].ykind;
  d->test.num_classes = d->file[SPLIT_TEST].num_classes;

  dt_scale_kind kind = d->opt.scale >= 0 ? (dt_scale_kind)d->opt.scale
                                         : default_scale(d, embedding_input);
  if (kind != DT_SCALE_NONE && (embedding_input || d->file[SPLIT_TRAIN].integer_ids))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: data.scale = %s, but the inputs are token ids "
                        "for an embedding, which must stay integers: set data.scale = none",
                        dt_config_where(cfg, "data", "scale"), dt_scale_names[kind]);
  if (dt_augment_enabled(&d->opt.augment)) {
    if (d->file[SPLIT_TRAIN].ndim != 3)
      return dt_error_set(err, DT_ERR_CONFIG, "[augment] works on images (height, width, "
                          "channels), but the samples of '%s' have %d dimension(s)",
                          d->file[SPLIT_TRAIN].what, d->file[SPLIT_TRAIN].ndim);
    if (kind == DT_SCALE_STANDARDIZE)
      return dt_error_set(err, DT_ERR_CONFIG, "%s: [augment] works on images scaled by 1/255 "
                          "or not at all, not standardized",
                          dt_config_where(cfg, "data", "scale"));
  }
  if (kind == DT_SCALE_STANDARDIZE) return dt_scaling_standardize(&d->scaling, &d->train, err);
  d->scaling.kind = kind;
  return 0;
}

int run_data_load_deferred_test(run_data_t *d, dt_error_t *err) {
  if (!d->test_inputs_deferred) return 0;
  for (int s = 0; s < SPLIT_TEST; s++) dt_dataset_free(&d->file[s]);
  memset(&d->train, 0, sizeof d->train);
  memset(&d->val, 0, sizeof d->val);
  dt_dataset_t *t = &d->file[SPLIT_TEST];
  dt_dataset_free(t);
  int rc = dt_idx_load_pair(t, d->opt.x[SPLIT_TEST], d->opt.y[SPLIT_TEST], true, err);
  if (rc) return dt_error_prefix(err, "loading the test set after training: ");
  if (d->opt.test_limit > 0) dt_dataset_truncate(t, (size_t)d->opt.test_limit);
  d->test = dt_dataset_view(t, 0, t->n);
  d->test_inputs_deferred = false;
  return 0;
}

/* "(28, 28, 1)" */
static void shape_text(const dt_dataset_t *ds, char *out, size_t len) {
  size_t used = (size_t)snprintf(out, len, "(");
  for (int i = 0; i < ds->ndim && used < len; i++)
    used += (size_t)snprintf(out + used, len - used, "%s%d", i ? ", " : "", ds->shape[i]);
  if (used < len) snprintf(out + used, len - used, ")");
}

void run_data_describe(const run_data_t *d, const dt_log_t *log) {
  const dt_dataset_t *f = &d->file[SPLIT_TRAIN];
  char shape[64], targets[128] = "no targets", val[160] = "no validation", test[64] = "no test set";
  shape_text(f, shape, sizeof shape);
  if (f->ykind == DT_Y_CLASSES) snprintf(targets, sizeof targets, "%d classes", f->num_classes);
  else if (f->ykind == DT_Y_VALUES)
    snprintf(targets, sizeof targets, "%zu target value%s", f->y.row, f->y.row == 1 ? "" : "s");
  if (d->val.n)
    snprintf(val, sizeof val, "%zu validation (%s)", d->val.n,
             d->file[SPLIT_VAL].what ? "own file" : "validation_split tail");
  if (d->test.n) snprintf(test, sizeof test, "%zu test", d->test.n);
  dt_log_info(log, "Data: %s, %zu training, %s, %s samples of shape %s; %s; scale %s; %ld "
              "loader thread%s", data_format_names[d->opt.format], d->train.n, val, test, shape,
              targets, dt_scale_names[d->scaling.kind], d->opt.threads,
              d->opt.threads == 1 ? "" : "s");
  if (f->class_names) {
    char names[512];
    size_t used = 0;
    names[0] = '\0';
    for (int c = 0; c < f->num_classes && used < sizeof names - 8; c++)
      used += (size_t)snprintf(names + used, sizeof names - used, "%s%d=%s", c ? ", " : "", c,
                               f->class_names[c]);
    dt_log_info(log, "Classes: %s", names);
  }
}

/* A growing string for the JSON text. */
typedef struct {
  char *s;
  size_t len, cap;
  bool failed;
} text_t;

static void put(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_t *t, const char *fmt, ...) {
  if (t->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = true;
      return;
    }
    if (t->s && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? 2 * t->cap : 1024;
    while (cap <= t->len + (size_t)n) cap *= 2;
    char *bigger = realloc(t->s, cap);
    if (!bigger) {
      t->failed = true;
      return;
    }
    t->s = bigger;
    t->cap = cap;
  }
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_string(text_t *t, const char *s) {
  put(t, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') put(t, "\\%c", c);
    else if (c < 0x20) put(t, "\\u%04x", c);
    else put(t, "%c", c);
  }
  put(t, "\"");
}

static void put_floats(text_t *t, const float *v, size_t n) {
  put(t, "[");
  for (size_t i = 0; i < n; i++) put(t, "%s%.9g", i ? ", " : "", (double)v[i]);
  put(t, "]");
}

char *run_data_preprocess_json(const run_data_t *d) {
  const dt_dataset_t *f = &d->file[SPLIT_TRAIN];
  text_t t = {0};
  put(&t, "{\"format\": \"%s\", \"input_shape\": [", data_format_names[d->opt.format]);
  for (int i = 0; i < f->ndim; i++) put(&t, "%s%d", i ? ", " : "", f->shape[i]);
  put(&t, "], \"scale\": \"%s\"", dt_scale_names[d->scaling.kind]);
  if (d->scaling.kind == DT_SCALE_STANDARDIZE) {
    float *sd = malloc(sizeof *sd * (d->scaling.dim ? d->scaling.dim : 1));
    if (!sd) t.failed = true;
    for (size_t j = 0; sd && j < d->scaling.dim; j++) sd[j] = 1.0f / d->scaling.inv_std[j];
    put(&t, ", \"mean\": ");
    put_floats(&t, d->scaling.mean, d->scaling.dim);
    put(&t, ", \"std\": ");
    if (sd) put_floats(&t, sd, d->scaling.dim);
    free(sd);
    /* The factors themselves too: 1/(1/x) is not always x in float, and prediction must
     * scale exactly as training did. */
    put(&t, ", \"inv_std\": ");
    put_floats(&t, d->scaling.inv_std, d->scaling.dim);
  }
  if (f->ykind == DT_Y_CLASSES) put(&t, ", \"num_classes\": %d", f->num_classes);
  if (f->ykind == DT_Y_VALUES) put(&t, ", \"num_targets\": %zu", f->y.row);
  /* Image folders list their class names in their meta_json already; a JSON object
   * must not name a key twice. (A string inside meta_json cannot match: its quotes are
   * escaped.) */
  if (f->class_names && !(f->meta_json && strstr(f->meta_json, "\"class_names\":"))) {
    put(&t, ", \"class_names\": [");
    for (int c = 0; c < f->num_classes; c++) {
      if (c) put(&t, ", ");
      put_string(&t, f->class_names[c]);
    }
    put(&t, "]");
  }
  if (f->meta_json && f->meta_json[0]) put(&t, ", %s", f->meta_json);
  put(&t, "}");
  if (t.failed) {
    free(t.s);
    return NULL;
  }
  return t.s;
}

void run_data_free(run_data_t *d) {
  for (int s = 0; s < NSPLITS; s++) dt_dataset_free(&d->file[s]);
  dt_scaling_free(&d->scaling);
  memset(d, 0, sizeof *d);
}
