/* Helpers shared by the event writer and reader (private to libdtrain): TensorFlow-style
 * histogram bucketing, the PNG encoder, and TFRecord framing sizes. */
#ifndef DTRAIN_EVENTS_INTERNAL_H
#define DTRAIN_EVENTS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"

/* A TFRecord is: uint64 length (little-endian), masked CRC-32C of those 8 bytes, the
 * data, masked CRC-32C of the data. */
enum { DT_TFRECORD_HEADER = 12, DT_TFRECORD_FOOTER = 4 };

/* Bucketing state for one writer; the arrays are allocated once, so computing a
 * histogram allocates nothing. */
typedef struct {
  double *limits;     /* (nlimits) TensorFlow's default bucket edges, ascending */
  double *counts;     /* (nlimits) counts per edge, scratch */
  size_t nlimits;
  double *out_limits; /* (nout) the encoded buckets: empty runs merged */
  double *out_counts; /* (nout) */
  size_t nout;
  double min, max, num, sum, sum_squares;
} dt_histogram_t;

int dt_histogram_init(dt_histogram_t *h, dt_error_t *err);
/* Buckets the finite values among values[0..n); fills out_*, nout and the statistics. */
void dt_histogram_compute(dt_histogram_t *h, const float *values, size_t n);
void dt_histogram_free(dt_histogram_t *h);

/* Encodes (height, width, channels) 8-bit pixels as a PNG file in a new malloc'd
 * buffer (*png, *png_len), which the caller frees. */
int dt_png_encode(const uint8_t *pixels, int height, int width, int channels, uint8_t **png,
                  size_t *png_len, dt_error_t *err);

#endif
