/* Reading a whole text file (CSV, TSV) into memory once, so that the parsers can work in
 * place: private to src/io. */
#ifndef DTRAIN_IO_TEXTFILE_H
#define DTRAIN_IO_TEXTFILE_H

#include <stddef.h>

#include "dtrain/error.h"

/* Reads path whole into *data (malloc'd, caller frees), NUL-terminated after its *len
 * bytes so that strtod and friends stop at the end; a leading UTF-8 byte order mark is
 * left in the buffer and counted in *bom (3 or 0), so that callers can skip it. Works on
 * pipes as well as regular files. */
int dt_textfile_read(const char *path, char **data, size_t *len, size_t *bom, dt_error_t *err);

#endif
