/* Datasets: IDX files (plain or gzip), in-memory sample storage, validation split,
 * per-epoch shuffling from (seed, epoch) and per-rank sharding of each global batch.
 *
 * Images stay as bytes in memory (Fashion-MNIST's 60,000 images are 47 MB as bytes,
 * 188 MB as floats) and are scaled to [0,1] floats only when a batch is gathered. */
#ifndef DTRAIN_DATA_H
#define DTRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"

/* Reads an IDX file of unsigned bytes (magic 0x00000800 | ndims): images (ndims 3) or
 * labels (ndims 1). gzip is detected by content, so plain and .gz files both work.
 * dims[0] is the item count. *data is malloc'd (caller frees); with data NULL the file
 * is read and checked the same way but nothing is kept. Errors name the file and say
 * what is wrong: missing, wrong magic, unsupported type, truncated (expected vs got
 * bytes), corrupt gzip stream, trailing bytes. */
int dt_idx_read(const char *path, int expect_ndims, uint8_t **data, uint32_t *dims,
                dt_error_t *err);

typedef struct {
  size_t n;               /* number of samples */
  size_t dim;             /* features per sample (product of shape) */
  int shape[3];           /* per-sample shape, e.g. (28, 28, 1); unused trailing dims are 1 */
  int ndim;               /* used entries of shape */
  const uint8_t *x_u8;    /* (n, dim) bytes, scaled by 1/255 when gathered; or NULL */
  const float *x_f32;     /* (n, dim) floats, used as they are; or NULL */
  const int32_t *labels;  /* (n) class labels in [0, num_classes), or NULL */
  int num_classes;
  /* Storage owned by this dataset (NULL for views): */
  void *owned_x;
  void *owned_labels;
} dt_dataset_t;

/* Loads an images file and a labels file into ds: counts must match and labels must be
 * < 256; num_classes is max label + 1. Shape is (rows, cols, 1). */
int dt_dataset_load_idx(dt_dataset_t *ds, const char *images_path, const char *labels_path,
                        dt_error_t *err);

/* The same, but the images are only read and checked, not kept: ds has its labels,
 * count and sample shape, and x_u8 NULL. For a set needed only at the end of a run
 * (the test set), loaded then with dt_dataset_load_idx so that it never shares the
 * peak memory with the training set. */
int dt_dataset_load_idx_labels(dt_dataset_t *ds, const char *images_path,
                               const char *labels_path, dt_error_t *err);

/* The binary-addition task (data_synth.c): samples are (bits, 2) sequences of the
 * operands' bits, least significant first, labels the sums; train and test get
 * disjoint random sets of operand pairs drawn from seed. */
int dt_dataset_binary_addition(dt_dataset_t *train, dt_dataset_t *test, int bits, size_t n_train,
                               size_t n_test, uint64_t seed, dt_error_t *err);

/* Keeps only the first n samples (no copy; n larger than ds->n keeps all). */
void dt_dataset_truncate(dt_dataset_t *ds, size_t n);

/* Splits off the last val_fraction of samples (Keras' validation_split takes the tail,
 * before shuffling) as views into all; train gets the rest. */
void dt_dataset_split(const dt_dataset_t *all, double val_fraction, dt_dataset_t *train,
                      dt_dataset_t *val);

void dt_dataset_free(dt_dataset_t *ds);

/* Copies samples idx[0..count) into x (count, dim) floats and, if labels is non-NULL and
 * the dataset has labels, their labels. */
void dt_dataset_gather(const dt_dataset_t *ds, const uint32_t *idx, size_t count, float *x,
                       int32_t *labels);

/* The same permutation of [0, n) for every process given (seed, epoch). */
void dt_epoch_permutation(uint64_t seed, uint64_t epoch, uint32_t *perm, size_t n);

/* Sharding: global batch g of an epoch is perm[g*B*world .. (g+1)*B*world), and rank r
 * takes the r-th slice of B samples of it. So N ranks with batch B see exactly the
 * samples that 1 rank with batch N*B sees, and the global order does not depend on N. */
size_t dt_batches_per_epoch(size_t n, size_t batch_per_rank, int world);
const uint32_t *dt_shard_batch(const uint32_t *perm, size_t global_batch, size_t batch_per_rank,
                               int rank, int world);

#endif
