/* Rank-aware logging: rank 0 prints, the other ranks stay quiet unless asked
 * (verbose). Errors and warnings always print, tagged with the rank when there
 * are several. A logger is a value passed around, not global state. */
#ifndef DTRAIN_LOG_H
#define DTRAIN_LOG_H

#include <stdbool.h>
#include <stdio.h>

typedef struct {
  int rank, world;
  bool all_ranks; /* let every rank print info lines */
  bool quiet;     /* suppress info lines everywhere (results still print) */
  FILE *out;      /* info lines (stdout) */
  FILE *err;      /* warnings and errors (stderr) */
} dt_log_t;

dt_log_t dt_log_make(int rank, int world);

/* True if info lines from this rank are printed. */
bool dt_log_enabled(const dt_log_t *log);

void dt_log_info(const dt_log_t *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The run's final result (the test metrics): an info line that --quiet keeps. */
void dt_log_result(const dt_log_t *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dt_log_warn(const dt_log_t *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dt_log_error(const dt_log_t *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
