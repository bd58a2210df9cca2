/* Datasets in general (see data.h): element types, the owner of a dataset's storage,
 * views, splits, gathering batches as scaled floats, standardization statistics, and
 * the per-epoch permutation and per-rank sharding. The file formats live in their own
 * files (idx.c, csv.c, numpy.c, images.c, text.c). */
#define _POSIX_C_SOURCE 200809L

#include "dtrain/data.h"
#include "dtrain/hot.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dtrain/rng.h"

const char *dt_dtype_name(dt_dtype_t t) {
  static const char *const names[] = {"uint8", "int8", "int16", "int32", "int64", "float32",
                                      "float64"};
  return (unsigned)t < sizeof names / sizeof *names ? names[t] : "unknown";
}

size_t dt_dtype_size(dt_dtype_t t) {
  static const size_t sizes[] = {1, 1, 2, 4, 8, 4, 8};
  return (unsigned)t < sizeof sizes / sizeof *sizes ? sizes[t] : 0;
}

/* Value k of p as a double: memcpy because mapped files give no alignment promise. */
static inline double value_at(dt_dtype_t type, const unsigned char *p, size_t k) {
  switch (type) {
    case DT_U8: return p[k];
    case DT_I8: return (int8_t)p[k];
    case DT_I16: { int16_t v; memcpy(&v, p + 2 * k, 2); return v; }
    case DT_I32: { int32_t v; memcpy(&v, p + 4 * k, 4); return v; }
    case DT_I64: { int64_t v; memcpy(&v, p + 8 * k, 8); return (double)v; }
    case DT_F32: { float v; memcpy(&v, p + 4 * k, 4); return v; }
    case DT_F64: { double v; memcpy(&v, p + 8 * k, 8); return v; }
  }
  return NAN;
}

static const unsigned char *row_ptr(const dt_array_t *a, size_t i) {
  return (const unsigned char *)a->base + i * a->row * dt_dtype_size(a->type);
}

double dt_array_get(const dt_array_t *a, size_t i, size_t j) {
  return value_at(a->type, row_ptr(a, i), j);
}

/* The owner: a growing list of things to release, undone last-in first-out. */
typedef enum { OWN_FREE, OWN_UNMAP, OWN_FN } own_kind;
typedef struct {
  own_kind kind;
  void *ptr;
  size_t len;
  void (*fn)(void *);
} own_entry_t;

struct dt_data_owner {
  own_entry_t *entries;
  size_t n, cap;
};

static void release_entry(const own_entry_t *e) {
  if (e->kind == OWN_FREE) free(e->ptr);
  else if (e->kind == OWN_UNMAP) munmap(e->ptr, e->len);
  else e->fn(e->ptr);
}

static int own(dt_dataset_t *ds, own_entry_t e, dt_error_t *err) {
  dt_data_owner_t *o = ds->owner;
  if (!o && !(o = ds->owner = calloc(1, sizeof *o))) goto nomem;
  if (o->n == o->cap) {
    size_t cap = o->cap ? 2 * o->cap : 8;
    own_entry_t *bigger = realloc(o->entries, cap * sizeof *bigger);
    if (!bigger) goto nomem;
    o->entries = bigger;
    o->cap = cap;
  }
  o->entries[o->n++] = e;
  return DT_OK;
nomem:
  release_entry(&e);
  return dt_error_set(err, DT_ERR_NOMEM, "out of memory keeping track of a dataset's storage");
}

int dt_data_own(dt_dataset_t *ds, void *block, dt_error_t *err) {
  return own(ds, (own_entry_t){OWN_FREE, block, 0, NULL}, err);
}

int dt_data_own_map(dt_dataset_t *ds, void *addr, size_t len, dt_error_t *err) {
  return own(ds, (own_entry_t){OWN_UNMAP, addr, len, NULL}, err);
}

int dt_data_own_fn(dt_dataset_t *ds, void (*fn)(void *), void *arg, dt_error_t *err) {
  return own(ds, (own_entry_t){OWN_FN, arg, 0, fn}, err);
}

void dt_dataset_free(dt_dataset_t *ds) {
  if (!ds) return;
  dt_data_owner_t *o = ds->owner;
  if (o) {
    for (size_t i = o->n; i > 0; i--) release_entry(&o->entries[i - 1]);
    free(o->entries);
    free(o);
  }
  memset(ds, 0, sizeof *ds);
}

dt_dataset_t dt_dataset_view(const dt_dataset_t *ds, size_t begin, size_t n) {
  dt_dataset_t v = *ds;
  if (begin > ds->n) begin = ds->n;
  if (n > ds->n - begin) n = ds->n - begin;
  v.first = ds->first + begin;
  v.n = n;
  v.owner = NULL;
  return v;
}

void dt_dataset_truncate(dt_dataset_t *ds, size_t n) {
  /* Only the count shrinks; the storage (and its ownership) stays as it was, so
   * dt_dataset_free still releases all of it. */
  if (n < ds->n) ds->n = n;
}

void dt_dataset_split(const dt_dataset_t *all, double val_fraction, dt_dataset_t *train,
                      dt_dataset_t *val) {
  /* Copy first: the caller may pass all == train or all == val. */
  dt_dataset_t src = *all;
  if (!(val_fraction > 0.0)) val_fraction = 0.0; /* also catches NaN */
  if (val_fraction > 1.0) val_fraction = 1.0;
  size_t n_val = (size_t)llround((double)src.n * val_fraction);
  if (n_val > src.n) n_val = src.n;
  size_t n_train = src.n - n_val;
  *train = dt_dataset_view(&src, 0, n_train);
  *val = dt_dataset_view(&src, n_train, n_val);
}

int dt_dataset_join_targets(dt_dataset_t *x, dt_dataset_t *y, dt_error_t *err) {
  /* y is consumed on every path, so that callers need not free it. */
  int bad = DT_OK;
  if (x->n != y->n)
    bad = dt_error_set(err, DT_ERR_FORMAT, "sample count mismatch: '%s' has %zu samples, '%s' "
                       "has %zu targets",
                       x->what ? x->what : "inputs", x->n, y->what ? y->what : "targets", y->n);
  else if (!y->x.base)
    bad = dt_error_set(err, DT_ERR_ARG, "'%s': targets must be stored values",
                       y->what ? y->what : "targets");
  if (bad) {
    dt_dataset_free(y);
    return bad;
  }
  /* The targets file's values become x's targets: float values until the loss asks
   * for classes (dt_dataset_targets_as_classes). */
  x->ykind = DT_Y_VALUES;
  x->y = y->x;
  x->y_what = y->what;
  x->y.base = row_ptr(&y->x, y->first);
  /* The targets' storage joins the inputs' owner, entry by entry. */
  dt_data_owner_t *o = y->owner;
  y->owner = NULL;
  int rc = DT_OK;
  for (size_t i = 0; o && i < o->n; i++)
    if (!rc) rc = own(x, o->entries[i], err);
    else release_entry(&o->entries[i]);
  if (o) {
    free(o->entries);
    free(o);
  }
  dt_dataset_free(y);
  return rc;
}

const char *dt_dataset_sample_where(const dt_dataset_t *ds, size_t i, char *buf, size_t cap) {
  size_t row = ds->first + i;
  if (ds->first_line) snprintf(buf, cap, "sample %zu (line %zu)", row, ds->first_line + row);
  else snprintf(buf, cap, "sample %zu", row);
  return buf;
}

int dt_dataset_targets_as_classes(dt_dataset_t *ds, dt_error_t *err) {
  if (ds->ykind == DT_Y_CLASSES) return DT_OK;
  if (ds->ykind == DT_Y_NONE)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s' has no targets", ds->what);
  const char *what = ds->y_what ? ds->y_what : ds->what;
  if (ds->y.row != 1)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': class labels are one value per sample, not "
                        "%zu", what, ds->y.row);
  double max = -1;
  for (size_t i = 0; i < ds->n; i++) {
    double v = dt_array_get(&ds->y, ds->first + i, 0);
    if (!(v >= 0.0) || v != floor(v) || v > (double)INT32_MAX - 1) {
      char where[64];
      return dt_error_set(err, DT_ERR_FORMAT, "'%s': %s: class label %g is not a "
                          "non-negative integer", what,
                          dt_dataset_sample_where(ds, i, where, sizeof where), v);
    }
    if (v > max) max = v;
  }
  ds->ykind = DT_Y_CLASSES;
  ds->num_classes = (int)max + 1;
  return DT_OK;
}

const char *const dt_scale_names[] = {"none", "1/255", "standardize", NULL};

void dt_scaling_free(dt_scaling_t *s) {
  free(s->mean);
  free(s->inv_std);
  memset(s, 0, sizeof *s);
}

int dt_scaling_standardize(dt_scaling_t *s, const dt_dataset_t *ds, dt_error_t *err) {
  memset(s, 0, sizeof *s);
  size_t dim = ds->dim;
  double *sum = calloc(2 * (dim ? dim : 1), sizeof *sum);
  float *row = malloc(sizeof *row * (dim ? dim : 1));
  s->mean = malloc(sizeof(float) * (dim ? dim : 1));
  s->inv_std = malloc(sizeof(float) * (dim ? dim : 1));
  int rc = DT_OK;
  if (!sum || !row || !s->mean || !s->inv_std) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory for standardization statistics");
    goto done;
  }
  double *sq = sum + dim;
  /* Sums of values and of squares in double, over every sample in order: the same
   * statistics on every rank and for any world size. */
  for (size_t i = 0; i < ds->n && !rc; i++) {
    uint32_t k = (uint32_t)i;
    if ((rc = dt_dataset_gather(ds, NULL, &k, 1, row, NULL, NULL, err))) break;
    for (size_t j = 0; j < dim; j++) {
      sum[j] += row[j];
      sq[j] += (double)row[j] * row[j];
    }
  }
  if (rc) goto done;
  double n = ds->n ? (double)ds->n : 1.0;
  for (size_t j = 0; j < dim; j++) {
    double mean = sum[j] / n, var = sq[j] / n - mean * mean;
    /* A constant feature (an always-black border pixel) keeps a scale of 1, not 1/0. */
    double sd = var > 1e-12 ? sqrt(var) : 0.0;
    s->mean[j] = (float)mean;
    s->inv_std[j] = sd > 0.0 ? (float)(1.0 / sd) : 1.0f;
  }
  s->kind = DT_SCALE_STANDARDIZE;
  s->dim = dim;
done:
  free(sum);
  free(row);
  if (rc) dt_scaling_free(s);
  return rc;
}

/* The inner loops are kept separate and restrict-qualified so the compiler can
 * vectorize each sample's row (this runs once per batch on every step). */
DT_HOT_LOOP static void u8_row(const uint8_t *restrict src, size_t dim, float scale,
                               float *restrict dst) {
  for (size_t j = 0; j < dim; j++) dst[j] = (float)src[j] * scale;
}

/* One loop per stored type, the type's switch outside it (token ids of a text batch
 * are tens of thousands of int32 values per step). memcpy per value: mapped files give
 * no alignment promise; the compiler turns it into a plain load. */
#define CONVERT_LOOP(T)                                   \
  for (size_t j = 0; j < dim; j++) {                      \
    T v;                                                  \
    memcpy(&v, p + j * sizeof v, sizeof v);               \
    dst[j] = (float)v;                                    \
  }

static void convert_row(const dt_array_t *a, size_t i, size_t dim, float *restrict dst) {
  const unsigned char *p = row_ptr(a, i);
  switch (a->type) {
    case DT_F32: memcpy(dst, p, dim * sizeof *dst); break;
    case DT_U8: u8_row(p, dim, 1.0f, dst); break;
    case DT_I8: CONVERT_LOOP(int8_t) break;
    case DT_I16: CONVERT_LOOP(int16_t) break;
    case DT_I32: CONVERT_LOOP(int32_t) break;
    case DT_I64:
      /* Through double, as dt_array_get reads it, so that both agree. */
      for (size_t j = 0; j < dim; j++) dst[j] = (float)value_at(DT_I64, p, j);
      break;
    case DT_F64: CONVERT_LOOP(double) break;
  }
}

DT_HOT_LOOP static void standardize_row(float *restrict x, const float *restrict mean,
                                        const float *restrict inv_std, size_t dim) {
  for (size_t j = 0; j < dim; j++) x[j] = (x[j] - mean[j]) * inv_std[j];
}

DT_HOT_LOOP static void scale_row(float *restrict x, float scale, size_t dim) {
  for (size_t j = 0; j < dim; j++) x[j] *= scale;
}

int dt_dataset_gather(const dt_dataset_t *ds, const dt_scaling_t *scaling, const uint32_t *idx,
                      size_t count, float *x, int32_t *labels, float *values, dt_error_t *err) {
  dt_scale_kind kind = scaling ? scaling->kind : DT_SCALE_NONE;
  size_t dim = ds->dim;
  for (size_t i = 0; x && i < count; i++) {
    size_t r = ds->first + idx[i];
    float *dst = x + i * dim;
    if (ds->x.base && ds->x.type == DT_U8 && kind == DT_SCALE_1_255) {
      /* The common case (8-bit images) in one pass. */
      u8_row(row_ptr(&ds->x, r), dim, 1.0f / 255.0f, dst);
      continue;
    }
    if (ds->x.base) convert_row(&ds->x, r, dim, dst);
    else {
      int rc = ds->decoder.read(ds->decoder.self, r, dst, err);
      if (rc) return rc;
    }
    if (kind == DT_SCALE_1_255) scale_row(dst, 1.0f / 255.0f, dim);
    else if (kind == DT_SCALE_STANDARDIZE) standardize_row(dst, scaling->mean, scaling->inv_std, dim);
  }
  if (ds->ykind == DT_Y_NONE) return DT_OK;
  size_t ydim = ds->y.row;
  for (size_t i = 0; i < count; i++) {
    size_t r = ds->first + idx[i];
    if (labels && ds->ykind == DT_Y_CLASSES) {
      if (ds->y.type == DT_I32) memcpy(&labels[i], row_ptr(&ds->y, r), sizeof *labels);
      else labels[i] = (int32_t)dt_array_get(&ds->y, r, 0);
    }
    if (values) convert_row(&ds->y, r, ydim, values + i * ydim);
  }
  return DT_OK;
}

void dt_epoch_permutation(uint64_t seed, uint64_t epoch, uint32_t *perm, size_t n) {
  /* Sample indices are uint32, so n may be at most 2^32. */
  assert((uint64_t)n <= (uint64_t)UINT32_MAX + 1);
  /* A fresh generator per epoch, derived only from (seed, epoch): every rank computes
   * the same order without communicating, and a run resumed at epoch e reproduces it
   * without replaying earlier epochs' draws. */
  dt_rng_t r;
  dt_rng_seed(&r, dt_rng_mix(seed, epoch));
  for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  /* Fisher-Yates, from the end: position i swaps with a uniform j in [0, i]. */
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)dt_rng_below(&r, (uint64_t)i);
    uint32_t tmp = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = tmp;
  }
}

size_t dt_batches_per_epoch(size_t n, size_t batch_per_rank, int world) {
  if (batch_per_rank == 0 || world <= 0) return 0;
  if (batch_per_rank > SIZE_MAX / (size_t)world) return 0;
  /* Only full global batches are used: the last n % (batch_per_rank * world) samples of
   * each epoch's permutation are dropped. Every rank then runs the same number of steps
   * (an all-reduce needs all of them), and batch statistics never see a runt batch.
   * Because the permutation changes every epoch, different samples are dropped each time. */
  return n / (batch_per_rank * (size_t)world);
}

const uint32_t *dt_shard_batch(const uint32_t *perm, size_t global_batch, size_t batch_per_rank,
                               int rank, int world) {
  assert(world > 0 && rank >= 0 && rank < world);
  return perm + (global_batch * (size_t)world + (size_t)rank) * batch_per_rank;
}
