/* Bulk-synchronous rounds through the servers (ps.consistency = sync), indexed by the
 * workers' clocks: round r sums the pushes of clock r of the members that take part
 * in it and applies their mean once (sync_rounds.c explains the rules). */
#ifndef DTRAIN_PS_SYNC_ROUNDS_H
#define DTRAIN_PS_SYNC_ROUNDS_H

#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "members.h"
#include "range.h"

typedef struct {
  const dt_log_t *log;
  size_t n;            /* floats of the range */
  float *accum;        /* (n) the current round's gradient sum */
  int ncontrib;        /* pushes summed into accum */
  double lr_sum;
  int64_t round;       /* the clock whose pushes accum sums */
  uint64_t discarded;  /* pushes for rounds already applied (after a restart) */
} ps_rounds_t;

/* Rounds over a range of n floats, starting at round 1. */
int ps_rounds_init(ps_rounds_t *r, size_t n, const dt_log_t *log, dt_error_t *err);
void ps_rounds_free(ps_rounds_t *r);

/* A worker unknown to this server said HELLO at clock h: the clock it is told to
 * continue from in WELCOME (the round before the first it may belong to). */
int64_t ps_rounds_hello(const ps_rounds_t *r, ps_member_t *m, int64_t h);
/* A PULL or PUSH at `clock` from m: the first one names its first round. */
void ps_rounds_announce(const ps_rounds_t *r, ps_member_t *m, int64_t clock);
/* m's push of `clock`: summed into the current round, held for a later one, or
 * discarded when its round is applied already. Then applies what it can. */
void ps_rounds_push(ps_rounds_t *r, ps_members_t *t, ps_range_t *range, ps_member_t *m,
                    int64_t clock, const float *grad, float lr);
/* Applies every round that no member holds up any more. */
void ps_rounds_advance(ps_rounds_t *r, ps_members_t *t, ps_range_t *range);

#endif
