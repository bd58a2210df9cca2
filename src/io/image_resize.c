/* Bilinear resizing with half-pixel centers (image.h), the arithmetic of TensorFlow's
 * resize_bilinear with half_pixel_centers: for each output row and column, the source
 * coordinate (i + 0.5) * scale - 0.5, its floor clamped to 0 and its ceiling to the last
 * pixel, and the fraction between them; then two horizontal lerps and one vertical. */
#include "dtrain/image.h"

#include <math.h>

typedef struct {
  int lower, upper;
  float lerp;
} weight_t;

/* Up to this many output pixels per side the weights live on the stack; larger sizes
 * (rare) compute them on the fly. */
enum { STACK_WEIGHTS = 1024 };

static weight_t weight_at(int out, int in_size, int out_size) {
  float scale = (float)in_size / (float)out_size;
  float in = ((float)out + 0.5f) * scale - 0.5f;
  float in_floor = floorf(in);
  weight_t w;
  w.lower = in_floor > 0.0f ? (int)in_floor : 0;
  int ceil_i = (int)ceilf(in);
  w.upper = ceil_i < in_size - 1 ? ceil_i : in_size - 1;
  if (w.upper < 0) w.upper = 0;
  w.lerp = in - in_floor;
  return w;
}

void dt_image_resize_bilinear(const uint8_t *src, int sh, int sw, int c, float *dst, int dh,
                              int dw) {
  if (sh == dh && sw == dw) {
    size_t n = (size_t)sh * (size_t)sw * (size_t)c;
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
    return;
  }
  weight_t xs_stack[STACK_WEIGHTS];
  weight_t *xs = dw <= STACK_WEIGHTS ? xs_stack : NULL;
  if (xs)
    for (int x = 0; x < dw; x++) xs[x] = weight_at(x, sw, dw);
  size_t src_row = (size_t)sw * (size_t)c;
  for (int y = 0; y < dh; y++) {
    weight_t wy = weight_at(y, sh, dh);
    const uint8_t *top = src + (size_t)wy.lower * src_row;
    const uint8_t *bottom = src + (size_t)wy.upper * src_row;
    float *out = dst + (size_t)y * (size_t)dw * (size_t)c;
    for (int x = 0; x < dw; x++) {
      weight_t wx = xs ? xs[x] : weight_at(x, sw, dw);
      const uint8_t *tl = top + (size_t)wx.lower * c, *tr = top + (size_t)wx.upper * c;
      const uint8_t *bl = bottom + (size_t)wx.lower * c, *br = bottom + (size_t)wx.upper * c;
      for (int k = 0; k < c; k++) {
        float t = (float)tl[k] + ((float)tr[k] - (float)tl[k]) * wx.lerp;
        float b = (float)bl[k] + ((float)br[k] - (float)bl[k]) * wx.lerp;
        out[(size_t)x * c + k] = t + (b - t) * wy.lerp;
      }
    }
  }
}
