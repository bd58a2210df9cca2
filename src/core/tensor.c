/* Tensor descriptors: shapes and the names of the initializers (see tensor.h). */
#include "dtrain/tensor.h"

#include <stdio.h>

const char *const dt_init_names[] = {"zeros",         "ones",           "he_normal", "he_uniform",
                                     "glorot_normal", "glorot_uniform", NULL};

dt_shape_t dt_shape_1d(int a) { return (dt_shape_t){1, {a, 1, 1, 1}}; }
dt_shape_t dt_shape_3d(int a, int b, int c) { return (dt_shape_t){3, {a, b, c, 1}}; }

size_t dt_shape_size(const dt_shape_t *s) {
  size_t n = 1;
  for (int i = 0; i < s->ndim; i++) n *= (size_t)s->dims[i];
  return n;
}

const char *dt_shape_str(const dt_shape_t *s, char *buf, size_t cap) {
  size_t used = (size_t)snprintf(buf, cap, "(");
  for (int i = 0; i < s->ndim && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, i ? ", %d" : "%d", s->dims[i]);
  if (used < cap) snprintf(buf + used, cap - used, ")");
  return buf;
}
