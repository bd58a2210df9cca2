/* A live one-line progress bar with ETA for terminals; silent otherwise, where the
 * per-epoch lines are the whole output. */
#ifndef DTRAIN_WORKER_PROGRESS_H
#define DTRAIN_WORKER_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

typedef struct {
  bool enabled;
  FILE *out;
  long total;
  double start, last_draw;
} progress_t;

/* Enabled only if out is a terminal. */
void progress_init(progress_t *p, FILE *out, bool allowed);
void progress_begin(progress_t *p, long total_steps);
/* Redraws at most ten times a second. */
void progress_update(progress_t *p, long done, double loss, double accuracy);
/* Clears the bar so the epoch line can take its place. */
void progress_end(progress_t *p);

#endif
