/* The TensorBoard event writer: producer calls serialize records into a bounded
 * in-memory buffer; one background thread per file writes them out. The training
 * loop therefore never waits for the disk, and a failing disk is reported once.
 *
 * Buffers: producers append framed records to `front` (at most queue_bytes). The
 * writer thread swaps `front` with its own empty `back` under the lock and writes
 * `back` without holding the lock, so a producer waits at most for a pointer swap. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dtrain/crc32c.h"
#include "dtrain/events.h"
#include "events_internal.h"
#include "tensorboard_event.pb-c.h"

enum {
  DEFAULT_QUEUE_BYTES = 8 << 20,
  DEFAULT_FLUSH_INTERVAL_MS = 2000,
  DEFAULT_FLUSH_TIMEOUT_MS = 10000,
  WRITE_EARLY_BYTES = 64 << 10
};

struct dt_events {
  char *path;
  int fd;
  size_t queue_cap;
  unsigned flush_interval_ms, flush_timeout_ms;

  /* Serializes producers: a summary's parts are built from shared state (the histogram). */
  pthread_mutex_t produce_lock;
  dt_histogram_t hist;

  /* Guards everything below; never held during I/O. */
  pthread_mutex_t lock;
  pthread_cond_t wake;    /* producers, flush and close -> writer thread */
  pthread_cond_t drained; /* writer thread -> flush and close */
  uint8_t *front;         /* (queue_cap) records waiting to be written */
  size_t front_len;
  uint64_t front_records;
  uint8_t *back; /* (queue_cap) the batch the writer thread is writing */
  uint64_t enqueued_bytes; /* all bytes ever appended to front */
  uint64_t done_bytes;     /* all bytes written, or discarded after a failure */
  int flush_requested, stop, abandon;
  int failed; /* a write failed: everything later is dropped */
  dt_error_t write_err;
  int write_err_reported;
  uint64_t dropped;
  int drop_reported;
  pthread_t thread;
};

static struct timespec deadline_after_ms(unsigned ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

static double wall_time_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Writes all of buf, retrying short writes and EINTR; returns 0 or an errno value. */
static int write_all(int fd, const uint8_t *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

/* Queued bytes past which the writer is woken before its interval is up. Small, so
 * that only the first pages of each queue buffer are ever touched (the rest is address
 * space, not memory) while the full capacity still absorbs a disk that stalls. */
static size_t write_early(const dt_events_t *ev) {
  return ev->queue_cap / 2 < WRITE_EARLY_BYTES ? ev->queue_cap / 2 : WRITE_EARLY_BYTES;
}

static void *writer_main(void *arg) {
  dt_events_t *ev = arg;
  pthread_mutex_lock(&ev->lock);
  for (;;) {
    struct timespec deadline = deadline_after_ms(ev->flush_interval_ms);
    while (!ev->stop && !ev->flush_requested && ev->front_len <= write_early(ev)) {
      if (pthread_cond_timedwait(&ev->wake, &ev->lock, &deadline) == ETIMEDOUT) break;
    }
    ev->flush_requested = 0;
    if (ev->front_len == 0) {
      if (ev->stop) break;
      continue;
    }
    uint8_t *batch = ev->front;
    size_t len = ev->front_len;
    uint64_t records = ev->front_records;
    ev->front = ev->back;
    ev->front_len = 0;
    ev->front_records = 0;
    ev->back = batch;
    int discard = ev->failed || ev->abandon;
    pthread_mutex_unlock(&ev->lock);

    int werr = discard ? 0 : write_all(ev->fd, batch, len);

    pthread_mutex_lock(&ev->lock);
    if (discard) {
      ev->dropped += records;
    } else if (werr != 0) {
      ev->dropped += records;
      ev->failed = 1;
      dt_error_set(&ev->write_err, DT_ERR_IO,
                   "event file %s: write failed: %s; no more events are written to it",
                   ev->path, strerror(werr));
    }
    ev->done_bytes += len;
    pthread_cond_broadcast(&ev->drained);
  }
  pthread_mutex_unlock(&ev->lock);
  return NULL;
}

/* Frames the packed Event straight into the queue (no copy of it is built first, so a
 * large image record costs its queue space only); never blocks on I/O. A record that
 * does not fit is dropped and counted. */
static int enqueue_event(dt_events_t *ev, const Dtrain__Tb__Event *event, dt_error_t *err) {
  (void)err;
  size_t len = dtrain__tb__event__get_packed_size(event);
  size_t need = DT_TFRECORD_HEADER + len + DT_TFRECORD_FOOTER;
  pthread_mutex_lock(&ev->lock);
  if (ev->failed || ev->stop || ev->front_len + need > ev->queue_cap) {
    ev->dropped++;
  } else {
    uint8_t *rec = ev->front + ev->front_len;
    uint64_t len64 = len;
    for (int i = 0; i < 8; i++) rec[i] = (uint8_t)(len64 >> (8 * i));
    uint32_t hcrc = dt_crc32c_mask(dt_crc32c(0, rec, 8));
    for (int i = 0; i < 4; i++) rec[8 + i] = (uint8_t)(hcrc >> (8 * i));
    dtrain__tb__event__pack(event, rec + DT_TFRECORD_HEADER);
    uint32_t dcrc = dt_crc32c_mask(dt_crc32c(0, rec + DT_TFRECORD_HEADER, len));
    for (int i = 0; i < 4; i++) rec[DT_TFRECORD_HEADER + len + i] = (uint8_t)(dcrc >> (8 * i));
    ev->front_len += need;
    ev->front_records++;
    ev->enqueued_bytes += need;
    /* Start writing early rather than fill up and drop. */
    if (ev->front_len > write_early(ev)) pthread_cond_signal(&ev->wake);
  }
  pthread_mutex_unlock(&ev->lock);
  return DT_OK;
}

/* Queues an Event holding one Summary.Value at the current time. */
static int enqueue_value(dt_events_t *ev, int64_t step, Dtrain__Tb__Summary__Value *value,
                         dt_error_t *err) {
  Dtrain__Tb__Summary summary = DTRAIN__TB__SUMMARY__INIT;
  summary.n_value = 1;
  summary.value = &value;
  Dtrain__Tb__Event event = DTRAIN__TB__EVENT__INIT;
  event.wall_time = wall_time_now();
  event.step = step;
  event.what_case = DTRAIN__TB__EVENT__WHAT_SUMMARY;
  event.summary = &summary;
  return enqueue_event(ev, &event, err);
}

/* Protocol buffers' string fields must hold UTF-8; Python's protobuf (and so
 * TensorBoard) refuses to parse an Event whose tag is not. */
static int utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t extra;
    unsigned min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, min = 0x10000, c &= 0x07;
    } else {
      return 0;
    }
    if (n - i <= extra) return 0;
    for (size_t k = 1; k <= extra; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      c = (c << 6) | (s[i + k] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    i += extra + 1;
  }
  return 1;
}

static int check_args(dt_events_t *ev, const char *tag, const char *what, dt_error_t *err) {
  if (!ev) return dt_error_set(err, DT_ERR_ARG, "events %s: no event writer", what);
  if (!tag || !tag[0]) return dt_error_set(err, DT_ERR_ARG, "events %s: empty tag", what);
  if (!utf8_valid((const unsigned char *)tag, strlen(tag)))
    return dt_error_set(err, DT_ERR_ARG, "events %s: tag is not valid UTF-8", what);
  return DT_OK;
}

int dt_events_scalar(dt_events_t *ev, const char *tag, int64_t step, double value,
                     dt_error_t *err) {
  int rc = check_args(ev, tag, "scalar", err);
  if (rc) return rc;
  Dtrain__Tb__Summary__Value v = DTRAIN__TB__SUMMARY__VALUE__INIT;
  v.tag = (char *)tag;
  v.value_case = DTRAIN__TB__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
  v.simple_value = (float)value;
  pthread_mutex_lock(&ev->produce_lock);
  rc = enqueue_value(ev, step, &v, err);
  pthread_mutex_unlock(&ev->produce_lock);
  return rc;
}

int dt_events_histogram(dt_events_t *ev, const char *tag, int64_t step, const float *values,
                        size_t n, dt_error_t *err) {
  int rc = check_args(ev, tag, "histogram", err);
  if (rc) return rc;
  if (n > 0 && !values)
    return dt_error_set(err, DT_ERR_ARG, "events histogram '%s': no values", tag);
  pthread_mutex_lock(&ev->produce_lock);
  dt_histogram_t *h = &ev->hist;
  dt_histogram_compute(h, values, n);
  Dtrain__Tb__HistogramProto hp = DTRAIN__TB__HISTOGRAM_PROTO__INIT;
  hp.min = h->min;
  hp.max = h->max;
  hp.num = h->num;
  hp.sum = h->sum;
  hp.sum_squares = h->sum_squares;
  hp.n_bucket_limit = h->nout;
  hp.bucket_limit = h->out_limits;
  hp.n_bucket = h->nout;
  hp.bucket = h->out_counts;
  Dtrain__Tb__Summary__Value v = DTRAIN__TB__SUMMARY__VALUE__INIT;
  v.tag = (char *)tag;
  v.value_case = DTRAIN__TB__SUMMARY__VALUE__VALUE_HISTO;
  v.histo = &hp;
  rc = enqueue_value(ev, step, &v, err);
  pthread_mutex_unlock(&ev->produce_lock);
  return rc;
}

/* A text summary as TensorBoard's text plugin writes it: a DT_STRING scalar tensor
 * tagged with plugin "text". */
static int enqueue_text(dt_events_t *ev, const char *tag, int64_t step, const char *text,
                        size_t len, dt_error_t *err) {
  Dtrain__Tb__SummaryMetadata__PluginData plugin = DTRAIN__TB__SUMMARY_METADATA__PLUGIN_DATA__INIT;
  plugin.plugin_name = "text";
  Dtrain__Tb__SummaryMetadata meta = DTRAIN__TB__SUMMARY_METADATA__INIT;
  meta.plugin_data = &plugin;
  Dtrain__Tb__TensorShapeProto shape = DTRAIN__TB__TENSOR_SHAPE_PROTO__INIT;
  ProtobufCBinaryData str = {.len = len, .data = (uint8_t *)text};
  Dtrain__Tb__TensorProto tensor = DTRAIN__TB__TENSOR_PROTO__INIT;
  tensor.dtype = DTRAIN__TB__DATA_TYPE__DT_STRING;
  tensor.tensor_shape = &shape;
  tensor.n_string_val = 1;
  tensor.string_val = &str;
  Dtrain__Tb__Summary__Value v = DTRAIN__TB__SUMMARY__VALUE__INIT;
  v.tag = (char *)tag;
  v.metadata = &meta;
  v.value_case = DTRAIN__TB__SUMMARY__VALUE__VALUE_TENSOR;
  v.tensor = &tensor;
  pthread_mutex_lock(&ev->produce_lock);
  int rc = enqueue_value(ev, step, &v, err);
  pthread_mutex_unlock(&ev->produce_lock);
  return rc;
}

int dt_events_markdown(dt_events_t *ev, const char *tag, int64_t step, const char *markdown,
                       dt_error_t *err) {
  int rc = check_args(ev, tag, "text", err);
  if (rc) return rc;
  if (!markdown) return dt_error_set(err, DT_ERR_ARG, "events text '%s': no text", tag);
  size_t len = strlen(markdown);
  if (!utf8_valid((const unsigned char *)markdown, len))
    return dt_error_set(err, DT_ERR_ARG, "events text '%s': text is not valid UTF-8", tag);
  return enqueue_text(ev, tag, step, markdown, len, err);
}

int dt_events_text(dt_events_t *ev, const char *tag, int64_t step, const char *text,
                   dt_error_t *err) {
  int rc = check_args(ev, tag, "text", err);
  if (rc) return rc;
  if (!text) return dt_error_set(err, DT_ERR_ARG, "events text '%s': no text", tag);
  size_t len = strlen(text);
  if (!utf8_valid((const unsigned char *)text, len))
    return dt_error_set(err, DT_ERR_ARG, "events text '%s': text is not valid UTF-8", tag);
  /* Four spaces before every line (but not after a final newline) make a markdown
   * code block, so '#', '*' and '_' in configs show as written. */
  size_t lines = 0;
  for (size_t i = 0; i < len; i++)
    if (i == 0 || text[i - 1] == '\n') lines++;
  char *block = malloc(len + 4 * lines + 1);
  if (!block) return dt_error_set(err, DT_ERR_NOMEM, "events text '%s': out of memory", tag);
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (i == 0 || text[i - 1] == '\n') {
      memcpy(block + o, "    ", 4);
      o += 4;
    }
    block[o++] = text[i];
  }
  block[o] = '\0';
  rc = enqueue_text(ev, tag, step, block, o, err);
  free(block);
  return rc;
}

int dt_events_image(dt_events_t *ev, const char *tag, int64_t step, int height, int width,
                    int channels, const uint8_t *pixels, dt_error_t *err) {
  int rc = check_args(ev, tag, "image", err);
  if (rc) return rc;
  uint8_t *png;
  size_t png_len;
  rc = dt_png_encode(pixels, height, width, channels, &png, &png_len, err);
  if (rc) return dt_error_prefix(err, "events image '%s': ", tag);
  Dtrain__Tb__Summary__Image img = DTRAIN__TB__SUMMARY__IMAGE__INIT;
  img.height = height;
  img.width = width;
  img.colorspace = channels;
  img.encoded_image_string.data = png;
  img.encoded_image_string.len = png_len;
  Dtrain__Tb__Summary__Value v = DTRAIN__TB__SUMMARY__VALUE__INIT;
  v.tag = (char *)tag;
  v.value_case = DTRAIN__TB__SUMMARY__VALUE__VALUE_IMAGE;
  v.image = &img;
  pthread_mutex_lock(&ev->produce_lock);
  rc = enqueue_value(ev, step, &v, err);
  pthread_mutex_unlock(&ev->produce_lock);
  free(png);
  return rc;
}

/* Waits until everything queued before the call has been handled by the writer
 * thread, or the deadline passes. Called with ev->lock held; returns 1 on timeout. */
static int wait_drained(dt_events_t *ev) {
  uint64_t target = ev->enqueued_bytes;
  struct timespec deadline = deadline_after_ms(ev->flush_timeout_ms);
  while (ev->done_bytes < target) {
    if (pthread_cond_timedwait(&ev->drained, &ev->lock, &deadline) == ETIMEDOUT)
      return ev->done_bytes < target;
  }
  return 0;
}

int dt_events_flush(dt_events_t *ev, dt_error_t *err) {
  if (!ev) return dt_error_set(err, DT_ERR_ARG, "events flush: no event writer");
  pthread_mutex_lock(&ev->lock);
  ev->flush_requested = 1;
  pthread_cond_signal(&ev->wake);
  int timed_out = wait_drained(ev);
  int rc = DT_OK;
  if (ev->failed) {
    rc = dt_error_set(err, ev->write_err.code, "%s", ev->write_err.msg);
  } else if (timed_out) {
    rc = dt_error_set(err, DT_ERR_TIMEOUT,
                      "event file %s: the writer did not finish within %u ms (slow disk?)",
                      ev->path, ev->flush_timeout_ms);
  }
  pthread_mutex_unlock(&ev->lock);
  return rc;
}

int dt_events_poll_error(dt_events_t *ev, dt_error_t *err) {
  if (!ev) return DT_OK;
  int rc = DT_OK;
  pthread_mutex_lock(&ev->lock);
  if (ev->failed && !ev->write_err_reported) {
    ev->write_err_reported = 1;
    rc = dt_error_set(err, ev->write_err.code, "%s", ev->write_err.msg);
  } else if (ev->dropped > 0 && !ev->drop_reported && !ev->failed) {
    ev->drop_reported = 1;
    rc = dt_error_set(err, DT_ERR_TIMEOUT,
                      "event file %s: the writer fell behind (slow disk?); %llu records "
                      "dropped so far, later drops are not reported",
                      ev->path, (unsigned long long)ev->dropped);
  }
  pthread_mutex_unlock(&ev->lock);
  return rc;
}

uint64_t dt_events_dropped(dt_events_t *ev) {
  if (!ev) return 0;
  pthread_mutex_lock(&ev->lock);
  uint64_t d = ev->dropped;
  pthread_mutex_unlock(&ev->lock);
  return d;
}

const char *dt_events_path(const dt_events_t *ev) { return ev ? ev->path : NULL; }

static void destroy(dt_events_t *ev) {
  if (ev->fd >= 0) close(ev->fd);
  pthread_mutex_destroy(&ev->produce_lock);
  pthread_mutex_destroy(&ev->lock);
  pthread_cond_destroy(&ev->wake);
  pthread_cond_destroy(&ev->drained);
  dt_histogram_free(&ev->hist);
  free(ev->front);
  free(ev->back);
  free(ev->path);
  free(ev);
}

int dt_events_close(dt_events_t *ev, dt_error_t *err) {
  if (!ev) return DT_OK;
  pthread_mutex_lock(&ev->lock);
  ev->stop = 1;
  pthread_cond_signal(&ev->wake);
  int timed_out = wait_drained(ev);
  /* The thread may be stuck in a write: let it discard the rest once that returns. */
  if (timed_out) ev->abandon = 1;
  pthread_mutex_unlock(&ev->lock);
  pthread_join(ev->thread, NULL);

  int rc = DT_OK;
  if (close(ev->fd) != 0 && !ev->failed) {
    ev->failed = 1;
    dt_error_set(&ev->write_err, DT_ERR_IO, "event file %s: close failed: %s", ev->path,
                 strerror(errno));
  }
  ev->fd = -1;
  if (ev->failed) {
    rc = dt_error_set(err, ev->write_err.code, "%s", ev->write_err.msg);
  } else if (timed_out) {
    rc = dt_error_set(err, DT_ERR_TIMEOUT,
                      "event file %s: the writer did not finish within %u ms; %llu records "
                      "were not written",
                      ev->path, ev->flush_timeout_ms, (unsigned long long)ev->dropped);
  } else if (ev->dropped > 0 && !ev->drop_reported) {
    rc = dt_error_set(err, DT_ERR_TIMEOUT,
                      "event file %s: %llu records were dropped because the writer fell "
                      "behind",
                      ev->path, (unsigned long long)ev->dropped);
  }
  destroy(ev);
  return rc;
}

/* mkdir -p: creates dir and its missing parents. */
static int make_dirs(const char *dir, dt_error_t *err) {
  size_t n = strlen(dir);
  char *p = malloc(n + 1);
  if (!p) return dt_error_set(err, DT_ERR_NOMEM, "event dir: out of memory");
  memcpy(p, dir, n + 1);
  int rc = DT_OK;
  for (size_t i = 1; i <= n && rc == DT_OK; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char saved = p[i];
    p[i] = '\0';
    struct stat st;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
      rc = dt_error_set(err, DT_ERR_IO, "cannot create event directory %s: %s", p,
                        strerror(errno));
    else if (stat(p, &st) != 0)
      rc = dt_error_set(err, DT_ERR_IO, "cannot use event directory %s: %s", p,
                        strerror(errno));
    else if (!S_ISDIR(st.st_mode))
      rc = dt_error_set(err, DT_ERR_IO, "cannot create event directory %s: %s is not a directory",
                        dir, p);
    p[i] = saved;
  }
  free(p);
  return rc;
}

/* Opens a new file named as TensorFlow's writers do, so TensorBoard finds it. */
static int create_event_file(const char *dir, double now, char **path_out, int *fd_out,
                             dt_error_t *err) {
  int rc = make_dirs(dir, err);
  if (rc) return rc;
  char host[256];
  if (gethostname(host, sizeof host) != 0) strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  for (char *c = host; *c; c++)
    if (*c == '/') *c = '_';
  size_t cap = strlen(dir) + strlen(host) + 96;
  char *path = malloc(cap);
  if (!path) return dt_error_set(err, DT_ERR_NOMEM, "event file name: out of memory");
  for (int n = 0; n < 1000; n++) {
    snprintf(path, cap, "%s/events.out.tfevents.%010lld.%s.%ld.%d", dir, (long long)now, host,
             (long)getpid(), n);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      *path_out = path;
      *fd_out = fd;
      return DT_OK;
    }
    if (errno != EEXIST) {
      rc = dt_error_set(err, DT_ERR_IO, "cannot create event file %s: %s", path,
                        strerror(errno));
      free(path);
      return rc;
    }
  }
  rc = dt_error_set(err, DT_ERR_IO, "cannot create event file in %s: 1000 names taken", dir);
  free(path);
  return rc;
}

int dt_events_open(dt_events_t **out, const char *dir, dt_error_t *err) {
  return dt_events_open_opts(out, dir, NULL, err);
}

int dt_events_open_opts(dt_events_t **out, const char *dir, const dt_events_options_t *opts,
                        dt_error_t *err) {
  if (!out) return dt_error_set(err, DT_ERR_ARG, "events open: no output pointer");
  *out = NULL;
  dt_events_options_t o = opts ? *opts : (dt_events_options_t){0};
  if (!o.file_path && (!dir || !dir[0]))
    return dt_error_set(err, DT_ERR_ARG, "events open: no directory given");
  if (o.queue_bytes == 0) o.queue_bytes = DEFAULT_QUEUE_BYTES;
  if (o.flush_interval_ms == 0) o.flush_interval_ms = DEFAULT_FLUSH_INTERVAL_MS;
  if (o.flush_timeout_ms == 0) o.flush_timeout_ms = DEFAULT_FLUSH_TIMEOUT_MS;

  dt_events_t *ev = calloc(1, sizeof *ev);
  if (!ev) return dt_error_set(err, DT_ERR_NOMEM, "events open: out of memory");
  ev->fd = -1;
  ev->queue_cap = o.queue_bytes;
  ev->flush_interval_ms = o.flush_interval_ms;
  ev->flush_timeout_ms = o.flush_timeout_ms;
  pthread_mutex_init(&ev->produce_lock, NULL);
  pthread_mutex_init(&ev->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ev->wake, &ca);
  pthread_cond_init(&ev->drained, &ca);
  pthread_condattr_destroy(&ca);

  int rc;
  /* The buffers are allocated once at full size; pages the run never fills are
   * never touched, so they cost address space rather than memory. */
  ev->front = malloc(ev->queue_cap);
  ev->back = malloc(ev->queue_cap);
  if (!ev->front || !ev->back) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "events open: cannot allocate %zu-byte buffers",
                      ev->queue_cap);
    goto fail;
  }
  rc = dt_histogram_init(&ev->hist, err);
  if (rc) goto fail;

  double now = wall_time_now();
  if (o.file_path) {
    ev->path = strdup(o.file_path);
    if (!ev->path) {
      rc = dt_error_set(err, DT_ERR_NOMEM, "events open: out of memory");
      goto fail;
    }
    ev->fd = open(ev->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (ev->fd < 0) {
      rc = dt_error_set(err, DT_ERR_IO, "cannot create event file %s: %s", ev->path,
                        strerror(errno));
      goto fail;
    }
  } else {
    rc = create_event_file(dir, now, &ev->path, &ev->fd, err);
    if (rc) goto fail;
  }

  Dtrain__Tb__Event version = DTRAIN__TB__EVENT__INIT;
  version.wall_time = now;
  version.what_case = DTRAIN__TB__EVENT__WHAT_FILE_VERSION;
  version.file_version = "brain.Event:2";
  rc = enqueue_event(ev, &version, err);
  if (rc) goto fail;

  /* The writer thread takes no signals: they stay with the trainer's threads, and a
   * broken pipe shows up as EPIPE from write() instead of killing the process. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int prc = pthread_create(&ev->thread, NULL, writer_main, ev);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (prc != 0) {
    rc = dt_error_set(err, DT_ERR_STATE, "events open: cannot start the writer thread: %s",
                      strerror(prc));
    goto fail;
  }
  *out = ev;
  return DT_OK;

fail:
  if (ev->fd >= 0 && !o.file_path) unlink(ev->path);
  destroy(ev);
  return rc;
}
