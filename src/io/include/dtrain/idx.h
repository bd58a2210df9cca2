/* IDX files (LeCun's MNIST format), plain or gzip-compressed (detected by content), of
 * any element type and rank. */
#ifndef DTRAIN_IDX_H
#define DTRAIN_IDX_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/data.h"
#include "dtrain/error.h"

/* Reads an IDX file of unsigned bytes (magic 0x00000800 | ndims): images (ndims 3) or
 * labels (ndims 1). dims[0] is the item count. *data is malloc'd (caller frees); with
 * data NULL the file is read and checked the same way but nothing is kept. Errors name
 * the file and say what is wrong: missing, wrong magic, unsupported type, truncated
 * (expected vs got bytes), corrupt gzip stream, trailing bytes. */
int dt_idx_read(const char *path, int expect_ndims, uint8_t **data, uint32_t *dims,
                dt_error_t *err);

/* Any IDX file as a dataset: element types 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C
 * int32, 0x0D float32, 0x0E float64 (big-endian in the file, host order in memory), any
 * rank from 1 to 4: dims[0] counts the samples and the rest is a sample's shape (rank 1:
 * one value per sample, shape (1)). Read into memory, plain or gzip, with the checks of
 * dt_idx_read; float values must be finite (the error names the sample). out gets no
 * targets (DT_Y_NONE; join a targets file with dt_dataset_join_targets), what = a copy
 * of path, everything owned by out. On failure out is empty. */
int dt_idx_load(const char *path, dt_dataset_t *out, dt_error_t *err);

/* An inputs file and a class-labels file as one dataset: counts must match and labels
 * must be < 256; num_classes is max label + 1. Shape is (rows, cols, 1). With
 * keep_inputs false the inputs are read and checked but not kept (x.base NULL): for a
 * set needed only at the end of a run, loaded again then. */
int dt_idx_load_pair(dt_dataset_t *ds, const char *inputs_path, const char *labels_path,
                     bool keep_inputs, dt_error_t *err);

#endif
