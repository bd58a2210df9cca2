/* Whole files in and out for the Keras library (see file_io.h). */
#include "file_io.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int keras_read_file(const char *path, unsigned char **data, size_t *len, dt_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return dt_error_set(err, DT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  unsigned char *b = malloc(cap);
  while (b) {
    n += fread(b + n, 1, cap - n, f);
    if (n < cap) break;
    unsigned char *g = realloc(b, cap * 2);
    if (!g) free(b);
    b = g;
    cap *= 2;
  }
  bool bad_read = ferror(f);
  fclose(f);
  if (!b) return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading %s", path);
  if (bad_read) {
    free(b);
    return dt_error_set(err, DT_ERR_IO, "%s: read error", path);
  }
  *data = b, *len = n;
  return 0;
}

int keras_write_file(const char *path, const void *data, size_t len, dt_error_t *err) {
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
    return dt_error_set(err, DT_ERR_ARG, "%s: path too long", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return dt_error_set(err, DT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  bool ok = fwrite(data, 1, len, f) == len;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return dt_error_set(err, DT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  }
  return 0;
}
