/* Learning-rate schedules (see schedule.h). */
#include "dtrain/schedule.h"

#include <math.h>

const char *const dt_schedule_names[] = {"constant", "step", "cosine", NULL};

int dt_schedule_read(dt_config_t *cfg, double base_lr, long steps_per_epoch, long total_steps,
                     dt_schedule_t *out, dt_error_t *err) {
  int kind, rc;
  dt_schedule_t s = {.base_lr = base_lr,
                     .steps_per_epoch = steps_per_epoch > 0 ? steps_per_epoch : 1,
                     .total_steps = total_steps};
  if ((rc = dt_config_get_choice(cfg, "schedule", "type", "constant", dt_schedule_names, &kind,
                                 err)) ||
      (rc = dt_config_get_int(cfg, "schedule", "warmup_steps", 0, 0, 1L << 40, &s.warmup_steps,
                              err)))
    return rc;
  s.kind = (dt_schedule_kind)kind;
  /* Keys of other kinds are left unread so the unused-key check reports them. */
  if (s.kind == DT_SCHED_STEP &&
      ((rc = dt_config_get_double(cfg, "schedule", "gamma", 0.1, 0.0, 1.0, &s.gamma, err)) ||
       (rc = dt_config_get_int(cfg, "schedule", "step_epochs", 10, 1, 1L << 30, &s.step_epochs,
                               err))))
    return rc;
  if (s.kind == DT_SCHED_COSINE &&
      (rc = dt_config_get_double(cfg, "schedule", "min_lr", 0.0, 0.0, 1e6, &s.min_lr, err)))
    return rc;
  *out = s;
  return 0;
}

double dt_schedule_lr(const dt_schedule_t *s, long step) {
  if (step < s->warmup_steps) return s->base_lr * (double)(step + 1) / (double)s->warmup_steps;
  switch (s->kind) {
    case DT_SCHED_CONSTANT: return s->base_lr;
    case DT_SCHED_STEP: {
      long epoch = step / s->steps_per_epoch;
      return s->base_lr * pow(s->gamma, (double)(epoch / s->step_epochs));
    }
    case DT_SCHED_COSINE: {
      long span = s->total_steps - s->warmup_steps;
      double progress = span > 0 ? (double)(step - s->warmup_steps) / (double)span : 1.0;
      if (progress > 1.0) progress = 1.0;
      return s->min_lr + (s->base_lr - s->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
    }
  }
  return s->base_lr;
}
