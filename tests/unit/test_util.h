/* Minimal assertion helpers for the ctest executables.
 * Every check prints both values on failure; main() returns test_summary(). */
#ifndef DT_TEST_UTIL_H
#define DT_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_passed_count, test_failed_count;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      test_passed_count++;                                                 \
    } else {                                                               \
      test_failed_count++;                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)

#define CHECK_INT_EQ(actual, expected)                                                   \
  do {                                                                                   \
    long long a_ = (long long)(actual), e_ = (long long)(expected);                      \
    if (a_ == e_) {                                                                      \
      test_passed_count++;                                                               \
    } else {                                                                             \
      test_failed_count++;                                                               \
      fprintf(stderr, "%s:%d: %s = %lld, expected %s = %lld\n", __FILE__, __LINE__,      \
              #actual, a_, #expected, e_);                                               \
    }                                                                                    \
  } while (0)

/* |actual - expected| <= tol */
#define CHECK_NEAR(actual, expected, tol)                                                    \
  do {                                                                                       \
    double a_ = (double)(actual), e_ = (double)(expected), t_ = (double)(tol);               \
    if (fabs(a_ - e_) <= t_) {                                                               \
      test_passed_count++;                                                                   \
    } else {                                                                                 \
      test_failed_count++;                                                                   \
      fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g (tolerance %.3g)\n", __FILE__,  \
              __LINE__, #actual, a_, #expected, e_, t_);                                     \
    }                                                                                        \
  } while (0)

/* haystack contains needle */
#define CHECK_STR_CONTAINS(haystack, needle)                                                  \
  do {                                                                                        \
    const char *h_ = (haystack), *n_ = (needle);                                              \
    if (h_ && strstr(h_, n_)) {                                                               \
      test_passed_count++;                                                                    \
    } else {                                                                                  \
      test_failed_count++;                                                                    \
      fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,         \
              h_ ? h_ : "(null)", n_);                                                        \
    }                                                                                         \
  } while (0)

static inline int test_summary(const char *name) {
  printf("%s: %d passed, %d failed\n", name, test_passed_count, test_failed_count);
  return test_failed_count == 0 && test_passed_count > 0 ? 0 : 1;
}

#endif
