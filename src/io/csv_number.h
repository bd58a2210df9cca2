/* The numbers of CSV cells without strtod, where that can be done exactly (csv.c): most
 * numbers people and programs write are short decimals, and Python's and NumPy's
 * shortest representations of doubles have at most 17 digits; strtod is several times
 * slower than these paths. Private to src/io; static inline so that the row loop keeps
 * them inline, and so that tests/unit/test_csv_numbers.c can check them against strtod
 * bit for bit. */
#ifndef DTRAIN_IO_CSV_NUMBER_H
#define DTRAIN_IO_CSV_NUMBER_H

#include <float.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const double csvnum_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The 17-digit numbers that Python and NumPy write for doubles are beyond the fast path;
 * on x86 the 64-bit significand of long double takes them: m (below 2^64) and 10^|exp|
 * (up to 10^27 = 2^27 * 5^27, with 5^27 below 2^64) are exact, so the one operation
 * rounds once, and rounding that to double is strtod's answer unless the exact value may
 * sit on a double's rounding midpoint: the 11 bits below the double's 53 say how close
 * it is, and within one unit of the midpoint strtod decides. */
#if (defined(__x86_64__) || defined(__i386__)) && LDBL_MANT_DIG == 64
static const long double csvnum_pow10_ld[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};

static inline bool csvnum_extended(uint64_t m, int exp, double *out) {
  if (exp < -27 || exp > 27) return false;
  long double r = exp >= 0 ? (long double)m * csvnum_pow10_ld[exp] : (long double)m / csvnum_pow10_ld[-exp];
  uint64_t significand;
  memcpy(&significand, &r, sizeof significand); /* x87: the low 8 bytes */
  unsigned low = (unsigned)(significand & 0x7FF);
  if (low >= 0x3FF && low <= 0x401) return false;
  *out = (double)r;
  return true;
}
#else
static inline bool csvnum_extended(uint64_t m, int exp, double *out) {
  (void)m, (void)exp, (void)out;
  return false;
}
#endif

static inline bool csvnum_is_digit(char ch) { return (unsigned)(ch - '0') < 10u; }

/* Clinger's fast path: a decimal of at most 19 significant digits whose integer value is
 * at most 2^53 and whose power of ten is within 10^+-22 is exactly rounded by one
 * multiplication or division of two exact doubles, so the result is strtod's; longer
 * digits try csvnum_extended. Returns false (and the caller asks strtod) for anything
 * else. */
static inline bool dt_csv_fast_number(const char *s, const char **endp, double *out) {
  const char *p = s;
  bool neg = false, any = false;
  if (*p == '-' || *p == '+') neg = *p++ == '-';
  uint64_t m = 0;
  int digits = 0, exp = 0;
  while (*p == '0') p++, any = true;
  for (; csvnum_is_digit(*p); p++) {
    if (digits == 19) return false;
    m = m * 10 + (uint64_t)(*p - '0');
    digits++;
    any = true;
  }
  if (*p == '.') {
    p++;
    if (digits == 0)
      while (*p == '0') p++, exp--, any = true;
    for (; csvnum_is_digit(*p); p++) {
      if (digits == 19) return false;
      m = m * 10 + (uint64_t)(*p - '0');
      digits++;
      exp--;
      any = true;
    }
  }
  if (!any) return false;
  if (*p == 'e' || *p == 'E') {
    const char *q = p + 1;
    bool eneg = false;
    if (*q == '-' || *q == '+') eneg = *q++ == '-';
    if (!csvnum_is_digit(*q)) return false;
    int e = 0;
    for (; csvnum_is_digit(*q); q++) {
      if (e > 100000) return false;
      e = e * 10 + (*q - '0');
    }
    exp += eneg ? -e : e;
    p = q;
  }
  double v = (double)m;
  if (m != 0) {
    if (m <= ((uint64_t)1 << 53) && exp >= 0 && exp <= 22) v *= csvnum_pow10[exp];
    else if (m <= ((uint64_t)1 << 53) && exp < 0 && exp >= -22) v /= csvnum_pow10[-exp];
    else if (!csvnum_extended(m, exp, &v)) return false;
  }
  *out = neg ? -v : v;
  *endp = p;
  return true;
}

#endif
