/* Datasets: samples of any element type, in memory, memory-mapped or decoded on demand;
 * their targets (class ids or float values); views (validation split, limits, PS parts);
 * gathering a batch as floats with the run's scaling; the per-epoch permutation and the
 * per-rank sharding that let every process agree on its samples without talking.
 *
 * Each file format (idx.h, csv.h, numpy.h, images.h, text.h) fills a dt_dataset_t; the
 * training loop sees only this interface. Storage belongs to the dataset a format
 * returned (its owner frees it); views made from it share the storage and must not
 * outlive it. */
#ifndef DTRAIN_DATA_H
#define DTRAIN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"

/* Element types of stored values (NumPy's and IDX's). */
typedef enum { DT_U8, DT_I8, DT_I16, DT_I32, DT_I64, DT_F32, DT_F64 } dt_dtype_t;

/* "uint8", "int8", ..., "float64". */
const char *dt_dtype_name(dt_dtype_t t);
size_t dt_dtype_size(dt_dtype_t t);

/* Rows of values of one type, C order, little-endian, host-aligned or not (values are
 * read with memcpy). `base` is row 0 of the storage: views keep `base` and move
 * dt_dataset_t.first instead. */
typedef struct {
  dt_dtype_t type;
  const void *base;
  size_t row; /* values per row */
} dt_array_t;

/* Reads value j of row i as a double. */
double dt_array_get(const dt_array_t *a, size_t i, size_t j);

/* Samples that are decoded when gathered (image files): read(self, i, x) writes storage
 * row i's dim values into x, unscaled (0..255 for 8-bit images). It may be called from
 * several threads at once for different rows. An error names the file. */
typedef struct {
  int (*read)(void *self, size_t i, float *x, dt_error_t *err);
  void *self;
} dt_decoder_t;

typedef enum {
  DT_Y_NONE,    /* no targets (an autoencoder's inputs) */
  DT_Y_CLASSES, /* one integer class id in [0, num_classes) per sample */
  DT_Y_VALUES   /* ydim floats per sample (regression, or 0/1 for a sigmoid unit) */
} dt_target_kind;

enum { DT_DATA_MAX_DIMS = 3 };

typedef struct {
  size_t n;         /* samples */
  size_t dim;       /* values per sample: the product of shape */
  int shape[DT_DATA_MAX_DIMS]; /* per sample, channels last, e.g. (28, 28, 1); unused trailing 1 */
  int ndim;         /* used entries of shape */
  size_t first;     /* storage row of sample 0 (views of a file move this) */
  dt_array_t x;     /* (rows, dim); x.base NULL when the decoder makes the samples */
  dt_decoder_t decoder;
  dt_target_kind ykind;
  dt_array_t y;     /* (rows, y.row): class ids (row 1) or values (row = ydim) */
  int num_classes;  /* DT_Y_CLASSES: max id + 1, or the number of class names */
  char **class_names; /* num_classes names (image folders, text labels), or NULL */
  bool integer_ids; /* the values are token ids (text): never scaled */
  const char *what; /* the file(s) for messages, e.g. "train.csv" */
  const char *y_what; /* the targets' file when not `what` (IDX, NumPy), or NULL */
  size_t first_line; /* line-based files: the line of storage row 0, so that errors name
                      * lines (0: none) */
  /* What the format computed that prediction must repeat, as the members of a JSON
   * object without its braces (e.g. `"vocabulary": [...], "image_size": [28, 28]`), or
   * NULL. Owned like the storage. */
  char *meta_json;
  /* The storage; set only in the dataset a format returned, NULL in views. */
  struct dt_data_owner *owner;
} dt_dataset_t;

/* What a dataset owns: a list of blocks to free() and memory maps to unmap, released
 * in reverse order. Formats put everything they allocate for a dataset here (also
 * class_names' strings and array, and meta_json). */
typedef struct dt_data_owner dt_data_owner_t;
/* The dataset's owner, made on first use. The add functions free/unmap what they are
 * given when they fail, so that a caller can simply return the error. */
int dt_data_own(dt_dataset_t *ds, void *block, dt_error_t *err);
int dt_data_own_map(dt_dataset_t *ds, void *addr, size_t len, dt_error_t *err);
int dt_data_own_fn(dt_dataset_t *ds, void (*fn)(void *), void *arg, dt_error_t *err);

/* Releases what ds owns; then zeroes ds. A view is only zeroed. */
void dt_dataset_free(dt_dataset_t *ds);

/* A view of samples [begin, begin + n) of ds (shares the storage, owns nothing). */
dt_dataset_t dt_dataset_view(const dt_dataset_t *ds, size_t begin, size_t n);

/* Keeps only the first n samples (n larger than ds->n keeps all). */
void dt_dataset_truncate(dt_dataset_t *ds, size_t n);

/* Splits off the last val_fraction of samples (Keras' validation_split takes the tail,
 * before shuffling) as views into all; train gets the rest. */
void dt_dataset_split(const dt_dataset_t *all, double val_fraction, dt_dataset_t *train,
                      dt_dataset_t *val);

/* Takes a dataset of inputs and one read from a separate targets file (IDX, NumPy): y's
 * samples become x's target values (DT_Y_VALUES, y.row = y's dim), their storage joins
 * x's owner, and y is emptied (also on an error). Errors when the counts differ. */
int dt_dataset_join_targets(dt_dataset_t *x, dt_dataset_t *y, dt_error_t *err);

/* "sample R" or, for line-based files, "sample R (line L)": where sample i of ds (a
 * file or a view) is, for messages; R counts from the file's first sample. Returns buf. */
const char *dt_dataset_sample_where(const dt_dataset_t *ds, size_t i, char *buf, size_t cap);

/* Makes target values class ids for a loss that takes labels: each must be a
 * non-negative integer (the error names the sample, and the line for text files);
 * num_classes becomes the largest + 1. Classes already are left as they are. */
int dt_dataset_targets_as_classes(dt_dataset_t *ds, dt_error_t *err);

/* How gathered values are scaled (data.scale). */
typedef enum { DT_SCALE_NONE, DT_SCALE_1_255, DT_SCALE_STANDARDIZE } dt_scale_kind;
extern const char *const dt_scale_names[]; /* "none", "1/255", "standardize", NULL */

typedef struct {
  dt_scale_kind kind;
  float *mean;    /* DT_SCALE_STANDARDIZE: (dim) per feature */
  float *inv_std; /* (dim): 1/std, or 1 where a feature is constant */
  size_t dim;
} dt_scaling_t;

/* Per-feature mean and standard deviation of ds (every sample, in order, in double):
 * the same on every rank whatever the world size. */
int dt_scaling_standardize(dt_scaling_t *s, const dt_dataset_t *ds, dt_error_t *err);
void dt_scaling_free(dt_scaling_t *s);

/* Copies samples idx[0..count) of ds into x (count, dim), scaled; the class ids into
 * labels (when non-NULL and the targets are classes) and the target values into values
 * (count, y.row) when non-NULL (class ids become their float values). Fails only when a
 * decoder fails (a corrupt image found mid-run). */
int dt_dataset_gather(const dt_dataset_t *ds, const dt_scaling_t *scaling, const uint32_t *idx,
                      size_t count, float *x, int32_t *labels, float *values, dt_error_t *err);

/* The same permutation of [0, n) for every process given (seed, epoch). */
void dt_epoch_permutation(uint64_t seed, uint64_t epoch, uint32_t *perm, size_t n);

/* Sharding: global batch g of an epoch is perm[g*B*world .. (g+1)*B*world), and rank r
 * takes the r-th slice of B samples of it. So N ranks with batch B see exactly the
 * samples that 1 rank with batch N*B sees, and the global order does not depend on N. */
size_t dt_batches_per_epoch(size_t n, size_t batch_per_rank, int world);
const uint32_t *dt_shard_batch(const uint32_t *perm, size_t global_batch, size_t batch_per_rank,
                               int rank, int world);

/* The binary-addition task (data_synth.c): samples are (bits, 2) sequences of the
 * operands' bits, least significant first, labels the sums; train and test get
 * disjoint random sets of operand pairs drawn from seed. */
int dt_dataset_binary_addition(dt_dataset_t *train, dt_dataset_t *test, int bits, size_t n_train,
                               size_t n_test, uint64_t seed, dt_error_t *err);

#endif
