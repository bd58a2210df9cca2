/* The batch loader: prepares batch k+1 (gathers, scales, decodes and augments its
 * samples) in background threads while the caller trains on batch k.
 *
 * Double buffering: two buffers, one holding the batch the caller is consuming (valid
 * until its next dt_loader_wait), the other the batch being prepared. The caller
 * submits a batch's sample indices, later waits for it; batches come back in the order
 * they were submitted. A training loop from one thread does
 *   submit(0); for k: wait -> batch k; submit(k + 1); train on batch k;
 * which keeps one batch ahead. A submit when neither buffer is free blocks until a
 * dt_loader_wait in another thread frees one, so from a single thread never submit
 * two batches beyond the one being consumed (that would wait forever).
 *
 * With N threads each batch is split into N contiguous parts, one per thread; every
 * sample's slot is written by exactly one thread with the same code, and every loader
 * thread flushes denormals (dtrain/fpenv.h), so the bytes of a batch do not depend on
 * the number of threads (0 included: then the caller's thread gathers at wait() under
 * the same floating-point mode, restored afterwards). */
#ifndef DTRAIN_LOADER_H
#define DTRAIN_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/augment.h"
#include "dtrain/data.h"
#include "dtrain/error.h"

typedef struct dt_loader dt_loader_t;

typedef struct {
  const dt_dataset_t *ds;       /* must outlive the loader */
  const dt_scaling_t *scaling;  /* NULL: none; must outlive the loader */
  const dt_augment_t *augment;  /* NULL or disabled: none */
  float value_range;            /* for augmentation: 1 after 1/255 scaling, 255 unscaled */
  uint64_t seed;                /* augmentation draws from (seed, epoch, sample) */
  int threads;                  /* 0: gather in the caller's thread at wait();
                                   N >= 1: N background threads split each batch */
  size_t capacity;              /* the largest batch */
  bool want_labels, want_values;
} dt_loader_opts_t;

enum { DT_LOADER_MAX_THREADS = 64 };

/* Allocates both buffers (capacity samples each) and starts the threads. Errors on bad
 * options (no dataset, capacity 0, threads outside [0, DT_LOADER_MAX_THREADS],
 * augmentation of samples that are not images) and when memory or threads run out. */
int dt_loader_create(dt_loader_t **out, const dt_loader_opts_t *o, dt_error_t *err);

/* Queues samples idx[0..count) (count <= capacity; idx is copied) of the epoch; the
 * batch is prepared in the background into the next free buffer. */
void dt_loader_submit(dt_loader_t *l, const uint32_t *idx, size_t count, uint64_t epoch);

/* The oldest submitted batch: x (count, dim), labels (count) when wanted and the
 * targets are classes, values (count, ydim) when wanted and there are targets; the
 * others are set to NULL (so are all three on error). The buffers stay valid until the
 * next wait. *waited_s (when non-NULL) is the time this call spent waiting for the
 * batch (with 0 threads: preparing it). An error of the gather (a corrupt image) comes
 * back here, the first in sample order; the batch then counts as consumed. Waiting with
 * no batch submitted is a DT_ERR_STATE error. */
int dt_loader_wait(dt_loader_t *l, const float **x, const int32_t **labels, const float **values,
                   double *waited_s, dt_error_t *err);

/* Samples gathered so far (read by any thread; the batches' sizes add up once they are
 * prepared). */
size_t dt_loader_samples_read(const dt_loader_t *l);

/* Stops and joins the threads (a part already started is finished, nothing new is
 * started), then frees everything; safe with batches pending. NULL is fine. */
void dt_loader_destroy(dt_loader_t *l);

#endif
