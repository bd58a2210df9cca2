/* PLACEHOLDER for image augmentation (dtrain/augment.h), so that the loader branch
 * builds and links: nothing is ever enabled and nothing is changed. The images branch
 * (issue 15) owns the real implementation, which replaces this file at the merge. */
#include "dtrain/augment.h"

#include <string.h>

int dt_augment_read(dt_config_t *cfg, dt_augment_t *a, dt_error_t *err) {
  (void)cfg;
  (void)err;
  memset(a, 0, sizeof *a);
  return DT_OK;
}

bool dt_augment_enabled(const dt_augment_t *a) {
  (void)a;
  return false;
}

void dt_augment_apply(const dt_augment_t *a, float *x, int h, int w, int c, float value_range,
                      uint64_t seed, uint64_t epoch, uint64_t sample, float *scratch) {
  (void)a;
  (void)x;
  (void)h;
  (void)w;
  (void)c;
  (void)value_range;
  (void)seed;
  (void)epoch;
  (void)sample;
  (void)scratch;
}
