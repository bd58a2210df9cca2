/* model.weights.h5 through libhdf5, entirely in memory: an HDF5 file image is built or
 * read with the core driver, so that the bytes go into (or come from) the .keras zip
 * without a temporary file. Only what Keras' weights file uses: groups, a string
 * attribute "name" on them, and float32 datasets. Private to src/keras. */
#ifndef DTRAIN_KERAS_H5_H
#define DTRAIN_KERAS_H5_H

#include <stddef.h>

#include "dtrain/error.h"
#include "dtrain/tensor.h"

typedef struct dt_h5 dt_h5_t;

/* A new, empty file image. `what` names it in errors. */
int dt_h5_create(const char *what, dt_h5_t **out, dt_error_t *err);
/* Creates group `path` ("layers/dense/vars"), and any missing parents; `name`, if not
 * NULL, becomes its string attribute "name". */
int dt_h5_group(dt_h5_t *h, const char *path, const char *name, dt_error_t *err);
/* Dataset `path` of float32 values of the given shape (ndim 0..4). */
int dt_h5_write(dt_h5_t *h, const char *path, const dt_shape_t *shape, const float *data,
                dt_error_t *err);
/* The file's bytes (*data malloc'd). The image stays open. */
int dt_h5_image(dt_h5_t *h, void **data, size_t *len, dt_error_t *err);

/* Opens a file image (copied; data may be freed afterwards) read-only. */
int dt_h5_open(const void *data, size_t len, const char *what, dt_h5_t **out, dt_error_t *err);
/* Whether `path` names a dataset. */
int dt_h5_exists(dt_h5_t *h, const char *path);
/* The shape of dataset `path` (at most 4 axes; a scalar has ndim 0). */
int dt_h5_shape(dt_h5_t *h, const char *path, dt_shape_t *shape, dt_error_t *err);
/* Reads dataset `path` as float32 (converted from any float or integer type) into
 * out[0, count); its number of values must be `count`. */
int dt_h5_read(dt_h5_t *h, const char *path, float *out, size_t count, dt_error_t *err);

void dt_h5_close(dt_h5_t *h);

#endif
