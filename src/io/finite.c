/* The NaN/infinity check of float data at load (see finite.h). It runs once over every
 * value of a dataset that may be larger than memory (a mapped .npy), so the common case,
 * no bad value, is a branch-free scan of the exponent bits in blocks; only a block that
 * holds a bad value is looked at value by value. */
#include "finite.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Values per block: small enough for the stack and the cache, large enough that the
 * per-block test costs nothing. */
enum { BLOCK = 2048 };

/* The first non-finite value of the block at p, or -1; an IEEE value is NaN or infinite
 * exactly when its exponent bits are all ones. */
static long first_bad_f32(const unsigned char *p, size_t count) {
  uint32_t v[BLOCK];
  memcpy(v, p, count * sizeof *v);
  uint32_t any = 0;
  for (size_t k = 0; k < count; k++) any |= (uint32_t)((v[k] & 0x7f800000u) == 0x7f800000u);
  if (!any) return -1;
  for (size_t k = 0; k < count; k++)
    if ((v[k] & 0x7f800000u) == 0x7f800000u) return (long)k;
  return -1;
}

/* float64 values must also fit float32, which training converts them to: a finite
 * 1e300 would otherwise become an infinity there. */
static long first_bad_f64(const unsigned char *p, size_t count) {
  double v[BLOCK];
  memcpy(v, p, count * sizeof *v);
  int any = 0;
  for (size_t k = 0; k < count; k++) any |= !(fabs(v[k]) <= FLT_MAX);
  if (!any) return -1;
  for (size_t k = 0; k < count; k++)
    if (!(fabs(v[k]) <= FLT_MAX)) return (long)k;
  return -1;
}

/* "[i, j, k]": value j of a sample written as an index into its shape. */
static void shape_index(char *buf, size_t len, size_t j, const int *shape, int ndim) {
  size_t idx[DT_DATA_MAX_DIMS + 1];
  int nd = ndim > 0 && ndim <= DT_DATA_MAX_DIMS ? ndim : 1;
  for (int d = nd - 1; d >= 0; d--) {
    size_t s = ndim > 0 && ndim <= DT_DATA_MAX_DIMS && shape[d] > 0 ? (size_t)shape[d] : j + 1;
    idx[d] = j % s;
    j /= s;
  }
  size_t used = 0;
  for (int d = 0; d < nd && used < len; d++) {
    int w = snprintf(buf + used, len - used, "%s%zu", d ? ", " : "[", idx[d]);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (used < len) snprintf(buf + used, len - used, "]");
}

int dt_io_check_finite(const char *where, dt_dtype_t type, const void *base, size_t n,
                       size_t dim, const int *shape, int ndim, dt_error_t *err) {
  if (type != DT_F32 && type != DT_F64) return DT_OK;
  size_t size = dt_dtype_size(type), total = n * dim;
  const unsigned char *p = base;
  for (size_t k = 0; k < total; k += BLOCK) {
    size_t count = total - k < BLOCK ? total - k : BLOCK;
    long bad = type == DT_F32 ? first_bad_f32(p + k * size, count)
                              : first_bad_f64(p + k * size, count);
    if (bad < 0) continue;
    size_t at = k + (size_t)bad;
    double v;
    if (type == DT_F32) {
      float f;
      memcpy(&f, p + at * size, sizeof f);
      v = f;
    } else {
      memcpy(&v, p + at * size, sizeof v);
    }
    char idx[96], what[64];
    shape_index(idx, sizeof idx, at % dim, shape, ndim);
    if (isnan(v)) snprintf(what, sizeof what, "NaN");
    else if (isinf(v)) snprintf(what, sizeof what, "%s", v > 0 ? "+inf" : "-inf");
    else snprintf(what, sizeof what, "%g, beyond float32's range", v);
    return dt_error_set(err, DT_ERR_FORMAT, "%s: sample %zu, value %zu (index %s) is %s; "
                        "the data must be finite float32 values", where, at / dim, at % dim,
                        idx, what);
  }
  return DT_OK;
}
