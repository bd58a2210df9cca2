/* Image augmentation like Keras' preprocessing layers (random flip, translation or crop
 * with padding, brightness, contrast), drawn from (seed, epoch, sample) so that runs are
 * reproducible and resumes bit-exact.
 *
 * PLACEHOLDER: this interface is owned by the images branch (issue 15); the loader
 * branch carries a copy so that it builds, and the images branch's version replaces it
 * when the branches are merged. */
#ifndef DTRAIN_AUGMENT_H
#define DTRAIN_AUGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/error.h"

typedef struct {
  bool flip_horizontal, flip_vertical;
  double translate;
  int crop_padding;
  double brightness, contrast;
} dt_augment_t;

int dt_augment_read(dt_config_t *cfg, dt_augment_t *a, dt_error_t *err);
bool dt_augment_enabled(const dt_augment_t *a);
/* Augments one image x (h, w, c) in place; value_range is 1 after 1/255 scaling, 255
 * unscaled; scratch holds h * w * c floats of the calling thread's own. */
void dt_augment_apply(const dt_augment_t *a, float *x, int h, int w, int c, float value_range,
                      uint64_t seed, uint64_t epoch, uint64_t sample, float *scratch);

#endif
