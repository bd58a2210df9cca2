/* A writer of small zip archives in memory: stored (uncompressed) entries with their
 * CRC-32, as Keras 3 writes a .keras file. Private to src/keras. */
#ifndef DTRAIN_KERAS_ZIP_WRITE_H
#define DTRAIN_KERAS_ZIP_WRITE_H

#include <stddef.h>

#include "dtrain/error.h"

typedef struct {
  unsigned char *buf; /* the archive so far (malloc'd) */
  size_t len, cap;
  unsigned char *cen; /* the central directory so far (malloc'd) */
  size_t cen_len, cen_cap;
  int entries;
} dt_zip_writer_t;

/* Appends entry `name` holding data[0, len) (at most 4 GiB; no zip64). */
int dt_zip_writer_add(dt_zip_writer_t *z, const char *name, const void *data, size_t len,
                      dt_error_t *err);
/* Appends the central directory and its end record; z->buf[0, z->len) is the archive. */
int dt_zip_writer_finish(dt_zip_writer_t *z, dt_error_t *err);
void dt_zip_writer_free(dt_zip_writer_t *z);

#endif
