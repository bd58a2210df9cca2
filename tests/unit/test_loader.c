/* Tests for the batch loader (dtrain/loader.h): batches are byte-identical for 0, 1, 2
 * and 3 threads and equal to a direct dt_dataset_gather, in submission order, with their
 * labels and target values (and identical with augmentation on); a decoder's error comes
 * back from dt_loader_wait with its message (the first in sample order) and the loader
 * goes on or is destroyed cleanly; destroy with batches pending; samples_read counts;
 * the loader threads (and the caller with 0 threads, only while it gathers) have
 * denormals flushed; a submit from another thread waits for a free buffer. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/data.h"
#include "dtrain/error.h"
#include "dtrain/fpenv.h"
#include "dtrain/loader.h"
#include "test_util.h"

enum { N = 41, DIM = 12, YDIM = 2, MAX_THREADS = 3 };

static uint8_t pixels[N * DIM];
static int32_t classes[N];
static float targets[N * YDIM];

static void fill_storage(void) {
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < DIM; j++) pixels[i * DIM + j] = (uint8_t)((i * 37 + j * 11) % 256);
    classes[i] = (i * 5) % 7;
    targets[i * YDIM] = (float)i * 0.25f;
    targets[i * YDIM + 1] = -(float)i;
  }
}

/* A dataset over the arrays above, as a view from storage row 3 (so that storage rows
 * and sample numbers differ), with the given targets. */
static dt_dataset_t stored_dataset(dt_target_kind ykind) {
  dt_dataset_t ds = {0};
  ds.n = N - 3;
  ds.dim = DIM;
  ds.shape[0] = 2;
  ds.shape[1] = 2;
  ds.shape[2] = 3;
  ds.ndim = 3;
  ds.first = 3;
  ds.x = (dt_array_t){DT_U8, pixels, DIM};
  ds.ykind = ykind;
  if (ykind == DT_Y_CLASSES) {
    ds.y = (dt_array_t){DT_I32, classes, 1};
    ds.num_classes = 7;
  } else if (ykind == DT_Y_VALUES) {
    ds.y = (dt_array_t){DT_F32, targets, YDIM};
  }
  ds.what = "test.bin";
  return ds;
}

/* A decoder that makes sample values from the storage row, fails on chosen rows, and
 * records whether the calling thread flushes denormals. */
typedef struct {
  size_t bad[2]; /* storage rows that fail (SIZE_MAX: none) */
  bool tiny;     /* write denormals instead of ordinary values */
  atomic_int calls, unflushed;
} fake_decoder_t;

/* Set in the test's own thread while it gathers directly (not through a loader), so
 * that those calls are not counted. */
static _Thread_local bool gathering_directly;

static int fake_read(void *self, size_t i, float *x, dt_error_t *err) {
  fake_decoder_t *d = self;
  if (!gathering_directly) {
    atomic_fetch_add(&d->calls, 1);
    if (!dt_fp_denormals_flushed()) atomic_fetch_add(&d->unflushed, 1);
  }
  if (i == d->bad[0] || i == d->bad[1])
    return dt_error_set(err, DT_ERR_FORMAT, "class_a/img%zu.png: corrupt PNG data", i);
  for (int j = 0; j < DIM; j++)
    x[j] = d->tiny ? 1e-39f * (float)(j + 1) : (float)((i * 13 + (size_t)j * 7) % 256);
  return DT_OK;
}

static dt_dataset_t decoded_dataset(fake_decoder_t *d) {
  dt_dataset_t ds = stored_dataset(DT_Y_CLASSES);
  ds.x = (dt_array_t){DT_F32, NULL, DIM};
  ds.decoder = (dt_decoder_t){fake_read, d};
  ds.what = "class_a";
  return ds;
}

/* Augmentation for the next loaders made (NULL: none). */
static const dt_augment_t *augment;

static dt_loader_t *make_loader(const dt_dataset_t *ds, const dt_scaling_t *sc, int threads,
                                size_t capacity) {
  dt_loader_opts_t o = {.ds = ds, .scaling = sc, .augment = augment, .threads = threads,
                        .capacity = capacity, .value_range = 1.0f, .seed = 7,
                        .want_labels = true, .want_values = true};
  dt_loader_t *l = NULL;
  dt_error_t err = {0};
  int rc = dt_loader_create(&l, &o, &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) fprintf(stderr, "create: %s\n", err.msg);
  return l;
}

/* The batches of two epochs of ds with batch size B (the last batch of each smaller),
 * kept as the loader returned them: x, labels and values one after the other. */
enum { B = 8, EPOCHS = 2 };
typedef struct {
  float x[EPOCHS * N * DIM];
  int32_t labels[EPOCHS * N];
  float values[EPOCHS * N * YDIM];
  size_t samples;
} run_t;

static void batches_of(const dt_dataset_t *ds, size_t b, size_t *begin, size_t *count) {
  *begin = b * B;
  *count = ds->n - *begin < B ? ds->n - *begin : B;
}

static void run_loader(const dt_dataset_t *ds, const dt_scaling_t *sc, int threads, run_t *out) {
  memset(out, 0, sizeof *out);
  dt_loader_t *l = make_loader(ds, sc, threads, B);
  if (!l) return;
  uint32_t perm[EPOCHS][N];
  size_t nb = (ds->n + B - 1) / B, total = EPOCHS * nb;
  for (int e = 0; e < EPOCHS; e++) dt_epoch_permutation(11, (uint64_t)e, perm[e], ds->n);
  size_t begin, count;
  batches_of(ds, 0, &begin, &count);
  dt_loader_submit(l, perm[0] + begin, count, 0);
  for (size_t k = 0; k < total; k++) {
    size_t e = k / nb;
    const float *x, *values;
    const int32_t *labels;
    double waited = -1.0;
    dt_error_t err = {0};
    int rc = dt_loader_wait(l, &x, &labels, &values, &waited, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc) {
      fprintf(stderr, "wait: %s\n", err.msg);
      break;
    }
    CHECK(waited >= 0.0);
    /* Submit the next batch before using this one, as the training loop does. */
    if (k + 1 < total) {
      size_t nbegin, ncount;
      batches_of(ds, (k + 1) % nb, &nbegin, &ncount);
      dt_loader_submit(l, perm[(k + 1) / nb] + nbegin, ncount, (k + 1) / nb);
    }
    batches_of(ds, k % nb, &begin, &count);

    /* The same samples gathered directly, in this thread (not augmented). */
    float want_x[B * DIM], want_v[B * YDIM];
    int32_t want_l[B];
    gathering_directly = true;
    CHECK_INT_EQ(dt_dataset_gather(ds, sc, perm[e] + begin, count, want_x,
                                   ds->ykind == DT_Y_CLASSES ? want_l : NULL,
                                   ds->ykind != DT_Y_NONE ? want_v : NULL, NULL),
                 0);
    gathering_directly = false;
    if (!augment) CHECK(memcmp(x, want_x, count * DIM * sizeof *x) == 0);
    size_t at = e * ds->n + begin;
    memcpy(out->x + at * DIM, x, count * DIM * sizeof *x);
    if (ds->ykind == DT_Y_CLASSES) {
      CHECK(labels != NULL);
      if (labels) {
        CHECK(memcmp(labels, want_l, count * sizeof *labels) == 0);
        memcpy(out->labels + at, labels, count * sizeof *labels);
      }
    } else {
      CHECK(labels == NULL);
    }
    if (ds->ykind != DT_Y_NONE) {
      size_t yd = ds->y.row;
      CHECK(values != NULL);
      if (values) {
        CHECK(memcmp(values, want_v, count * yd * sizeof *values) == 0);
        memcpy(out->values + at * yd, values, count * yd * sizeof *values);
      }
    } else {
      CHECK(values == NULL);
    }
    /* Every sample waited for has been read; at most the one submitted batch more. */
    size_t done = e * ds->n + begin + count;
    CHECK(dt_loader_samples_read(l) >= done);
    CHECK(dt_loader_samples_read(l) <= done + B);
  }
  out->samples = dt_loader_samples_read(l);
  CHECK_INT_EQ(out->samples, EPOCHS * ds->n);
  dt_loader_destroy(l);
}

static void check_same_runs(const dt_dataset_t *ds, const dt_scaling_t *sc, const char *what) {
  static run_t runs[MAX_THREADS + 1];
  for (int t = 0; t <= MAX_THREADS; t++) run_loader(ds, sc, t, &runs[t]);
  for (int t = 1; t <= MAX_THREADS; t++) {
    bool same = memcmp(&runs[t], &runs[0], sizeof runs[0]) == 0;
    CHECK(same);
    if (!same) fprintf(stderr, "%s: %d threads differ from 0 threads\n", what, t);
  }
}

static void test_identical_for_any_threads(void) {
  dt_dataset_t ds = stored_dataset(DT_Y_CLASSES);
  dt_scaling_t by255 = {.kind = DT_SCALE_1_255};
  check_same_runs(&ds, &by255, "u8 / 255 with classes");
  check_same_runs(&ds, NULL, "u8 unscaled");

  dt_dataset_t dv = stored_dataset(DT_Y_VALUES);
  dt_scaling_t st = {0};
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_scaling_standardize(&st, &dv, &err), 0);
  check_same_runs(&dv, &st, "standardized with values");
  dt_scaling_free(&st);

  dt_dataset_t dn = stored_dataset(DT_Y_NONE);
  check_same_runs(&dn, &by255, "no targets");

  fake_decoder_t dec = {.bad = {SIZE_MAX, SIZE_MAX}};
  dt_dataset_t dd = decoded_dataset(&dec);
  check_same_runs(&dd, &by255, "decoded");
  /* Every decoder call ran with denormals flushed: in the loader threads, and in this
   * thread with 0 threads while the loader gathered. */
  CHECK(atomic_load(&dec.calls) >= (int)(EPOCHS * dd.n * (MAX_THREADS + 1)));
  CHECK_INT_EQ(atomic_load(&dec.unflushed), 0);
  /* ...but this thread's own mode was put back. */
  CHECK(!dt_fp_denormals_flushed());
}

/* With augmentation on, batches are still the same bytes for any thread count (each
 * sample is augmented from (seed, epoch, storage row) by the one thread that gathered
 * it). The placeholder augmentation of this branch does nothing; with the images
 * branch's it changes the samples. */
static void test_augmented_identical(void) {
  dt_augment_t a = {.flip_horizontal = true, .flip_vertical = true, .translate = 0.5,
                    .brightness = 0.2, .contrast = 0.2};
  augment = &a;
  dt_dataset_t ds = stored_dataset(DT_Y_CLASSES);
  dt_scaling_t by255 = {.kind = DT_SCALE_1_255};
  check_same_runs(&ds, &by255, "augmented");
  augment = NULL;
}

/* Denormal inputs scaled by 1/255 give 0 in every loader (the threads flush, and with 0
 * threads the caller's thread flushes while it gathers), so the bytes still agree. */
static void test_denormals_flushed(void) {
  fake_decoder_t dec = {.bad = {SIZE_MAX, SIZE_MAX}, .tiny = true};
  dt_dataset_t ds = decoded_dataset(&dec);
  dt_scaling_t by255 = {.kind = DT_SCALE_1_255};
  for (int t = 0; t <= MAX_THREADS; t++) {
    dt_loader_t *l = make_loader(&ds, &by255, t, B);
    if (!l) continue;
    const uint32_t idx[B] = {0, 5, 9, 1, 2, 3, 30, 37};
    dt_loader_submit(l, idx, B, 0);
    const float *x;
    dt_error_t err = {0};
    CHECK_INT_EQ(dt_loader_wait(l, &x, NULL, NULL, NULL, &err), 0);
    int nonzero = 0;
    for (int i = 0; x && i < B * DIM; i++) nonzero += x[i] != 0.0f;
    CHECK_INT_EQ(nonzero, 0);
    dt_loader_destroy(l);
  }
  CHECK_INT_EQ(atomic_load(&dec.unflushed), 0);
  CHECK(!dt_fp_denormals_flushed());
}

/* A corrupt sample: wait returns the decoder's error and message (the first bad sample
 * in the batch's order when there are two), the next batch is fine, and destroy is clean. */
static void test_decoder_error(void) {
  for (int t = 0; t <= MAX_THREADS; t++) {
    fake_decoder_t dec = {.bad = {3 + 20, 3 + 2}}; /* storage rows of samples 20 and 2 */
    dt_dataset_t ds = decoded_dataset(&dec);
    dt_loader_t *l = make_loader(&ds, NULL, t, B);
    if (!l) continue;
    /* Sample 20 comes before sample 2 in this batch, and in another thread's part
     * whenever there are several. */
    const uint32_t bad_batch[6] = {0, 20, 4, 5, 2, 7};
    const uint32_t good_batch[3] = {8, 9, 10};
    dt_loader_submit(l, bad_batch, 6, 0);
    dt_loader_submit(l, good_batch, 3, 0);
    const float *x = (const float *)1;
    const int32_t *labels = (const int32_t *)1;
    dt_error_t err = {0};
    CHECK_INT_EQ(dt_loader_wait(l, &x, &labels, NULL, NULL, &err), DT_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.msg, "class_a/img23.png: corrupt PNG data");
    CHECK(x == NULL);
    CHECK(labels == NULL);
    dt_error_clear(&err);
    CHECK_INT_EQ(dt_loader_wait(l, &x, &labels, NULL, NULL, &err), 0);
    CHECK(x != NULL);
    if (x) CHECK_NEAR(x[0], (11 * 13) % 256, 0.0);
    if (labels) CHECK_INT_EQ(labels[2], classes[13]);
    /* A wait with nothing submitted is refused, and names why. */
    CHECK_INT_EQ(dt_loader_wait(l, &x, &labels, NULL, NULL, &err), DT_ERR_STATE);
    CHECK_STR_CONTAINS(err.msg, "no batch submitted");
    /* An error left pending in a submitted batch is simply dropped by destroy. */
    dt_loader_submit(l, bad_batch, 6, 1);
    dt_loader_destroy(l);
  }
}

/* Destroy with batches pending: right after submitting, with one being consumed and one
 * prepared, and with a batch never waited for; for every thread count. */
static void test_destroy_pending(void) {
  dt_dataset_t ds = stored_dataset(DT_Y_CLASSES);
  const uint32_t idx[B] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (int t = 0; t <= MAX_THREADS; t++) {
    dt_loader_t *l = make_loader(&ds, NULL, t, B);
    if (!l) continue;
    dt_loader_submit(l, idx, B, 0);
    dt_loader_destroy(l);

    l = make_loader(&ds, NULL, t, B);
    if (!l) continue;
    dt_loader_submit(l, idx, B, 0);
    dt_loader_submit(l, idx, 3, 0);
    const float *x;
    CHECK_INT_EQ(dt_loader_wait(l, &x, NULL, NULL, NULL, NULL), 0);
    dt_loader_destroy(l);

    dt_loader_destroy(make_loader(&ds, NULL, t, B));
  }
  dt_loader_destroy(NULL);
}

/* A producer thread submits many batches ahead; its submits wait for the consumer's
 * waits to free a buffer, and the batches still come back in order. */
enum { PRODUCED = 12 };
typedef struct {
  dt_loader_t *l;
  uint32_t idx[PRODUCED][2];
  atomic_int submitted; /* a wait with nothing submitted is an error, not a wait */
} producer_t;

static void *producer_main(void *arg) {
  producer_t *p = arg;
  for (int k = 0; k < PRODUCED; k++) {
    dt_loader_submit(p->l, p->idx[k], 2, (uint64_t)k);
    atomic_fetch_add(&p->submitted, 1);
  }
  return NULL;
}

static void test_submit_from_another_thread(void) {
  dt_dataset_t ds = stored_dataset(DT_Y_CLASSES);
  for (int t = 1; t <= MAX_THREADS; t++) {
    producer_t p;
    p.l = make_loader(&ds, NULL, t, 2);
    if (!p.l) continue;
    for (int k = 0; k < PRODUCED; k++) {
      p.idx[k][0] = (uint32_t)k;
      p.idx[k][1] = (uint32_t)(k + 20);
    }
    atomic_init(&p.submitted, 0);
    pthread_t th;
    CHECK_INT_EQ(pthread_create(&th, NULL, producer_main, &p), 0);
    for (int k = 0; k < PRODUCED; k++) {
      while (atomic_load(&p.submitted) <= k) sched_yield();
      const float *x;
      const int32_t *labels;
      CHECK_INT_EQ(dt_loader_wait(p.l, &x, &labels, NULL, NULL, NULL), 0);
      if (!x) continue;
      CHECK_NEAR(x[DIM - 1], pixels[(3 + k) * DIM + DIM - 1], 0.0);
      CHECK_NEAR(x[DIM], pixels[(3 + k + 20) * DIM], 0.0);
      CHECK_INT_EQ(labels[1], classes[3 + k + 20]);
    }
    pthread_join(th, NULL);
    CHECK_INT_EQ(dt_loader_samples_read(p.l), 2 * PRODUCED);
    dt_loader_destroy(p.l);
  }
}

static void test_bad_options(void) {
  dt_dataset_t ds = stored_dataset(DT_Y_CLASSES);
  dt_loader_t *l = (dt_loader_t *)1;
  dt_error_t err = {0};
  dt_loader_opts_t o = {.ds = &ds, .capacity = 0};
  CHECK_INT_EQ(dt_loader_create(&l, &o, &err), DT_ERR_ARG);
  CHECK(l == NULL);
  CHECK_STR_CONTAINS(err.msg, "capacity 0");
  o.capacity = 4;
  o.threads = DT_LOADER_MAX_THREADS + 1;
  CHECK_INT_EQ(dt_loader_create(&l, &o, &err), DT_ERR_ARG);
  CHECK_STR_CONTAINS(err.msg, "65 threads");
  o.threads = 1;
  dt_scaling_t st = {.kind = DT_SCALE_STANDARDIZE, .dim = DIM - 1};
  o.scaling = &st;
  CHECK_INT_EQ(dt_loader_create(&l, &o, &err), DT_ERR_ARG);
  CHECK_STR_CONTAINS(err.msg, "11 features for test.bin of 12");
  o.scaling = NULL;
  o.ds = NULL;
  CHECK_INT_EQ(dt_loader_create(&l, &o, &err), DT_ERR_ARG);
  CHECK_STR_CONTAINS(err.msg, "no dataset");
}

int main(void) {
  fill_storage();
  test_identical_for_any_threads();
  test_augmented_identical();
  test_denormals_flushed();
  test_decoder_error();
  test_destroy_pending();
  test_submit_from_another_thread();
  test_bad_options();
  return test_summary("test_loader");
}
