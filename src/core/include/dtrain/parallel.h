/* A parallel-for handed to code that must not depend on who owns the threads.
 *
 * The CPU backend owns the process's compute threads (src/device/cpu/threads.c); code
 * below the device or beside it, such as the optimizers in src/train (which the
 * parameter server uses without any device), gets the threads as this small value: a
 * function and its context. A zero dt_parallel_t runs everything on the caller.
 *
 * The range [0, n) is split into contiguous chunks, at most one per thread, each at
 * least `grain` elements long (so a range shorter than two grains runs on the calling
 * thread: handing work to another thread costs microseconds). The chunks depend only
 * on n, grain and the thread count, never on timing, so work whose elements are
 * independent gives the same bits whatever the thread count. */
#ifndef DTRAIN_PARALLEL_H
#define DTRAIN_PARALLEL_H

#include <stddef.h>

/* The body: elements [begin, end) of the range. */
typedef void (*dt_range_fn)(void *arg, size_t begin, size_t end);

typedef struct {
  void (*run)(void *ctx, size_t n, size_t grain, dt_range_fn fn, void *arg);
  void *ctx;
} dt_parallel_t;

/* fn over [0, n) in chunks (see above); returns when every chunk is done. p may be NULL. */
static inline void dt_parallel_for(const dt_parallel_t *p, size_t n, size_t grain, dt_range_fn fn,
                                   void *arg) {
  if (p && p->run)
    p->run(p->ctx, n, grain, fn, arg);
  else if (n)
    fn(arg, 0, n);
}

#endif
