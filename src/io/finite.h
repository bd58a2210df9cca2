/* The NaN/infinity check that the binary formats (NumPy, IDX) run over float data when
 * they load it. Private to src/io. */
#ifndef DTRAIN_IO_FINITE_H
#define DTRAIN_IO_FINITE_H

#include <stddef.h>

#include "dtrain/data.h"
#include "dtrain/error.h"

/* Checks that every value of n samples of dim values each (C order, little-endian, at
 * base, any alignment) is finite when type is a float type; other types pass. float64
 * values must also fit float32, which training uses. One sequential pass. The error, a
 * DT_ERR_FORMAT, begins with where (e.g. "'x.npy'") and names the sample, the value's
 * flat index in it, its index in the sample's shape (shape[0..ndim)), and the value. */
int dt_io_check_finite(const char *where, dt_dtype_t type, const void *base, size_t n,
                       size_t dim, const int *shape, int ndim, dt_error_t *err);

#endif
