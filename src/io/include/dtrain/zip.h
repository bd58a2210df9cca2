/* A reader of zip archives held in memory (a mapped .npz, a .keras file): the central directory, and
 * the bytes of one entry, stored or deflated. */
#ifndef DTRAIN_ZIP_H
#define DTRAIN_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"

typedef struct {
  const char *name; /* not NUL-terminated: name_len bytes inside the archive */
  size_t name_len;
  uint16_t flags, method;
  uint32_t crc;
  uint64_t csize, usize, local_offset;
} dt_zip_entry_t;

/* Calls fn for every entry of the central directory of the archive (data, len), in
 * order, until fn returns non-zero, which is then returned. Sizes and offsets are the
 * central directory's, zip64 extra fields applied. Errors (DT_ERR_FORMAT) name path. */
int dt_zip_each(const char *path, const unsigned char *data, size_t len,
                int (*fn)(void *arg, const dt_zip_entry_t *e), void *arg, dt_error_t *err);

/* The bytes of entry e (found by dt_zip_each on the same archive). A stored entry is
 * *out pointing into data with *owned NULL; a deflated one is inflated into *owned, a
 * malloc'd buffer that *out points to and the caller frees. Both have their CRC-32 and
 * sizes checked. Errors name path and the entry. */
int dt_zip_extract(const char *path, const unsigned char *data, size_t len,
                   const dt_zip_entry_t *e, const unsigned char **out, unsigned char **owned,
                   dt_error_t *err);

/* e's name for a message: at most len - 1 bytes, unprintable bytes as '?'. */
void dt_zip_name(const dt_zip_entry_t *e, char *buf, size_t len);

#endif
