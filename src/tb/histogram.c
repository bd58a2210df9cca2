/* Histograms for TensorBoard, bucketed as TensorFlow's tf.summary.histogram (v1) does.
 *
 * Why exponential buckets rather than, say, 30 even ones between min and max: the
 * relative resolution (10%) is the same for weights of 1e-4 and activations of 1e3,
 * one outlier does not squash every other value into one bucket, and TensorBoard's
 * histogram and distribution tabs show our runs exactly as they show TensorFlow's.
 * Empty buckets are merged into runs the way TensorFlow's Histogram::EncodeToProto
 * does, so the list stays short and still covers the whole line. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "events_internal.h"

int dt_histogram_init(dt_histogram_t *h, dt_error_t *err) {
  *h = (dt_histogram_t){0};
  size_t npos = 0;
  for (double v = 1e-12; v < 1e20; v *= 1.1) npos++;
  /* -DBL_MAX, the negated positives, 0, the positives, DBL_MAX. */
  size_t n = 2 * (npos + 1) + 1;
  h->limits = malloc(n * sizeof *h->limits);
  h->counts = malloc(n * sizeof *h->counts);
  h->out_limits = malloc(n * sizeof *h->out_limits);
  h->out_counts = malloc(n * sizeof *h->out_counts);
  if (!h->limits || !h->counts || !h->out_limits || !h->out_counts) {
    dt_histogram_free(h);
    return dt_error_set(err, DT_ERR_NOMEM, "histogram buckets: out of memory");
  }
  h->nlimits = n;
  size_t zero = npos + 1;
  h->limits[zero] = 0.0;
  size_t k = 0;
  for (double v = 1e-12; v < 1e20; v *= 1.1, k++) {
    h->limits[zero + 1 + k] = v;
    h->limits[zero - 1 - k] = -v;
  }
  h->limits[0] = -DBL_MAX;
  h->limits[n - 1] = DBL_MAX;
  return DT_OK;
}

void dt_histogram_free(dt_histogram_t *h) {
  free(h->limits);
  free(h->counts);
  free(h->out_limits);
  free(h->out_counts);
  *h = (dt_histogram_t){0};
}

/* The index of the first limit greater than x (std::upper_bound), as TensorFlow's
 * Histogram::Add: bucket i holds limits[i-1] <= x < limits[i]. The edges are
 * +-1e-12 * 1.1^k, so a logarithm lands on (or next to) the right one and a short
 * walk along the table makes it exact; that is several times faster than a binary
 * search, which matters for histograms of millions of weights. */
static size_t bucket_of(const dt_histogram_t *h, double x) {
  const double *limits = h->limits;
  size_t n = h->nlimits, zero = n / 2, npos = zero - 1;
  double a = fabs(x);
  double kf = a >= 1e-12 ? floor(log(a * 1e12) * 10.492058687257062) : -1.0; /* 1 / ln 1.1 */
  if (kf > (double)npos) kf = (double)npos;
  long k = (long)kf;
  size_t i = x > 0 ? (size_t)((long)zero + 2 + k) : (size_t)((long)zero - 1 - k);
  if (i > n) i = n;
  while (i > 0 && limits[i - 1] > x) i--;
  while (i < n && limits[i] <= x) i++;
  return i < n ? i : n - 1;
}

void dt_histogram_compute(dt_histogram_t *h, const float *values, size_t n) {
  for (size_t i = 0; i < h->nlimits; i++) h->counts[i] = 0.0;
  double mn = INFINITY, mx = -INFINITY, num = 0, sum = 0, sumsq = 0;
  for (size_t i = 0; i < n; i++) {
    double x = values[i];
    if (!isfinite(x)) continue;
    if (x < mn) mn = x;
    if (x > mx) mx = x;
    num += 1;
    sum += x;
    sumsq += x * x;
    h->counts[bucket_of(h, x)] += 1;
  }
  h->num = num;
  h->sum = sum;
  h->sum_squares = sumsq;
  h->min = num > 0 ? mn : 0.0;
  h->max = num > 0 ? mx : 0.0;

  size_t out = 0;
  for (size_t i = 0; i < h->nlimits;) {
    double end = h->limits[i], count = h->counts[i];
    i++;
    if (count <= 0) {
      while (i < h->nlimits && h->counts[i] <= 0) {
        end = h->limits[i];
        count = h->counts[i];
        i++;
      }
    }
    h->out_limits[out] = end;
    h->out_counts[out] = count;
    out++;
  }
  h->nout = out;
}
