/* Bilinear resizing (half-pixel centers, as TensorFlow) and channel conversion of
 * src/io/image_resize.c and image.c, on patterns whose results are known by hand. */
#include <stdint.h>
#include <stdlib.h>

#include "dtrain/image.h"
#include "test_util.h"

static void test_constant_stays_constant(void) {
  enum { SH = 5, SW = 7, C = 3 };
  uint8_t src[SH * SW * C];
  for (int i = 0; i < SH * SW * C; i++) src[i] = (uint8_t)(i % 3 == 0 ? 200 : i % 3 == 1 ? 7 : 255);
  int sizes[][2] = {{13, 4}, {2, 2}, {1, 1}, {5, 20}, {31, 31}};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    int dh = sizes[s][0], dw = sizes[s][1];
    float *dst = malloc(sizeof *dst * (size_t)dh * dw * C);
    dt_image_resize_bilinear(src, SH, SW, C, dst, dh, dw);
    int bad = 0;
    for (int i = 0; i < dh * dw * C; i++) {
      float want = i % 3 == 0 ? 200.0f : i % 3 == 1 ? 7.0f : 255.0f;
      bad += dst[i] != want;
    }
    CHECK_INT_EQ(bad, 0);
    free(dst);
  }
}

static void test_same_size_is_a_copy(void) {
  enum { H = 6, W = 9, C = 3 };
  uint8_t src[H * W * C];
  for (int i = 0; i < H * W * C; i++) src[i] = (uint8_t)(i * 37 + 11);
  float dst[H * W * C];
  dt_image_resize_bilinear(src, H, W, C, dst, H, W);
  int bad = 0;
  for (int i = 0; i < H * W * C; i++) bad += dst[i] != (float)src[i];
  CHECK_INT_EQ(bad, 0);
}

/* 2x2 -> 4x4. Source coordinates of the outputs: (i + 0.5) / 2 - 0.5 = -0.25, 0.25,
 * 0.75, 1.25, so columns (and rows) come from pixel 0, 1/4 of the way, 3/4 of the way,
 * and pixel 1 (the outer ones clamped to the edges). Row 0: 0, 25, 75, 100; row 1:
 * 200, 162.5, 87.5, 50; the middle rows mix them 1/4 and 3/4. */
static void test_upscale_by_hand(void) {
  const uint8_t src[4] = {0, 100, 200, 50};
  float dst[16];
  dt_image_resize_bilinear(src, 2, 2, 1, dst, 4, 4);
  const float want[16] = {0, 25, 75, 100,
                          50, 59.375f, 78.125f, 87.5f,
                          150, 128.125f, 84.375f, 62.5f,
                          200, 162.5f, 87.5f, 50};
  for (int i = 0; i < 16; i++) CHECK_NEAR(dst[i], want[i], 1e-4);
}

/* 4x4 -> 2x2: source coordinates 0.5 and 2.5, so each output is the mean of a 2x2 block;
 * 3 channels kept apart. */
static void test_downscale_by_hand(void) {
  uint8_t src[4 * 4 * 3];
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      for (int k = 0; k < 3; k++) src[(y * 4 + x) * 3 + k] = (uint8_t)(10 * y + x + 100 * k);
  float dst[2 * 2 * 3];
  dt_image_resize_bilinear(src, 4, 4, 3, dst, 2, 2);
  for (int y = 0; y < 2; y++)
    for (int x = 0; x < 2; x++)
      for (int k = 0; k < 3; k++) {
        float mean = (10.0f * (2 * y) + 10.0f * (2 * y + 1)) / 2 + (2 * x + 2 * x + 1) / 2.0f +
                     100.0f * k;
        CHECK_NEAR(dst[(y * 2 + x) * 3 + k], mean, 1e-4);
      }
}

/* 1x3 -> 1x2 (a non-integer scale, 1.5): columns at 0.25 and 1.75. */
static void test_fractional_scale(void) {
  const uint8_t src[3] = {0, 80, 160};
  float dst[2];
  dt_image_resize_bilinear(src, 1, 3, 1, dst, 1, 2);
  CHECK_NEAR(dst[0], 20.0, 1e-4);
  CHECK_NEAR(dst[1], 140.0, 1e-4);
}

static void test_channels(void) {
  const uint8_t rgb[5 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30};
  uint8_t gray[5];
  dt_image_convert_channels(rgb, 3, gray, 1, 5);
  /* Pillow's convert("L") of pure red, green, blue, white: 76, 150, 29, 255. */
  CHECK_INT_EQ(gray[0], 76);
  CHECK_INT_EQ(gray[1], 150);
  CHECK_INT_EQ(gray[2], 29);
  CHECK_INT_EQ(gray[3], 255);
  CHECK_INT_EQ(gray[4], (19595 * 10 + 38470 * 20 + 7471 * 30 + 32768) >> 16);
  uint8_t back[5 * 3];
  dt_image_convert_channels(gray, 1, back, 3, 5);
  for (int i = 0; i < 5; i++)
    for (int k = 0; k < 3; k++) CHECK_INT_EQ(back[3 * i + k], gray[i]);
  uint8_t copy[5 * 3];
  dt_image_convert_channels(rgb, 3, copy, 3, 5);
  CHECK(memcmp(copy, rgb, sizeof rgb) == 0);
}

int main(void) {
  test_constant_stays_constant();
  test_same_size_is_a_copy();
  test_upscale_by_hand();
  test_downscale_by_hand();
  test_fractional_scale();
  test_channels();
  return test_summary("test_image_resize");
}
