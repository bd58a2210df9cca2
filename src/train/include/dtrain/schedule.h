/* Learning-rate schedules: a pure function of the global step, so nothing but the
 * step needs saving to resume one exactly.
 *   constant: base_lr
 *   step:     base_lr * gamma^floor(epoch / step_epochs)
 *   cosine:   min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2 over the run
 * Any of them can start with a linear warmup from base_lr / warmup_steps to base_lr. */
#ifndef DTRAIN_SCHEDULE_H
#define DTRAIN_SCHEDULE_H

#include "dtrain/config.h"
#include "dtrain/error.h"

typedef enum { DT_SCHED_CONSTANT, DT_SCHED_STEP, DT_SCHED_COSINE } dt_schedule_kind;

extern const char *const dt_schedule_names[];

typedef struct {
  dt_schedule_kind kind;
  double base_lr;
  double gamma;       /* step: factor per drop */
  long step_epochs;   /* step: epochs between drops */
  double min_lr;      /* cosine: final lr */
  long warmup_steps;  /* linear warmup length, 0 for none */
  long steps_per_epoch;
  long total_steps;   /* cosine: length of the run */
} dt_schedule_t;

/* Reads [schedule]: type, gamma, step_epochs, min_lr, warmup_steps. */
int dt_schedule_read(dt_config_t *cfg, double base_lr, long steps_per_epoch, long total_steps,
                     dt_schedule_t *out, dt_error_t *err);

/* The learning rate for global step `step` (0-based). */
double dt_schedule_lr(const dt_schedule_t *s, long step);

#endif
