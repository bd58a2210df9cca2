/* The CPU backend's thread pool: threads - 1 pthreads beside the calling thread, which
 * runs part 0 of every job itself, and a parallel-for over index ranges on top.
 *
 * A job is fn(arg, part, parts) for part in [0, parts); part i runs on pool thread i
 * (the caller for i = 0), so which thread computes what never depends on timing. The
 * workers sleep on a condition variable between jobs: on a machine shared with
 * OpenBLAS's own threads (which spin after a GEMM) spinning here would take cores from
 * them. Every worker flushes denormals when it starts (dtrain/fpenv.h). A job started
 * from inside a job (a kernel that calls another parallel kernel) runs on its thread
 * alone instead of waiting for workers that are busy with the outer job. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "cpu.h"
#include "dtrain/fpenv.h"

struct dt_cpu_pool {
  int threads; /* with the caller */
  pthread_t *tids;
  pthread_mutex_t mu;
  pthread_cond_t start_cv, done_cv;
  /* Guarded by mu: the current job, its number, and the workers still running it. */
  uint64_t generation;
  void (*fn)(void *arg, int part, int parts);
  void *arg;
  int parts;
  int pending;
  bool stop;
};

typedef struct {
  dt_cpu_pool_t *pool;
  int index; /* 1 .. threads - 1 */
} worker_arg_t;

/* Set on pool threads for their whole life, and on a caller while it runs a job. */
static _Thread_local bool in_job;

static void *worker_main(void *p) {
  worker_arg_t wa = *(worker_arg_t *)p;
  free(p);
  dt_cpu_pool_t *pool = wa.pool;
  dt_fp_flush_denormals();
  in_job = true;
  /* Jobs are numbered from 1: a job started before this thread first took the lock
   * is still seen as new. */
  uint64_t seen = 0;
  pthread_mutex_lock(&pool->mu);
  for (;;) {
    while (!pool->stop && pool->generation == seen) pthread_cond_wait(&pool->start_cv, &pool->mu);
    if (pool->stop) break;
    seen = pool->generation;
    if (wa.index >= pool->parts) continue;
    void (*fn)(void *, int, int) = pool->fn;
    void *arg = pool->arg;
    const int parts = pool->parts;
    pthread_mutex_unlock(&pool->mu);
    fn(arg, wa.index, parts);
    pthread_mutex_lock(&pool->mu);
    if (--pool->pending == 0) pthread_cond_signal(&pool->done_cv);
  }
  pthread_mutex_unlock(&pool->mu);
  return NULL;
}

static void free_pool(dt_cpu_pool_t *pool) {
  pthread_cond_destroy(&pool->done_cv);
  pthread_cond_destroy(&pool->start_cv);
  pthread_mutex_destroy(&pool->mu);
  free(pool->tids);
  free(pool);
}

static void stop_workers(dt_cpu_pool_t *pool, int started) {
  pthread_mutex_lock(&pool->mu);
  pool->stop = true;
  pthread_cond_broadcast(&pool->start_cv);
  pthread_mutex_unlock(&pool->mu);
  for (int i = 0; i < started; i++) pthread_join(pool->tids[i], NULL);
}

int dt_cpu_pool_create(int threads, dt_cpu_pool_t **out, dt_error_t *err) {
  *out = NULL;
  if (threads < 1) threads = 1;
  dt_cpu_pool_t *pool = calloc(1, sizeof *pool);
  if (!pool || !(pool->tids = calloc((size_t)threads, sizeof *pool->tids))) {
    free(pool);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a pool of %d threads", threads);
  }
  pool->threads = threads;
  pthread_mutex_init(&pool->mu, NULL);
  pthread_cond_init(&pool->start_cv, NULL);
  pthread_cond_init(&pool->done_cv, NULL);
  for (int i = 1; i < threads; i++) {
    worker_arg_t *wa = malloc(sizeof *wa);
    if (wa) *wa = (worker_arg_t){pool, i};
    if (wa && pthread_create(&pool->tids[i - 1], NULL, worker_main, wa) == 0) continue;
    free(wa);
    stop_workers(pool, i - 1);
    free_pool(pool);
    return dt_error_set(err, DT_ERR_STATE, "could not start compute thread %d of %d", i + 1,
                        threads);
  }
  *out = pool;
  return 0;
}

void dt_cpu_pool_destroy(dt_cpu_pool_t *pool) {
  if (!pool) return;
  stop_workers(pool, pool->threads - 1);
  free_pool(pool);
}

int dt_cpu_pool_threads(const dt_cpu_pool_t *pool) { return pool ? pool->threads : 1; }

void dt_cpu_pool_run(dt_cpu_pool_t *pool, int parts, void (*fn)(void *arg, int part, int parts),
                     void *arg) {
  const int threads = dt_cpu_pool_threads(pool);
  if (parts > threads) parts = threads;
  if (parts < 1) parts = 1;
  if (parts == 1 || in_job) {
    /* The same parts in order on this thread: the same results. */
    for (int i = 0; i < parts; i++) fn(arg, i, parts);
    return;
  }
  pthread_mutex_lock(&pool->mu);
  pool->fn = fn;
  pool->arg = arg;
  pool->parts = parts;
  pool->pending = parts - 1;
  pool->generation++;
  pthread_cond_broadcast(&pool->start_cv);
  pthread_mutex_unlock(&pool->mu);
  in_job = true;
  fn(arg, 0, parts);
  in_job = false;
  pthread_mutex_lock(&pool->mu);
  while (pool->pending > 0) pthread_cond_wait(&pool->done_cv, &pool->mu);
  pthread_mutex_unlock(&pool->mu);
}

/* ---- the parallel-for ---- */

typedef struct {
  size_t n, align;
  dt_range_fn fn;
  void *arg;
} range_job_t;

static size_t chunk_start(const range_job_t *j, int part, int parts) {
  return j->n * (size_t)part / (size_t)parts / j->align * j->align;
}

static void range_part(void *p, int part, int parts) {
  const range_job_t *j = p;
  const size_t b = part == 0 ? 0 : chunk_start(j, part, parts);
  const size_t e = part + 1 == parts ? j->n : chunk_start(j, part + 1, parts);
  if (b < e) j->fn(j->arg, b, e);
}

int dt_cpu_pool_parts(const dt_cpu_pool_t *pool, size_t n, size_t grain) {
  const size_t t = (size_t)dt_cpu_pool_threads(pool);
  if (grain < 1) grain = 1;
  const size_t by_size = n / grain;
  return (int)(by_size < 1 ? 1 : by_size < t ? by_size : t);
}

void dt_cpu_pool_for(dt_cpu_pool_t *pool, size_t n, size_t grain, size_t align, dt_range_fn fn,
                     void *arg) {
  if (n == 0) return;
  const int parts = dt_cpu_pool_parts(pool, n, grain);
  if (parts <= 1) {
    fn(arg, 0, n);
    return;
  }
  range_job_t j = {n, align ? align : 1, fn, arg};
  dt_cpu_pool_run(pool, parts, range_part, &j);
}
