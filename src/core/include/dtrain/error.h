/* Error codes and error messages with context.
 *
 * Library functions return 0 on success or a negative dt_err code, and fill a
 * caller-owned dt_error_t with a message that says what failed and where (file,
 * line, key, offset...). Only a program's main() turns that into an exit status. */
#ifndef DTRAIN_ERROR_H
#define DTRAIN_ERROR_H

#include <stddef.h>

typedef enum {
  DT_OK = 0,
  DT_ERR_NOMEM = -1,   /* an allocation failed */
  DT_ERR_IO = -2,      /* open/read/write/fsync failed */
  DT_ERR_FORMAT = -3,  /* a file or message is malformed (bad magic, truncated, corrupt) */
  DT_ERR_CONFIG = -4,  /* a config key or value is wrong */
  DT_ERR_SHAPE = -5,   /* layers, data and loss do not fit together */
  DT_ERR_ARG = -6,     /* a bad argument from the command line or a caller */
  DT_ERR_COMM = -7,    /* communication between processes failed */
  DT_ERR_TIMEOUT = -8, /* something did not finish in time */
  DT_ERR_STATE = -9,   /* an operation that is not valid in the current state */
  DT_ERR_MISMATCH = -10, /* the ranks of a job disagree (model, config); all of them know */
  DT_ERR_NOT_FOUND = -11 /* a file, key or checkpoint that was looked for does not exist */
} dt_err;

enum { DT_ERROR_MSG_MAX = 1024 };

typedef struct {
  int code;
  char msg[DT_ERROR_MSG_MAX];
} dt_error_t;

/* Records code and a printf-style message in err (which may be NULL) and returns code,
 * so that callers can write `return dt_error_set(err, DT_ERR_IO, "...", ...);`. */
int dt_error_set(dt_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends context ("while loading X: ") to an error already set; returns err->code. */
int dt_error_prefix(dt_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void dt_error_clear(dt_error_t *err);

/* A short name for an error code ("I/O error", "bad format", ...). */
const char *dt_err_name(int code);

#endif
