/* Error records: formatting messages and prefixing context. */
#include "dtrain/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dt_error_set(dt_error_t *err, int code, const char *fmt, ...) {
  if (!err) return code;
  err->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return code;
}

int dt_error_prefix(dt_error_t *err, const char *fmt, ...) {
  if (!err) return DT_ERR_STATE;
  char prefix[DT_ERROR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  /* Room for both parts; the result is cut to the message size, keeping the prefix. */
  char joined[2 * DT_ERROR_MSG_MAX];
  snprintf(joined, sizeof joined, "%s%s", prefix, err->msg);
  snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, joined);
  return err->code;
}

void dt_error_clear(dt_error_t *err) {
  if (!err) return;
  err->code = DT_OK;
  err->msg[0] = '\0';
}

const char *dt_err_name(int code) {
  switch (code) {
    case DT_OK: return "ok";
    case DT_ERR_NOMEM: return "out of memory";
    case DT_ERR_IO: return "I/O error";
    case DT_ERR_FORMAT: return "bad format";
    case DT_ERR_CONFIG: return "config error";
    case DT_ERR_SHAPE: return "shape mismatch";
    case DT_ERR_ARG: return "bad argument";
    case DT_ERR_COMM: return "communication error";
    case DT_ERR_TIMEOUT: return "timeout";
    case DT_ERR_STATE: return "invalid state";
    case DT_ERR_MISMATCH: return "ranks disagree";
    case DT_ERR_NOT_FOUND: return "not found";
    default: return "unknown error";
  }
}
