/* Placing the model's activation buffers in one arena (private to nn/): each buffer is
 * live over an interval of steps of a pass (forward steps, then backward steps), and
 * two buffers may share memory only if their intervals do not meet. */
#ifndef DTRAIN_NN_ARENA_PLAN_H
#define DTRAIN_NN_ARENA_PLAN_H

#include <stddef.h>

typedef struct {
  size_t floats;     /* size; 0 for a buffer that is not needed */
  int first, last;   /* live from step first to step last, both included */
  size_t offset;     /* set by dt_arena_plan: where it starts in the arena, in floats */
} dt_arena_buf_t;

/* Gives every buffer an offset (a multiple of align floats) so that buffers live at a
 * common step never overlap; larger buffers are placed first, each at the lowest offset
 * that fits. Returns the arena's size in floats, or 0 with *oom set where it ran out of
 * memory. */
size_t dt_arena_plan(dt_arena_buf_t *bufs, int n, size_t align, int *oom);

#endif
