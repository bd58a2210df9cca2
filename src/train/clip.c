/* Clipping by global norm (see clip.h). */
#include "dtrain/clip.h"

#include <math.h>

#include "dtrain/hot.h"

/* Sixteen running sums, one per position modulo 16, added up in a fixed order at the
 * end: the compiler turns the lanes into vector registers (a sum in one variable would
 * be one serial chain of double additions, as -std=c11 forbids reassociating it), and
 * the result is the same bits for the AVX2 and the baseline clone. */
enum { CLIP_LANES = 16 };

DT_HOT_LOOP static double sum_squares(const float *restrict g, size_t n) {
  double acc[CLIP_LANES] = {0};
  size_t i = 0;
  for (; i + CLIP_LANES <= n; i += CLIP_LANES)
    for (int k = 0; k < CLIP_LANES; k++) acc[k] += (double)g[i + k] * (double)g[i + k];
  double tail = 0.0;
  for (; i < n; i++) tail += (double)g[i] * (double)g[i];
  for (int w = CLIP_LANES / 2; w > 0; w /= 2)
    for (int k = 0; k < w; k++) acc[k] += acc[k + w];
  return acc[0] + tail;
}

DT_HOT_LOOP static void scale_in_place(float *restrict g, size_t n, float f) {
  for (size_t i = 0; i < n; i++) g[i] *= f;
}

double dt_clip_by_global_norm(float *grads, size_t n, float max_norm) {
  const double norm = sqrt(sum_squares(grads, n));
  if (max_norm > 0.0f && norm > (double)max_norm && isfinite(norm))
    scale_in_place(grads, n, (float)((double)max_norm / norm));
  return norm;
}
