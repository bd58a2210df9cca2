/* What a server checkpoint holds besides the range's values (range.h): the sync
 * round and the live workers' clocks. The core fills one to be saved and takes one
 * back on --resume; ckpt.c stores it. This is the whole of what checkpointing sees
 * of the core's state. */
#ifndef DTRAIN_PS_SNAPSHOT_H
#define DTRAIN_PS_SNAPSHOT_H

#include <stdint.h>
#include <stdlib.h>

typedef struct {
  uint32_t id;
  int64_t clock; /* its latest push that the saved parameters hold */
} ps_member_clock_t;

typedef struct {
  int64_t round;                /* sync: the round being summed (1 otherwise) */
  ps_member_clock_t *members;   /* (nmembers), malloc'd */
  int nmembers;
} ps_snapshot_t;

static inline void ps_snapshot_free(ps_snapshot_t *s) {
  free(s->members);
  s->members = NULL;
  s->nmembers = 0;
}

#endif
