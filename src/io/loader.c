/* The batch loader (dtrain/loader.h): two buffers, background threads that each
 * prepare one contiguous part of every batch, in submission order.
 *
 * Synchronization is one mutex and one condition variable: a buffer's fields are
 * written by the submitter before it is marked PENDING under the mutex, its parts by
 * the threads before the last of them marks it READY under the mutex, and read by the
 * consumer after it sees READY; so every hand-over is ordered by the mutex. Events are
 * few (a handful per batch), so one broadcast condition for all of them is enough. */
#include "dtrain/loader.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/clock.h"
#include "dtrain/fpenv.h"

enum { NUM_BUFFERS = 2 };

typedef enum {
  BUF_FREE,    /* may take the next submitted batch */
  BUF_PENDING, /* submitted; its parts are being prepared */
  BUF_READY,   /* prepared; not yet returned by wait */
  BUF_HELD     /* returned by wait; the caller reads it until the next wait */
} buf_state;

typedef struct {
  uint32_t *idx;   /* (capacity) the batch's sample indices, copied at submit */
  float *x;        /* (capacity, dim) */
  int32_t *labels; /* (capacity) or NULL when not wanted */
  float *values;   /* (capacity, ydim) or NULL when not wanted */
  size_t count;
  uint64_t epoch;
  uint64_t seq; /* the batch's number in submission order */
  buf_state state;
  int parts_done;
  int *rc;           /* (parts) each part's result */
  dt_error_t *errs;  /* (parts) each part's message */
} buffer_t;

typedef struct {
  dt_loader_t *l;
  int part;
  float *scratch; /* (dim) the thread's own, for augmentation */
  pthread_t thread;
} worker_t;

struct dt_loader {
  dt_loader_opts_t o;
  bool augment; /* augmentation enabled */
  int h, w, c;  /* image shape for augmentation */
  size_t dim, ydim;
  int parts; /* threads, or 1 with no threads */
  buffer_t buf[NUM_BUFFERS];
  uint64_t submitted, consumed; /* batches so far */
  int held;                     /* the buffer being consumed, or -1 */
  bool stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  worker_t *workers; /* (threads) */
  int started;       /* threads running */
  float *scratch;    /* (dim) the caller's, with no threads */
  atomic_size_t samples_read;
};

/* Prepares samples [begin, end) of part `part` of buffer b: gathers them (scaled),
 * then augments each from (seed, epoch, its storage row). */
static int prepare_part(dt_loader_t *l, buffer_t *b, int part, float *scratch,
                        dt_error_t *err) {
  size_t begin = b->count * (size_t)part / (size_t)l->parts;
  size_t end = b->count * (size_t)(part + 1) / (size_t)l->parts;
  size_t n = end - begin;
  const dt_dataset_t *ds = l->o.ds;
  if (n == 0) return DT_OK;
  int rc = dt_dataset_gather(ds, l->o.scaling, b->idx + begin, n, b->x + begin * l->dim,
                             b->labels ? b->labels + begin : NULL,
                             b->values ? b->values + begin * l->ydim : NULL, err);
  if (rc) return rc;
  if (l->augment)
    for (size_t i = begin; i < end; i++)
      dt_augment_apply(l->o.augment, b->x + i * l->dim, l->h, l->w, l->c, l->o.value_range,
                       l->o.seed, b->epoch, (uint64_t)(ds->first + b->idx[i]), scratch);
  atomic_fetch_add(&l->samples_read, n);
  return DT_OK;
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  dt_loader_t *l = w->l;
  /* Before any arithmetic: the bytes of a batch must not depend on which thread (or
   * whether the caller's) computed them, nor its speed on denormals. */
  dt_fp_flush_denormals();
  uint64_t next = 0; /* the batch this thread prepares its part of next */
  pthread_mutex_lock(&l->mu);
  for (;;) {
    buffer_t *b = &l->buf[next % NUM_BUFFERS];
    while (!l->stop && !(b->state == BUF_PENDING && b->seq == next))
      pthread_cond_wait(&l->cv, &l->mu);
    if (l->stop) break;
    pthread_mutex_unlock(&l->mu);
    dt_error_clear(&b->errs[w->part]);
    b->rc[w->part] = prepare_part(l, b, w->part, w->scratch, &b->errs[w->part]);
    pthread_mutex_lock(&l->mu);
    if (++b->parts_done == l->parts) {
      b->state = BUF_READY;
      pthread_cond_broadcast(&l->cv);
    }
    next++;
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

static void free_buffer(buffer_t *b) {
  free(b->idx);
  free(b->x);
  free(b->labels);
  free(b->values);
  free(b->rc);
  free(b->errs);
}

void dt_loader_destroy(dt_loader_t *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->stop = true;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < l->started; i++) pthread_join(l->workers[i].thread, NULL);
  if (l->workers)
    for (int i = 0; i < l->o.threads; i++) free(l->workers[i].scratch);
  free(l->workers);
  for (int i = 0; i < NUM_BUFFERS; i++) free_buffer(&l->buf[i]);
  free(l->scratch);
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

/* Checks the options; fills the image shape for augmentation. */
static int check_opts(dt_loader_t *l, const dt_loader_opts_t *o, dt_error_t *err) {
  if (!o->ds) return dt_error_set(err, DT_ERR_ARG, "batch loader: no dataset");
  const dt_dataset_t *ds = o->ds;
  const char *what = ds->what ? ds->what : "the dataset";
  if (o->capacity == 0) return dt_error_set(err, DT_ERR_ARG, "batch loader: capacity 0");
  if (o->threads < 0 || o->threads > DT_LOADER_MAX_THREADS)
    return dt_error_set(err, DT_ERR_ARG, "batch loader: %d threads (allowed: 0 to %d)",
                        o->threads, DT_LOADER_MAX_THREADS);
  if (ds->dim == 0) return dt_error_set(err, DT_ERR_ARG, "batch loader: %s has no values", what);
  if (!ds->x.base && !ds->decoder.read)
    return dt_error_set(err, DT_ERR_ARG, "batch loader: %s has neither storage nor decoder",
                        what);
  if (o->scaling && o->scaling->kind == DT_SCALE_STANDARDIZE && o->scaling->dim != ds->dim)
    return dt_error_set(err, DT_ERR_ARG,
                        "batch loader: standardization of %zu features for %s of %zu",
                        o->scaling->dim, what, ds->dim);
  if ((size_t)-1 / sizeof(float) / ds->dim < o->capacity ||
      (ds->y.row && (size_t)-1 / sizeof(float) / ds->y.row < o->capacity))
    return dt_error_set(err, DT_ERR_ARG, "batch loader: batches of %zu samples are too large",
                        o->capacity);
  l->augment = o->augment && dt_augment_enabled(o->augment);
  if (l->augment) {
    if (ds->ndim != 2 && ds->ndim != 3)
      return dt_error_set(err, DT_ERR_SHAPE,
                          "augmentation needs images (height, width[, channels]); the "
                          "samples of %s have %d dimensions",
                          what, ds->ndim);
    l->h = ds->shape[0];
    l->w = ds->shape[1];
    l->c = ds->ndim == 3 ? ds->shape[2] : 1;
  }
  return DT_OK;
}

static int alloc_buffer(dt_loader_t *l, buffer_t *b) {
  size_t cap = l->o.capacity;
  b->idx = malloc(cap * sizeof *b->idx);
  b->x = malloc(cap * l->dim * sizeof *b->x);
  b->rc = calloc((size_t)l->parts, sizeof *b->rc);
  b->errs = calloc((size_t)l->parts, sizeof *b->errs);
  if (!b->idx || !b->x || !b->rc || !b->errs) return DT_ERR_NOMEM;
  if (l->o.want_labels && l->o.ds->ykind == DT_Y_CLASSES &&
      !(b->labels = malloc(cap * sizeof *b->labels)))
    return DT_ERR_NOMEM;
  if (l->o.want_values && l->o.ds->ykind != DT_Y_NONE &&
      !(b->values = malloc(cap * l->ydim * sizeof *b->values)))
    return DT_ERR_NOMEM;
  return DT_OK;
}

int dt_loader_create(dt_loader_t **out, const dt_loader_opts_t *o, dt_error_t *err) {
  *out = NULL;
  dt_loader_t *l = calloc(1, sizeof *l);
  if (!l) return dt_error_set(err, DT_ERR_NOMEM, "batch loader: out of memory");
  int rc = check_opts(l, o, err);
  if (rc) {
    free(l);
    return rc;
  }
  l->o = *o;
  l->dim = o->ds->dim;
  l->ydim = o->ds->ykind == DT_Y_NONE ? 0 : o->ds->y.row;
  l->parts = o->threads > 0 ? o->threads : 1;
  l->held = -1;
  atomic_init(&l->samples_read, 0);
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  for (int i = 0; i < NUM_BUFFERS; i++)
    if (alloc_buffer(l, &l->buf[i])) goto nomem;
  if (o->threads == 0) {
    if (!(l->scratch = malloc(l->dim * sizeof *l->scratch))) goto nomem;
  } else {
    if (!(l->workers = calloc((size_t)o->threads, sizeof *l->workers))) goto nomem;
    for (int i = 0; i < o->threads; i++) {
      worker_t *w = &l->workers[i];
      w->l = l;
      w->part = i;
      if (!(w->scratch = malloc(l->dim * sizeof *w->scratch))) goto nomem;
    }
    for (; l->started < o->threads; l->started++) {
      worker_t *w = &l->workers[l->started];
      if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        dt_loader_destroy(l);
        return dt_error_set(err, DT_ERR_STATE, "batch loader: cannot start thread %d of %d",
                            w->part + 1, o->threads);
      }
    }
  }
  *out = l;
  return DT_OK;
nomem:
  dt_loader_destroy(l);
  return dt_error_set(err, DT_ERR_NOMEM, "batch loader: out of memory for batches of %zu",
                      o->capacity);
}

void dt_loader_submit(dt_loader_t *l, const uint32_t *idx, size_t count, uint64_t epoch) {
  assert(count <= l->o.capacity);
  pthread_mutex_lock(&l->mu);
  buffer_t *b = &l->buf[l->submitted % NUM_BUFFERS];
  /* Only a wait in another thread can free it (see loader.h). */
  while (b->state != BUF_FREE) pthread_cond_wait(&l->cv, &l->mu);
  if (count) memcpy(b->idx, idx, count * sizeof *idx);
  b->count = count;
  b->epoch = epoch;
  b->seq = l->submitted++;
  b->parts_done = 0;
  b->state = BUF_PENDING;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

/* With no threads: prepares the whole batch here, in the loader threads' floating-point
 * mode, and puts the caller's mode back. */
static void prepare_here(dt_loader_t *l, buffer_t *b) {
  dt_fp_mode_t mode = dt_fp_mode_get();
  dt_fp_flush_denormals();
  dt_error_clear(&b->errs[0]);
  b->rc[0] = prepare_part(l, b, 0, l->scratch, &b->errs[0]);
  dt_fp_mode_set(mode);
}

int dt_loader_wait(dt_loader_t *l, const float **x, const int32_t **labels, const float **values,
                   double *waited_s, dt_error_t *err) {
  double t0 = dt_now_s();
  *x = NULL;
  if (labels) *labels = NULL;
  if (values) *values = NULL;
  if (waited_s) *waited_s = 0.0;
  pthread_mutex_lock(&l->mu);
  if (l->consumed == l->submitted) {
    pthread_mutex_unlock(&l->mu);
    return dt_error_set(err, DT_ERR_STATE, "batch loader: wait with no batch submitted");
  }
  if (l->held >= 0) {
    l->buf[l->held].state = BUF_FREE;
    l->held = -1;
    pthread_cond_broadcast(&l->cv);
  }
  int i = (int)(l->consumed % NUM_BUFFERS);
  buffer_t *b = &l->buf[i];
  if (l->o.threads == 0) {
    /* Nobody else touches a PENDING buffer when there are no threads. */
    pthread_mutex_unlock(&l->mu);
    prepare_here(l, b);
    pthread_mutex_lock(&l->mu);
    b->state = BUF_READY;
  }
  while (b->state != BUF_READY) pthread_cond_wait(&l->cv, &l->mu);
  b->state = BUF_HELD;
  l->held = i;
  l->consumed++;
  pthread_mutex_unlock(&l->mu);
  if (waited_s) *waited_s = dt_now_s() - t0;
  /* The first error in sample order, whichever thread finished first. */
  for (int p = 0; p < l->parts; p++)
    if (b->rc[p]) {
      if (err) *err = b->errs[p];
      return b->rc[p];
    }
  *x = b->x;
  if (labels) *labels = b->labels;
  if (values) *values = b->values;
  return DT_OK;
}

size_t dt_loader_samples_read(const dt_loader_t *l) {
  return atomic_load(&((dt_loader_t *)l)->samples_read);
}
