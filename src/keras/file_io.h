/* Whole files in and out for the Keras library: a .keras or .json read into memory,
 * and files written atomically (a temporary beside them, renamed into place, so that a
 * failed write leaves no partial file). */
#ifndef DTRAIN_KERAS_FILE_IO_H
#define DTRAIN_KERAS_FILE_IO_H

#include <stddef.h>

#include "dtrain/error.h"

/* Reads all of path into *data (malloc'd; the caller frees it), *len bytes. */
int keras_read_file(const char *path, unsigned char **data, size_t *len, dt_error_t *err);

/* Writes len bytes to path through path.tmp and a rename. */
int keras_write_file(const char *path, const void *data, size_t len, dt_error_t *err);

#endif
