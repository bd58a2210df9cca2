/* Image augmentation like Keras' preprocessing layers RandomFlip, RandomTranslation,
 * RandomCrop after zero padding, RandomBrightness and RandomContrast, applied to one
 * (h, w, c) sample in place, in that order.
 *
 * Every draw comes from a generator seeded by (seed, epoch, sample) alone, so a sample's
 * augmentation does not depend on threads, batch order or world size, and a resumed run
 * repeats it exactly. Every draw is made whether or not its transform is on, so turning
 * one transform on or off does not change what the others draw.
 *
 * Unlike Keras' default fill_mode "reflect", pixels shifted in by a translation or crop
 * are 0 (Keras' fill_mode="constant"), and shifts are whole pixels (no interpolation). */
#ifndef DTRAIN_AUGMENT_H
#define DTRAIN_AUGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/error.h"

typedef struct {
  bool flip_horizontal, flip_vertical; /* each with probability 1/2 (left-right, top-bottom) */
  double translate;  /* shift rows by a whole number in [-round(t h), round(t h)], columns
                      * likewise with w, uniformly; t in [0, 1] */
  int crop_padding;  /* pad by p zero pixels on every side and crop the original size at a
                      * uniform offset: a shift by [-p, p] in each direction */
  double brightness; /* add a delta uniform in [-b, b] * value_range to every value */
  double contrast;   /* scale each channel around its mean by a factor in [1 - c, 1 + c] */
} dt_augment_t;

/* Reads [augment]: flip = none | horizontal | vertical | horizontal_and_vertical,
 * translate (0..1, a fraction of height and width), crop_padding (pixels), brightness
 * (0..1, a fraction of the value range), contrast (0..1). Everything is off by default. */
int dt_augment_read(dt_config_t *cfg, dt_augment_t *a, dt_error_t *err);

/* Whether any transform is on (else dt_augment_apply is the identity). */
bool dt_augment_enabled(const dt_augment_t *a);

/* Augments x, (h, w, c) floats in [0, value_range], in place. Brightness and contrast
 * clip their results to [0, value_range]; flips and shifts move values unchanged. scratch
 * holds h * w * c floats. */
void dt_augment_apply(const dt_augment_t *a, float *x, int h, int w, int c, float value_range,
                      uint64_t seed, uint64_t epoch, uint64_t sample, float *scratch);

#endif
