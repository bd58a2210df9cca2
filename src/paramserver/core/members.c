/* The member table (see members.h). */
#define _POSIX_C_SOURCE 200809L
#include "members.h"

#include <stdlib.h>

ps_member_t *ps_members_find(const ps_members_t *t, uint32_t id) {
  for (int i = 0; i < t->n; i++)
    if (t->v[i]->id == id) return t->v[i];
  return NULL;
}

ps_member_t *ps_members_add(ps_members_t *t, uint32_t id, int64_t clock, double now,
                            dt_error_t *err) {
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 8;
    ps_member_t **nv = realloc(t->v, (size_t)cap * sizeof *nv);
    if (!nv) {
      dt_error_set(err, DT_ERR_NOMEM, "out of memory for worker %u", id);
      return NULL;
    }
    t->v = nv;
    t->cap = cap;
  }
  ps_member_t *m = calloc(1, sizeof *m);
  if (!m) {
    dt_error_set(err, DT_ERR_NOMEM, "out of memory for worker %u", id);
    return NULL;
  }
  m->id = id;
  m->pushed = clock;
  m->last_seen = now;
  t->v[t->n++] = m;
  return m;
}

void ps_members_remove(ps_members_t *t, ps_member_t *m) {
  int i = 0;
  while (i < t->n && t->v[i] != m) i++;
  if (i == t->n) return;
  t->v[i] = t->v[--t->n];
  free(m->held);
  free(m);
}

void ps_members_free(ps_members_t *t) {
  for (int i = 0; i < t->n; i++) {
    free(t->v[i]->held);
    free(t->v[i]);
  }
  free(t->v);
  t->v = NULL;
  t->n = t->cap = 0;
}

int64_t ps_members_min_pushed(const ps_members_t *t, int64_t none) {
  int64_t lo = none;
  bool any = false;
  for (int i = 0; i < t->n; i++) {
    if (!ps_member_counts(t->v[i])) continue;
    if (!any || t->v[i]->pushed < lo) lo = t->v[i]->pushed;
    any = true;
  }
  return lo;
}
