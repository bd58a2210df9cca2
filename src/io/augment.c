/* Image augmentation (augment.h): flips, whole-pixel shifts with zero fill, brightness
 * and contrast, drawn from a generator of (seed, epoch, sample). */
#include "dtrain/augment.h"

#include <math.h>
#include <string.h>

#include "dtrain/rng.h"

static const char *const flip_names[] = {"none", "horizontal", "vertical",
                                         "horizontal_and_vertical", NULL};

int dt_augment_read(dt_config_t *cfg, dt_augment_t *a, dt_error_t *err) {
  memset(a, 0, sizeof *a);
  int flip = 0;
  long pad = 0;
  int rc;
  if ((rc = dt_config_get_choice(cfg, "augment", "flip", "none", flip_names, &flip, err)) ||
      (rc = dt_config_get_double(cfg, "augment", "translate", 0.0, 0.0, 1.0, &a->translate,
                                 err)) ||
      (rc = dt_config_get_int(cfg, "augment", "crop_padding", 0, 0, 4096, &pad, err)) ||
      (rc = dt_config_get_double(cfg, "augment", "brightness", 0.0, 0.0, 1.0, &a->brightness,
                                 err)) ||
      (rc = dt_config_get_double(cfg, "augment", "contrast", 0.0, 0.0, 1.0, &a->contrast, err)))
    return rc;
  a->flip_horizontal = flip == 1 || flip == 3;
  a->flip_vertical = flip == 2 || flip == 3;
  a->crop_padding = (int)pad;
  return DT_OK;
}

bool dt_augment_enabled(const dt_augment_t *a) {
  return a->flip_horizontal || a->flip_vertical || a->translate > 0.0 || a->crop_padding > 0 ||
         a->brightness > 0.0 || a->contrast > 0.0;
}

/* A whole number uniform in [-m, m]. */
static int draw_shift(dt_rng_t *rng, int m) {
  return (int)dt_rng_below(rng, 2 * (uint64_t)m + 1) - m;
}

/* A float uniform in [-1, 1). */
static double draw_signed(dt_rng_t *rng) { return 2.0 * (double)dt_rng_uniform(rng) - 1.0; }

static void flip_columns(float *x, int h, int w, int c) {
  for (int y = 0; y < h; y++) {
    float *row = x + (size_t)y * w * c;
    for (int i = 0, j = w - 1; i < j; i++, j--)
      for (int k = 0; k < c; k++) {
        float t = row[(size_t)i * c + k];
        row[(size_t)i * c + k] = row[(size_t)j * c + k];
        row[(size_t)j * c + k] = t;
      }
  }
}

static void flip_rows(float *x, int h, int w, int c) {
  size_t row = (size_t)w * c;
  for (int i = 0, j = h - 1; i < j; i++, j--)
    for (size_t k = 0; k < row; k++) {
      float t = x[(size_t)i * row + k];
      x[(size_t)i * row + k] = x[(size_t)j * row + k];
      x[(size_t)j * row + k] = t;
    }
}

/* out(y, x) = in(y - dy, x - dx), 0 where that falls outside: content moves down by dy
 * and right by dx. */
static void shift(float *x, int h, int w, int c, int dy, int dx, float *scratch) {
  if (dy == 0 && dx == 0) return;
  size_t row = (size_t)w * c;
  memcpy(scratch, x, (size_t)h * row * sizeof *x);
  memset(x, 0, (size_t)h * row * sizeof *x);
  int x0 = dx > 0 ? dx : 0, x1 = dx < 0 ? w + dx : w; /* destination columns [x0, x1) */
  if (x1 <= x0) return;
  for (int y = 0; y < h; y++) {
    int sy = y - dy;
    if (sy < 0 || sy >= h) continue;
    memcpy(x + (size_t)y * row + (size_t)x0 * c, scratch + (size_t)sy * row + (size_t)(x0 - dx) * c,
           (size_t)(x1 - x0) * c * sizeof *x);
  }
}

static float clip(float v, float hi) { return v < 0.0f ? 0.0f : (v > hi ? hi : v); }

void dt_augment_apply(const dt_augment_t *a, float *x, int h, int w, int c, float value_range,
                      uint64_t seed, uint64_t epoch, uint64_t sample, float *scratch) {
  dt_rng_t rng;
  dt_rng_seed(&rng, dt_rng_mix(dt_rng_mix(seed, epoch), sample));
  /* All draws first, in a fixed order, whatever is on. */
  uint64_t flips = dt_rng_u64(&rng);
  int ty = (int)lround(a->translate * h), tx = (int)lround(a->translate * w);
  int dy = draw_shift(&rng, ty), dx = draw_shift(&rng, tx);
  int cy = draw_shift(&rng, a->crop_padding), cx = draw_shift(&rng, a->crop_padding);
  double brightness = draw_signed(&rng) * a->brightness;
  double contrast = 1.0 + draw_signed(&rng) * a->contrast;

  if (a->flip_horizontal && (flips & 1)) flip_columns(x, h, w, c);
  if (a->flip_vertical && (flips & 2)) flip_rows(x, h, w, c);
  if (a->translate > 0.0) shift(x, h, w, c, dy, dx, scratch);
  if (a->crop_padding > 0) shift(x, h, w, c, cy, cx, scratch);
  size_t n = (size_t)h * w * c;
  if (a->brightness > 0.0) {
    float delta = (float)(brightness * value_range);
    for (size_t i = 0; i < n; i++) x[i] = clip(x[i] + delta, value_range);
  }
  if (a->contrast > 0.0) {
    size_t pixels = (size_t)h * w;
    for (int k = 0; k < c; k++) {
      double sum = 0.0;
      for (size_t p = 0; p < pixels; p++) sum += x[p * c + k];
      float mean = (float)(sum / (double)(pixels ? pixels : 1));
      float factor = (float)contrast;
      for (size_t p = 0; p < pixels; p++)
        x[p * c + k] = clip((x[p * c + k] - mean) * factor + mean, value_range);
    }
  }
}
