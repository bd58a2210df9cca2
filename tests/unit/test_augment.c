/* Image augmentation (src/io/augment.c): deterministic per (seed, epoch, sample) and
 * different across samples and epochs; flips are exact mirrors; translations and crops
 * move content by whole pixels within their range and fill with 0; brightness and
 * contrast shift/scale by one amount within their range and stay in [0, value_range];
 * everything off is the identity; the [augment] section reads and rejects values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/augment.h"
#include "dtrain/config.h"
#include "test_util.h"

enum { H = 7, W = 10, C = 3, N = H * W * C };

/* Every value in [1, 255], so that a 0 can only come from the fill. */
static void pattern(float *x) {
  for (int i = 0; i < N; i++) x[i] = (float)(1 + (i * 53 + i / 7) % 255);
}

static void run(const dt_augment_t *a, float *x, uint64_t epoch, uint64_t sample) {
  float scratch[N];
  pattern(x);
  dt_augment_apply(a, x, H, W, C, 255.0f, 42, epoch, sample, scratch);
}

static float at(const float *x, int y, int xx, int k) { return x[(y * W + xx) * C + k]; }

static void test_identity(void) {
  dt_augment_t off = {0};
  CHECK(!dt_augment_enabled(&off));
  float x[N], ref[N];
  pattern(ref);
  for (uint64_t s = 0; s < 8; s++) {
    run(&off, x, 3, s);
    CHECK(memcmp(x, ref, sizeof x) == 0);
  }
}

static void test_deterministic(void) {
  dt_augment_t a = {.flip_horizontal = true, .flip_vertical = true, .translate = 0.2,
                    .crop_padding = 2, .brightness = 0.2, .contrast = 0.3};
  CHECK(dt_augment_enabled(&a));
  float x[N], y[N];
  run(&a, x, 1, 5);
  run(&a, y, 1, 5);
  CHECK(memcmp(x, y, sizeof x) == 0);
  /* Brightness draws a continuous delta: any other sample or epoch differs. */
  int same_sample = 0, same_epoch = 0;
  for (uint64_t s = 0; s < 10; s++) {
    if (s == 5) continue;
    run(&a, y, 1, s);
    same_sample += memcmp(x, y, sizeof x) == 0;
    run(&a, y, s + 2, 5);
    same_epoch += memcmp(x, y, sizeof x) == 0;
  }
  CHECK_INT_EQ(same_sample, 0);
  CHECK_INT_EQ(same_epoch, 0);
  /* Another seed, another result. */
  float scratch[N];
  pattern(y);
  dt_augment_apply(&a, y, H, W, C, 255.0f, 43, 1, 5, scratch);
  CHECK(memcmp(x, y, sizeof x) != 0);
}

/* Each output is the input or its mirror; both happen. */
static void test_flips(void) {
  float ref[N], x[N];
  pattern(ref);
  for (int mode = 0; mode < 3; mode++) {
    dt_augment_t a = {.flip_horizontal = mode != 1, .flip_vertical = mode != 0};
    int seen[4] = {0}, other = 0;
    for (uint64_t s = 0; s < 64; s++) {
      run(&a, x, 0, s);
      int match = -1;
      for (int f = 0; f < 4 && match < 0; f++) {
        bool fh = f & 1, fv = f & 2, ok = true;
        for (int y = 0; y < H && ok; y++)
          for (int xx = 0; xx < W && ok; xx++)
            for (int k = 0; k < C; k++)
              ok = ok && at(x, y, xx, k) == at(ref, fv ? H - 1 - y : y, fh ? W - 1 - xx : xx, k);
        if (ok) match = f;
      }
      if (match < 0) other++;
      else seen[match]++;
    }
    CHECK_INT_EQ(other, 0);
    CHECK(seen[0] > 0);
    if (mode == 0) CHECK(seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    if (mode == 1) CHECK(seen[2] > 0 && seen[1] == 0 && seen[3] == 0);
    if (mode == 2) CHECK(seen[1] > 0 && seen[2] > 0 && seen[3] > 0);
  }
}

/* The (dy, dx) with out(y, x) = in(y - dy, x - dx) and 0 outside, searched in [-m, m];
 * returns 0 when none fits. */
static int find_shift(const float *x, const float *ref, int m, int *dy, int *dx) {
  for (*dy = -m; *dy <= m; (*dy)++)
    for (*dx = -m; *dx <= m; (*dx)++) {
      bool ok = true;
      for (int y = 0; y < H && ok; y++)
        for (int xx = 0; xx < W && ok; xx++)
          for (int k = 0; k < C; k++) {
            int sy = y - *dy, sx = xx - *dx;
            float want = sy >= 0 && sy < H && sx >= 0 && sx < W ? at(ref, sy, sx, k) : 0.0f;
            ok = ok && at(x, y, xx, k) == want;
          }
      if (ok) return 1;
    }
  return 0;
}

static void test_shifts(void) {
  float ref[N], x[N];
  pattern(ref);
  /* translate 0.3: rows by up to round(2.1) = 2, columns by up to round(3) = 3. */
  dt_augment_t t = {.translate = 0.3};
  dt_augment_t p = {.crop_padding = 2};
  for (int which = 0; which < 2; which++) {
    const dt_augment_t *a = which ? &p : &t;
    int max_y = which ? 2 : 2, max_x = which ? 2 : 3;
    int unexplained = 0, out_of_range = 0, distinct = 0;
    bool seen[9][9] = {{false}};
    for (uint64_t s = 0; s < 200; s++) {
      run(a, x, 0, s);
      int dy, dx;
      if (!find_shift(x, ref, 4, &dy, &dx)) {
        unexplained++;
        continue;
      }
      if (abs(dy) > max_y || abs(dx) > max_x) out_of_range++;
      if (!seen[dy + 4][dx + 4]) distinct++;
      seen[dy + 4][dx + 4] = true;
    }
    CHECK_INT_EQ(unexplained, 0);
    CHECK_INT_EQ(out_of_range, 0);
    /* 5 x 7 (translate) or 5 x 5 (crop) possible shifts, 200 draws: nearly all seen. */
    CHECK(distinct >= (which ? 20 : 28));
    CHECK(seen[max_y + 4][max_x + 4] && seen[4 - max_y][4 - max_x]);
  }
}

static void test_brightness_contrast(void) {
  float ref[N], x[N];
  pattern(ref);
  dt_augment_t b = {.brightness = 0.25};
  float lo_delta = 0, hi_delta = 0;
  for (uint64_t s = 0; s < 100; s++) {
    run(&b, x, 0, s);
    /* One delta for every value not clipped; clipped values sit at 0 or 255. */
    float delta = 0;
    bool have = false, one_delta = true, in_range = true;
    for (int i = 0; i < N; i++) {
      in_range = in_range && x[i] >= 0.0f && x[i] <= 255.0f;
      if (x[i] == 0.0f || x[i] == 255.0f) continue;
      float d = x[i] - ref[i];
      if (!have) delta = d, have = true;
      one_delta = one_delta && fabsf(d - delta) < 1e-3f;
    }
    CHECK(in_range && one_delta);
    CHECK(fabsf(delta) <= 0.25f * 255.0f + 1e-3f);
    if (delta < lo_delta) lo_delta = delta;
    if (delta > hi_delta) hi_delta = delta;
  }
  CHECK(lo_delta < -0.2f * 255.0f && hi_delta > 0.2f * 255.0f);

  dt_augment_t c = {.contrast = 0.5};
  float lo_f = 2, hi_f = 0;
  for (uint64_t s = 0; s < 100; s++) {
    run(&c, x, 0, s);
    int bad_range = 0, bad_factor = 0;
    float factor = 0;
    for (int k = 0; k < C; k++) {
      double sum = 0;
      for (int i = k; i < N; i += C) sum += ref[i];
      float mean = (float)(sum / (N / C));
      for (int i = k; i < N; i += C) {
        bad_range += x[i] < 0.0f || x[i] > 255.0f;
        if (x[i] == 0.0f || x[i] == 255.0f || fabsf(ref[i] - mean) < 20.0f) continue;
        float f = (x[i] - mean) / (ref[i] - mean);
        if (factor == 0) factor = f;
        bad_factor += fabsf(f - factor) > 1e-3f;
      }
    }
    CHECK_INT_EQ(bad_range, 0);
    CHECK_INT_EQ(bad_factor, 0);
    CHECK(factor >= 0.5f - 1e-4f && factor <= 1.5f + 1e-4f);
    if (factor < lo_f) lo_f = factor;
    if (factor > hi_f) hi_f = factor;
  }
  CHECK(lo_f < 0.6f && hi_f > 1.4f);

  /* Values in [0, 1] stay in [0, 1] with value_range 1. */
  dt_augment_t both = {.brightness = 1.0, .contrast = 1.0};
  float y[N], scratch[N];
  int outside = 0;
  for (uint64_t s = 0; s < 50; s++) {
    for (int i = 0; i < N; i++) y[i] = ref[i] / 255.0f;
    dt_augment_apply(&both, y, H, W, C, 1.0f, 7, 0, s, scratch);
    for (int i = 0; i < N; i++) outside += y[i] < 0.0f || y[i] > 1.0f;
  }
  CHECK_INT_EQ(outside, 0);
}

/* Turning a transform on leaves the others' draws as they were: with vertical flips
 * added, each sample's horizontal flip is the one it had without them. */
static void test_draws_independent(void) {
  dt_augment_t h = {.flip_horizontal = true};
  dt_augment_t hv = {.flip_horizontal = true, .flip_vertical = true};
  float x[N], y[N];
  int differ = 0, vertical = 0;
  for (uint64_t s = 0; s < 32; s++) {
    run(&h, x, 2, s);
    run(&hv, y, 2, s);
    if (memcmp(x, y, sizeof x) == 0) continue;
    vertical++;
    for (int yy = 0; yy < H; yy++)
      for (int xx = 0; xx < W; xx++)
        for (int k = 0; k < C; k++) differ += at(y, yy, xx, k) != at(x, H - 1 - yy, xx, k);
  }
  CHECK_INT_EQ(differ, 0);
  CHECK(vertical > 0 && vertical < 32);
}

static void test_config(void) {
  dt_error_t err;
  dt_config_t *cfg = dt_config_new();
  dt_augment_t a;
  CHECK_INT_EQ(dt_augment_read(cfg, &a, &err), 0);
  CHECK(!dt_augment_enabled(&a));
  dt_config_free(cfg);

  cfg = dt_config_new();
  CHECK_INT_EQ(dt_config_load_string(cfg, "[augment]\nflip = horizontal_and_vertical\n"
                                     "translate = 0.1\ncrop_padding = 4\nbrightness = 0.2\n"
                                     "contrast = 0.3\n", "aug.ini", &err), 0);
  CHECK_INT_EQ(dt_augment_read(cfg, &a, &err), 0);
  CHECK(a.flip_horizontal && a.flip_vertical);
  CHECK_NEAR(a.translate, 0.1, 0);
  CHECK_INT_EQ(a.crop_padding, 4);
  CHECK_NEAR(a.brightness, 0.2, 0);
  CHECK_NEAR(a.contrast, 0.3, 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);
  dt_config_free(cfg);

  const char *bad[][2] = {{"[augment]\nflip = sideways\n", "aug.ini:2"},
                          {"[augment]\ntranslate = 1.5\n", "aug.ini:2"},
                          {"[augment]\n\ncrop_padding = -1\n", "aug.ini:3"},
                          {"[augment]\nbrightness = x\n", "aug.ini:2"},
                          {"[augment]\ncontrast = 2\n", "aug.ini:2"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    cfg = dt_config_new();
    CHECK_INT_EQ(dt_config_load_string(cfg, bad[i][0], "aug.ini", &err), 0);
    CHECK_INT_EQ(dt_augment_read(cfg, &a, &err), DT_ERR_CONFIG);
    CHECK_STR_CONTAINS(err.msg, bad[i][1]);
    dt_config_free(cfg);
  }
  cfg = dt_config_new();
  CHECK_INT_EQ(dt_config_load_string(cfg, "[augment]\nflip = vertical\n", "aug.ini", &err), 0);
  CHECK_INT_EQ(dt_augment_read(cfg, &a, &err), 0);
  CHECK(!a.flip_horizontal && a.flip_vertical);
  dt_config_free(cfg);
}

int main(void) {
  test_identity();
  test_deterministic();
  test_flips();
  test_shifts();
  test_brightness_contrast();
  test_draws_independent();
  test_config();
  return test_summary("test_augment");
}
