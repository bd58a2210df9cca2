/* The workers a server counts as live, and their clocks. A member joins by HELLO and
 * goes by BYE or after ps.heartbeat_timeout_s of silence; a closed connection alone
 * does not end it (the worker may be reconnecting). Only a member that holds others
 * back (ps_member_counts) takes part in the SSP and sync waits. This file is the table
 * only: what joining, leaving and pushing mean is decided in core_*.c and
 * sync_rounds.c. */
#ifndef DTRAIN_PS_MEMBERS_H
#define DTRAIN_PS_MEMBERS_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/error.h"

struct ps_session;

typedef struct {
  uint32_t id;
  int64_t pushed;      /* the clock of its latest push; in sync mode also "it is past
                          every round up to here" (see sync_rounds.c) */
  double last_seen;    /* when anything last arrived from it */
  struct ps_session *session; /* its connection, or NULL while it has none */
  /* sync mode (sync_rounds.c): which rounds it belongs to. */
  bool joined;         /* its first round is known (from its first PULL or PUSH) */
  int64_t join_clock;  /* that first round */
  int64_t join_min;    /* before it is known: no earlier than this */
  int64_t last_push;   /* the clock of its latest push taken (applied, or in a round);
                          one at or below it is a copy sent again after a reconnect */
  float *held;         /* (n) a push for a round after the current one, or NULL */
  int64_t held_clock;
  float held_lr;
  bool pull_pending;   /* a PULL not answered yet */
  int64_t pull_clock;
  bool pushed_any;     /* it has pushed: here, or before a restart or a drop (its HELLO
                          clock was past 0, or a checkpoint listed it) */
  uint64_t nonce;      /* of the process whose HELLO made it or took it over last */
  char peer[64];       /* where that HELLO came from, for messages */
} ps_member_t;

/* Whether m holds the SSP and sync waits: while it is connected, and once it has
 * pushed also while it reconnects. A client that said HELLO and went away without a
 * push (a crashed start, a port scan, a throwaway client) holds nobody back while it
 * waits out ps.heartbeat_timeout_s as a member. */
static inline bool ps_member_counts(const ps_member_t *m) {
  return m->session != NULL || m->pushed_any;
}

typedef struct {
  ps_member_t **v;     /* (n) in no particular order */
  int n, cap;
} ps_members_t;

ps_member_t *ps_members_find(const ps_members_t *t, uint32_t id);
/* A new member `id` whose pushed clock starts at `clock`, seen at `now`. */
ps_member_t *ps_members_add(ps_members_t *t, uint32_t id, int64_t clock, double now,
                            dt_error_t *err);
/* Takes m out of the table and frees it. */
void ps_members_remove(ps_members_t *t, ps_member_t *m);
void ps_members_free(ps_members_t *t);
/* The smallest pushed clock of the members that count, or `none` when none does. */
int64_t ps_members_min_pushed(const ps_members_t *t, int64_t none);

#endif
