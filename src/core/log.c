/* Rank-aware logging (see log.h). */
#include "dtrain/log.h"

#include <stdarg.h>
#include <stdio.h>

dt_log_t dt_log_make(int rank, int world) {
  return (dt_log_t){.rank = rank, .world = world, .out = stdout, .err = stderr};
}

bool dt_log_enabled(const dt_log_t *log) { return !log->quiet && (log->rank == 0 || log->all_ranks); }

/* The line is built first and written with one call: stderr is unbuffered, and
 * piecewise writes from several ranks would interleave in mpirun's output. */
static void emit(const dt_log_t *log, FILE *f, const char *level, const char *fmt, va_list ap) {
  char line[4096];
  size_t used = 0;
  int n = 0;
  if (log->world > 1) n = snprintf(line, sizeof line, "[rank %d] ", log->rank);
  used += n > 0 ? (size_t)n : 0;
  if (level && used < sizeof line) n = snprintf(line + used, sizeof line - used, "%s: ", level);
  used += level && n > 0 ? (size_t)n : 0;
  if (used < sizeof line) vsnprintf(line + used, sizeof line - used, fmt, ap);
  fprintf(f, "%s\n", line);
  fflush(f);
}

/* Info lines from rank 0 carry no rank tag: they speak for the job. */
static void emit_info(const dt_log_t *log, const char *fmt, va_list ap) {
  if (log->rank == 0) {
    vfprintf(log->out, fmt, ap);
    fputc('\n', log->out);
    fflush(log->out);
  } else {
    emit(log, log->out, NULL, fmt, ap);
  }
}

void dt_log_info(const dt_log_t *log, const char *fmt, ...) {
  if (!dt_log_enabled(log)) return;
  va_list ap;
  va_start(ap, fmt);
  emit_info(log, fmt, ap);
  va_end(ap);
}

void dt_log_result(const dt_log_t *log, const char *fmt, ...) {
  if (log->rank != 0 && !log->all_ranks) return;
  va_list ap;
  va_start(ap, fmt);
  emit_info(log, fmt, ap);
  va_end(ap);
}

void dt_log_warn(const dt_log_t *log, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit(log, log->err, "warning", fmt, ap);
  va_end(ap);
}

void dt_log_error(const dt_log_t *log, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit(log, log->err, "error", fmt, ap);
  va_end(ap);
}
