/* TensorBoard event files: a writer for scalars, histograms, text and images that
 * never does file I/O on the caller's thread, and a reader that verifies every record.
 *
 * Files are TFRecord streams of TensorBoard Event messages (proto/tensorboard_event.proto)
 * named events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n>, which the real
 * TensorBoard reads while the run is still going.
 *
 * Writing: each dt_events_* call serializes its record into an in-memory buffer
 * (bounded by dt_events_options_t.queue_bytes) and returns. A background thread
 * writes the buffer out every flush_interval_ms, when the buffer is half full, on
 * dt_events_flush and on dt_events_close. A slow disk therefore never stalls the
 * caller: when the buffer is full, records are dropped and counted. A write error
 * (ENOSPC, EIO, ...) stops all further writing to the file; later records are dropped
 * without blocking. Both problems are reported once by dt_events_poll_error, which the
 * trainer calls now and then and prints when it returns non-zero.
 *
 * The dt_events_* producer calls may come from several threads. */
#ifndef DTRAIN_EVENTS_H
#define DTRAIN_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dtrain/error.h"

typedef struct dt_events dt_events_t;

/* Zero fields take the defaults given. */
typedef struct {
  size_t queue_bytes;         /* records waiting to be written, at most; 8 MiB */
  unsigned flush_interval_ms; /* how often the writer thread writes; 2000 */
  unsigned flush_timeout_ms;  /* how long flush and close wait for the writer; 10000 */
  const char *file_path;      /* write exactly this file instead of a new name in dir
                                 (tests use it for /dev/full or a FIFO); dir is ignored */
} dt_events_options_t;

/* Creates dir (with parents), a new event file in it and the writer thread, and
 * queues the file-version record. Fails (DT_ERR_IO) when the file cannot be created. */
int dt_events_open(dt_events_t **out, const char *dir, dt_error_t *err);
int dt_events_open_opts(dt_events_t **out, const char *dir, const dt_events_options_t *opts,
                        dt_error_t *err);

/* The path of the event file being written. */
const char *dt_events_path(const dt_events_t *ev);

/* The producer calls. They return 0 also when the record had to be dropped (see
 * dt_events_poll_error); only bad arguments (DT_ERR_ARG) and failed allocations
 * (DT_ERR_NOMEM) are returned directly. tag must be a non-empty string. */

/* A scalar (stored as a 32-bit float, as TensorBoard does). */
int dt_events_scalar(dt_events_t *ev, const char *tag, int64_t step, double value,
                     dt_error_t *err);

/* A histogram of n values, bucketed like TensorFlow's tf.summary.histogram: bucket
 * edges 0, +-1e-12 * 1.1^k up to 1e20, and +-DBL_MAX; runs of empty buckets are merged
 * into one. NaN and infinite values are left out of every statistic. */
int dt_events_histogram(dt_events_t *ev, const char *tag, int64_t step, const float *values,
                        size_t n, dt_error_t *err);

/* Text shown verbatim in TensorBoard's text tab: every line is indented by four
 * spaces, which markdown renders as a preformatted block (configs, command lines). */
int dt_events_text(dt_events_t *ev, const char *tag, int64_t step, const char *text,
                   dt_error_t *err);

/* Text given to TensorBoard as markdown, unchanged. */
int dt_events_markdown(dt_events_t *ev, const char *tag, int64_t step, const char *markdown,
                       dt_error_t *err);

/* An image, stored as PNG. pixels is (height, width, channels), row-major, 8 bits per
 * sample; channels is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). */
int dt_events_image(dt_events_t *ev, const char *tag, int64_t step, int height, int width,
                    int channels, const uint8_t *pixels, dt_error_t *err);

/* Waits (at most flush_timeout_ms) until everything queued so far is written.
 * Returns DT_ERR_TIMEOUT when the writer did not finish in time, or the file's write
 * error (DT_ERR_IO) if writing has failed. */
int dt_events_flush(dt_events_t *ev, dt_error_t *err);

/* Reports, once each: the first write error (DT_ERR_IO), and the first time records
 * were dropped because the buffer was full (DT_ERR_TIMEOUT). Returns 0 when there is
 * nothing new to report. Never blocks on I/O. */
int dt_events_poll_error(dt_events_t *ev, dt_error_t *err);

/* Records dropped so far (buffer full, or written after a write error). */
uint64_t dt_events_dropped(dt_events_t *ev);

/* Flushes (waiting at most flush_timeout_ms), stops the writer thread, closes the file
 * and frees ev (NULL is fine). Returns the file's write error if there was one, else
 * DT_ERR_TIMEOUT if records were left unwritten or dropped without being reported by
 * dt_events_poll_error, else 0. */
int dt_events_close(dt_events_t *ev, dt_error_t *err);

/* Reading. */

typedef enum {
  DT_EVENT_SCALAR,
  DT_EVENT_HISTOGRAM,
  DT_EVENT_IMAGE,
  DT_EVENT_TEXT,
  DT_EVENT_OTHER /* a value kind we do not write (audio, other tensors) */
} dt_event_kind;

/* One Summary.Value; pointers stay valid until the next dt_events_reader_next. */
typedef struct {
  const char *tag;
  dt_event_kind kind;
  double scalar;                    /* DT_EVENT_SCALAR */
  double num, min, max, sum, sum_squares; /* DT_EVENT_HISTOGRAM */
  size_t nbuckets;
  const double *bucket_limit;       /* (nbuckets) */
  const double *bucket;             /* (nbuckets) */
  int height, width, channels;      /* DT_EVENT_IMAGE */
  const uint8_t *png;
  size_t png_len;
  const char *text;                 /* DT_EVENT_TEXT: the first string, */
  size_t text_len;                  /* text_len bytes, not NUL-terminated */
} dt_event_value_t;

typedef struct {
  uint64_t offset;          /* byte offset of the record in the file */
  double wall_time;
  int64_t step;
  const char *file_version; /* "brain.Event:2" on the first record, else NULL */
  size_t nvalues;
  const dt_event_value_t *values; /* (nvalues) */
} dt_event_t;

typedef struct dt_events_reader dt_events_reader_t;

int dt_events_reader_open(dt_events_reader_t **out, const char *path, dt_error_t *err);

/* Reads the next record: returns 1 and sets *event, 0 at the clean end of the file, or
 * DT_ERR_FORMAT for a bad length CRC, bad data CRC, truncated record or a record that
 * is not an Event, naming the file and the record's byte offset (DT_ERR_IO for read
 * errors). */
int dt_events_reader_next(dt_events_reader_t *r, const dt_event_t **event, dt_error_t *err);

void dt_events_reader_close(dt_events_reader_t *r);

/* Prints one line per event of the file at path to out (the dtrain-worker --events
 * dumper). On a corrupt record, the good records before it are printed and the error
 * is returned as dt_events_reader_next describes. */
int dt_events_dump(FILE *out, const char *path, dt_error_t *err);

#endif
