/* The arena plan: a greedy first-fit placement of intervals by decreasing size, the
 * usual way frameworks share activation memory. Planned once per dt_model_prepare, so
 * its quadratic cost (a few hundred buffers at most) does not matter. */
#include "arena_plan.h"

#include <stdbool.h>
#include <stdlib.h>

/* Larger first; equal sizes in index order, so the plan is the same every time (an
 * insertion sort: stable, and a few hundred entries at most). */
static void sort_by_size(const dt_arena_buf_t *bufs, int *idx, int n) {
  for (int i = 1; i < n; i++) {
    const int v = idx[i];
    int j = i;
    while (j > 0 && bufs[idx[j - 1]].floats < bufs[v].floats) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = v;
  }
}

static size_t round_up(size_t n, size_t align) { return (n + align - 1) / align * align; }

size_t dt_arena_plan(dt_arena_buf_t *bufs, int n, size_t align, int *oom) {
  *oom = 0;
  int *idx = malloc(sizeof *idx * (size_t)(n ? n : 1));
  int *placed = malloc(sizeof *placed * (size_t)(n ? n : 1));
  if (!idx || !placed) {
    free(idx);
    free(placed);
    *oom = 1;
    return 0;
  }
  for (int i = 0; i < n; i++) idx[i] = i;
  sort_by_size(bufs, idx, n);
  size_t total = 0;
  int nplaced = 0;
  for (int a = 0; a < n; a++) {
    dt_arena_buf_t *b = &bufs[idx[a]];
    const size_t size = round_up(b->floats, align);
    b->offset = 0;
    if (!size) continue;
    /* Raise the offset past every placed buffer it would meet, until none is left. */
    for (bool moved = true; moved;) {
      moved = false;
      for (int p = 0; p < nplaced; p++) {
        const dt_arena_buf_t *o = &bufs[placed[p]];
        const size_t osize = round_up(o->floats, align);
        if (o->last < b->first || b->last < o->first) continue;
        if (o->offset < b->offset + size && b->offset < o->offset + osize) {
          b->offset = o->offset + osize;
          moved = true;
        }
      }
    }
    placed[nplaced++] = idx[a];
    if (b->offset + size > total) total = b->offset + size;
  }
  free(idx);
  free(placed);
  return total;
}
