/* The CSV reader's numbers (src/io/csv.c, src/io/csv_number.h) against strtod: hundreds
 * of thousands of decimals of every form (short and long, with and without exponents,
 * beyond 19 digits, and integers next to float32 and double rounding midpoints, where a
 * parser that is off by one unit shows) must give exactly strtod's double and end where
 * strtod ends when the fast paths take them (the private header is included for that),
 * and must load through dt_csv_load to exactly (float)strtod(text), which is NumPy's
 * float32(float(text)). */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/io/csv_number.h"
#include "dtrain/csv.h"
#include "test_util.h"

enum { COUNT = 300000, TEXT_MAX = 48 };

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next(void) { /* xorshift64* */
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1Du;
}
static int below(int n) { return (int)(next() % (uint64_t)n); }

/* A random decimal: digits, a point somewhere, maybe an exponent, maybe a sign. */
static void random_decimal(char *s) {
  int kind = below(4), nd;
  if (kind == 0) nd = 1 + below(9);
  else if (kind == 1) nd = 15 + below(5); /* 15..19: the long double path */
  else if (kind == 2) nd = 1 + below(19);
  else nd = 20 + below(6); /* beyond every fast path */
  char digits[32];
  for (int i = 0; i < nd; i++) digits[i] = (char)('0' + below(10));
  if (below(4)) digits[0] = (char)('1' + below(9));
  int n = 0;
  if (below(3) == 0) s[n++] = below(2) ? '-' : '+';
  int point = below(nd + 2) - 1; /* -1: no point */
  for (int i = 0; i < nd; i++) {
    if (i == point) s[n++] = '.';
    s[n++] = digits[i];
  }
  if (point == nd) s[n++] = '.';
  if (below(2)) n += snprintf(s + n, (size_t)(TEXT_MAX - n), "%c%d", below(2) ? 'e' : 'E',
                              below(70) - 40);
  s[n] = '\0';
}

/* An integer close to a float32 or double rounding midpoint at scale 2^k. */
static void near_midpoint(char *s) {
  int k = 30 + below(34); /* 2^30 .. 2^63 */
  uint64_t base = (uint64_t)1 << k;
  int fbits = k - 24, dbits = k - 53; /* spacing exponents of float32 and double */
  uint64_t fspace = (uint64_t)1 << fbits;
  uint64_t m = base + fspace * (2 * (next() % ((uint64_t)1 << 20)) + 1) / 2; /* a float32 midpoint */
  static const int offsets[] = {-129, -128, -127, -1, 0, 1, 127, 128, 129};
  int64_t off = offsets[below(9)];
  if (dbits > 0 && below(2)) off = (int64_t)(((uint64_t)1 << dbits) / 2) + below(3) - 1;
  uint64_t v = m + (uint64_t)off;
  /* Sometimes as a fraction: the same digits divided by a power of ten. */
  if (below(2)) snprintf(s, TEXT_MAX, "%llue-%d", (unsigned long long)v, below(28));
  else snprintf(s, TEXT_MAX, "%llu", (unsigned long long)v);
}

int main(void) {
  char path[] = "/tmp/test_csv_numbers_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return test_summary("test_csv_numbers");
  FILE *f = fdopen(fd, "w");
  char(*texts)[TEXT_MAX] = malloc((size_t)COUNT * TEXT_MAX);
  float *want = malloc(COUNT * sizeof *want);
  if (!f || !texts || !want) return 1;
  fprintf(f, "v,w\n");
  size_t n = 0, fast = 0, wrong_fast = 0;
  while (n < COUNT) {
    char *s = texts[n];
    if (below(4) == 0) near_midpoint(s);
    else random_decimal(s);
    char *end;
    double d = strtod(s, &end), mine;
    const char *mine_end;
    if (dt_csv_fast_number(s, &mine_end, &mine)) {
      fast++;
      if (memcmp(&mine, &d, sizeof d) != 0 || mine_end != end) {
        if (wrong_fast++ < 10)
          fprintf(stderr, "'%s': fast path %.17g (ends at %td), strtod %.17g (ends at %td)\n", s,
                  mine, mine_end - s, d, end - s);
      }
    }
    float v = (float)d;
    if (!isfinite(v)) continue; /* the reader refuses these; test_data_csv_text checks it */
    want[n++] = v;
    fprintf(f, "%s,%d\n", s, (int)(n % 7));
  }
  CHECK_INT_EQ(fclose(f), 0);
  CHECK_INT_EQ(wrong_fast, 0);
  /* Most of them must have taken a fast path, or this checks little. */
  printf("%zu of %d numbers took a fast path\n", fast, COUNT);
  CHECK(fast > COUNT / 2);

  dt_dataset_t ds;
  dt_error_t err = {0};
  dt_csv_opts_t o = {.targets = "w"};
  int rc = dt_csv_load(path, &o, &ds, &err);
  unlink(path);
  CHECK_INT_EQ(rc, 0);
  if (rc) {
    fprintf(stderr, "%s\n", err.msg);
    return test_summary("test_csv_numbers");
  }
  CHECK_INT_EQ(ds.n, COUNT);
  CHECK_INT_EQ(ds.dim, 1);
  CHECK_INT_EQ(ds.first_line, 2);
  CHECK_INT_EQ(ds.ykind, DT_Y_VALUES);
  CHECK_STR_CONTAINS(ds.meta_json, "\"features\": [\"v\"], \"targets\": [\"w\"]");
  const float *x = ds.x.base, *y = ds.y.base;
  size_t wrong = 0;
  for (size_t i = 0; i < ds.n && i < COUNT; i++) {
    if (memcmp(&x[i], &want[i], sizeof(float)) != 0) {
      if (wrong++ < 10)
        fprintf(stderr, "'%s': read %.9g, strtod says %.9g\n", texts[i], x[i], want[i]);
    }
    if (y[i] != (float)((i + 1) % 7)) wrong++;
  }
  CHECK_INT_EQ(wrong, 0);
  dt_dataset_free(&ds);
  free(texts);
  free(want);
  return test_summary("test_csv_numbers");
}
