/* The server's range: its parameters and optimizer state, how pushes become updates
 * under each consistency model, the live workers and their clocks, and when a pull
 * may be answered (see ps_server.h).
 *
 *   async  every push is applied at once; pulls are answered at once.
 *   ssp    as async, but a pull at clock c waits until every live worker has pushed
 *          clock c-s-1 (Ho et al., NIPS'13).
 *   sync   round r sums every live worker's push of clock r and applies their mean
 *          once; a pull at clock c waits until round c-1 is applied (sync_rounds.c).
 *          A worker that leaves or is dropped no longer holds a round up. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ps_server.h"

int ps_shard_init(ps_server_t *s, const Dtrain__Ps__Init *in, const float *params,
                  dt_error_t *err) {
  int nt = (int)in->n_tensors;
  dt_param_info_t *t = calloc((size_t)nt, sizeof *t);
  dt_param_info_t *local = calloc((size_t)nt, sizeof *local);
  if (!t || !local) {
    free(t);
    free(local);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for %d tensors", nt);
  }
  for (int i = 0; i < nt; i++) {
    const Dtrain__Ps__Tensor *pt = in->tensors[i];
    snprintf(t[i].name, sizeof t[i].name, "%s", pt->name);
    t[i].shape.ndim = (int)pt->n_shape;
    for (size_t d = 0; d < pt->n_shape; d++) t[i].shape.dims[d] = (int)pt->shape[d];
    t[i].offset = (size_t)pt->offset;
    t[i].count = (size_t)pt->count;
    t[i].decay = pt->decay;
  }
  const Dtrain__Ps__Optimizer *po = in->optimizer;
  dt_optim_config_t o = {.kind = (dt_optim_kind)po->kind, .momentum = po->momentum,
                         .nesterov = po->nesterov, .beta1 = po->beta1, .beta2 = po->beta2,
                         .rho = po->rho, .eps = po->epsilon, .weight_decay = po->weight_decay};
  uint64_t sig = dt_ps_signature(t, nt, in->num_params, &o);
  if (sig != in->signature) {
    free(t);
    free(local);
    return dt_error_set(err, DT_ERR_MISMATCH,
                        "INIT's signature %016" PRIx64 " is not that of its own tensors and "
                        "optimizer (%016" PRIx64 ")", in->signature, sig);
  }
  uint64_t b, e;
  dt_ps_range(in->num_params, in->num_servers, in->server_index, &b, &e);
  /* The range's part of each tensor, with offsets from the range's start: weight
   * decay then applies to exactly the kernels' elements that live here. */
  int nl = 0;
  for (int i = 0; i < nt; i++) {
    uint64_t tb = t[i].offset, te = t[i].offset + t[i].count;
    if (te <= b || tb >= e) continue;
    local[nl] = t[i];
    uint64_t lb = tb > b ? tb : b, le = te < e ? te : e;
    local[nl].offset = (size_t)(lb - b);
    local[nl].count = (size_t)(le - lb);
    nl++;
  }
  size_t n = (size_t)(e - b);
  float *p = malloc(n * sizeof *p);
  float *acc = s->cfg.consistency == DT_PS_SYNC ? calloc(n, sizeof *acc) : NULL;
  int rc = 0;
  if (!p || (s->cfg.consistency == DT_PS_SYNC && !acc))
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory for a range of %zu parameters", n);
  else
    rc = dt_optim_init(&s->optim, &o, n, err);
  if (rc) {
    free(t);
    free(local);
    free(p);
    free(acc);
    return rc;
  }
  if (params) memcpy(p, params, n * sizeof *p);
  s->tensors = t;
  s->ntensors = nt;
  s->local = local;
  s->nlocal = nl;
  s->ocfg = o;
  s->params = p;
  s->accum = acc;
  s->signature = sig;
  s->num_params = in->num_params;
  s->index = in->server_index;
  s->nservers = in->num_servers;
  s->begin = b;
  s->end = e;
  s->n = n;
  s->version = 0;
  s->round_clock = 1;
  s->initialized = true;
  return 0;
}

void ps_shard_free(ps_server_t *s) {
  free(s->tensors);
  free(s->local);
  free(s->params);
  free(s->accum);
  dt_optim_free(&s->optim);
  for (int i = 0; i < s->nmembers; i++) {
    free(s->members[i]->held);
    free(s->members[i]);
  }
  free(s->members);
  s->members = NULL;
  s->nmembers = 0;
  s->initialized = false;
}

member_t *ps_member_find(ps_server_t *s, uint32_t id) {
  for (int i = 0; i < s->nmembers; i++)
    if (s->members[i]->id == id) return s->members[i];
  return NULL;
}

member_t *ps_member_add(ps_server_t *s, uint32_t id, int64_t clock, dt_error_t *err) {
  if (s->nmembers == s->cap_members) {
    int cap = s->cap_members ? 2 * s->cap_members : 8;
    member_t **nm = realloc(s->members, (size_t)cap * sizeof *nm);
    if (!nm) {
      dt_error_set(err, DT_ERR_NOMEM, "out of memory for worker %u", id);
      return NULL;
    }
    s->members = nm;
    s->cap_members = cap;
  }
  member_t *m = calloc(1, sizeof *m);
  if (!m) {
    dt_error_set(err, DT_ERR_NOMEM, "out of memory for worker %u", id);
    return NULL;
  }
  m->id = id;
  m->pushed = clock;
  m->last_seen = ps_now();
  s->members[s->nmembers++] = m;
  return m;
}

int64_t ps_min_pushed(const ps_server_t *s, int64_t none) {
  if (s->nmembers == 0) return none;
  int64_t lo = s->members[0]->pushed;
  for (int i = 1; i < s->nmembers; i++)
    if (s->members[i]->pushed < lo) lo = s->members[i]->pushed;
  return lo;
}

void ps_shard_apply(ps_server_t *s, const float *grad, float lr) {
  dt_optim_begin_step(&s->optim);
  dt_optim_update(&s->optim, s->params, grad, 0, s->n, lr, s->local, s->nlocal);
  s->version++;
}

void ps_member_remove(ps_server_t *s, member_t *m, const char *why) {
  if (m->conn) m->conn->member = NULL;
  int i = 0;
  while (i < s->nmembers && s->members[i] != m) i++;
  if (i == s->nmembers) return;
  s->members[i] = s->members[--s->nmembers];
  dt_log_info(&s->log, "worker %u %s at clock %" PRId64 "; %d live worker(s)", m->id, why,
              m->pushed, s->nmembers);
  free(m->held);
  free(m);
  if (s->initialized && s->cfg.consistency == DT_PS_SYNC) ps_sync_advance(s);
  if (s->initialized) ps_serve_pulls(s);
  ps_log_stats(s, "membership changed");
}

void ps_shard_push(ps_server_t *s, member_t *m, const Dtrain__Ps__Push *p, const float *grad) {
  if (p->clock <= m->last_push) {
    /* The worker lost the connection before our answer and sent this push again,
     * but the first copy had arrived: applying it twice would count it twice. */
    s->stats.repeated++;
    ps_serve_pulls(s);
    return;
  }
  s->stats.pushes++;
  float lr = p->lr;
  /* Staleness-aware learning rate (Zhang et al., IJCAI'16): a gradient computed on
   * parameters tau updates old moves them 1/tau as far. */
  if (s->cfg.staleness_lr && s->version > p->base_version + 1)
    lr /= (float)(s->version - p->base_version);
  if (s->cfg.consistency == DT_PS_SYNC) {
    ps_sync_push(s, m, p->clock, grad, lr);
  } else {
    if (p->clock > m->pushed) m->pushed = p->clock;
    m->last_push = p->clock;
    ps_shard_apply(s, grad, lr);
  }
  ps_serve_pulls(s);
  ps_ckpt_maybe(s, ps_now());
}

bool ps_pull_ready(const ps_server_t *s, int64_t clock) {
  switch (s->cfg.consistency) {
    case DT_PS_SSP: return ps_min_pushed(s, INT64_MAX) >= clock - s->cfg.staleness - 1;
    case DT_PS_SYNC: return s->round_clock >= clock;
    default: return true;
  }
}

void ps_serve_pulls(ps_server_t *s) {
  for (int i = 0; i < s->nmembers; i++) {
    member_t *m = s->members[i];
    if (!m->pull_pending || !m->conn || !ps_pull_ready(s, m->pull_clock)) continue;
    m->pull_pending = false;
    ps_send_params(m->conn, m->pull_clock);
  }
}

void ps_check_liveness(ps_server_t *s, double now) {
  for (int i = s->nmembers - 1; i >= 0; i--) {
    if (i >= s->nmembers) continue;
    member_t *m = s->members[i];
    double silent = now - m->last_seen;
    if (silent <= s->cfg.heartbeat_timeout_s) continue;
    if (m->conn)
      ps_conn_fail(m->conn, DTRAIN__PS__ERROR_CODE__TIMEOUT, "nothing heard for %.1f s", silent);
    s->stats.dropped++;
    char why[160];
    snprintf(why, sizeof why, "dropped: nothing heard for %.1f s (ps.heartbeat_timeout_s = %g)",
             silent, s->cfg.heartbeat_timeout_s);
    ps_member_remove(s, m, why);
  }
}

void ps_log_stats(ps_server_t *s, const char *when) {
  const ps_stats_t *st = &s->stats;
  dt_log_info(&s->log, "stats (%s): version %" PRIu64 ", %" PRIu64 " pushes, %" PRIu64
              " pulls (%" PRIu64 " waited), max clock gap %" PRId64 " (%s%s), gaps 0..7+: %" PRIu64
              " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
              ", %d live worker(s), %" PRIu64 " dropped, %" PRIu64 " bad connection(s), %" PRIu64
              " repeated and %" PRIu64 " late push(es) not applied",
              when, s->version, st->pushes, st->pulls, st->pulls_waited, st->max_gap,
              dt_ps_consistency_names[s->cfg.consistency],
              s->cfg.consistency == DT_PS_SSP ? "" : ", unbounded", st->gap_hist[0],
              st->gap_hist[1], st->gap_hist[2], st->gap_hist[3], st->gap_hist[4],
              st->gap_hist[5], st->gap_hist[6], st->gap_hist[7], s->nmembers, st->dropped,
              st->bad_connections, st->repeated, st->discarded);
}
