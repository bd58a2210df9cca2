/* NumPy's files as datasets: a .npy array, or one array of a .npz archive. */
#ifndef DTRAIN_NUMPY_H
#define DTRAIN_NUMPY_H

#include "dtrain/data.h"
#include "dtrain/error.h"

/* Loads spec into out: a path to a .npy file, or "PATH.npz:NAME" for the array NAME of
 * an .npz archive (the entry NAME.npy, as np.savez names them).
 *
 * Accepted: .npy format versions 1.0, 2.0 and 3.0; dtypes '|u1' '|i1' '<i2' '<i4' '<i8'
 * '<f4' '<f8' in C order; 1 to 4 dimensions, of which dimension 0 counts the samples
 * and the rest is each sample's shape as given (a 1-d array gives one value per sample,
 * shape (1)). Float values must be finite.
 *
 * A .npy is memory-mapped (read-only, private), not read, so that a file larger than
 * memory trains; so is an .npz whose entry is stored. A deflated .npz entry is inflated
 * into memory (its CRC-32 and sizes checked). Everything belongs to out's owner, and
 * out->what is a copy of spec.
 *
 * out gets n, dim, shape/ndim, x = {dtype, the data, dim} and no targets (DT_Y_NONE):
 * targets come from a second file joined with dt_dataset_join_targets. On failure out is
 * empty and the error names the file (and the .npz entry) and what was found: another
 * dtype, big-endian data, Fortran order, a bad header, a file shorter or longer than its
 * header says, a corrupt zip, a missing array (listing those the file has), a NaN or
 * infinity (naming the sample and the value's index). */
int dt_numpy_load(const char *spec, dt_dataset_t *out, dt_error_t *err);

#endif
