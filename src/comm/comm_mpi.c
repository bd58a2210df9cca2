/* The MPI communicator (see comm.h): every collective is started non-blocking and
 * polled against a deadline, so that a rank that stops answering turns into an error
 * that names it instead of a hang.
 *
 * Gradient all-reduces run, by default, as our own ring over point-to-point messages:
 * with world N the range is cut into N segments; N-1 steps of reduce-scatter (send
 * one segment to the right neighbour, add the one that comes from the left) leave
 * each rank with one fully summed segment, which it scales by 1/N; N-1 steps of
 * all-gather pass the finished segments around. Each element is summed and scaled by
 * exactly one rank and copied to the others, so all ranks end bit-identical. The ring
 * is a small state machine per pending range, advanced by progress() and wait_all()
 * (and so from inside backward); each range has its own message tag, so that ranges
 * in flight together never take each other's messages. Open MPI 4.1's MPI_Iallreduce
 * (sync.allreduce = mpi) reached about half the bus bandwidth of the ring on one host
 * (bench/bench_sync.sh).
 *
 * To name the rank(s) a collective waits for, each rank publishes two numbers in an
 * MPI window (one-sided memory, passive target): how many collectives it has started
 * and the step it is working on. Only a timed-out rank reads them, with MPI_Rget, so
 * the steady state costs a store and an MPI_Win_sync per collective. On one host Open
 * MPI puts the window in shared memory and the read completes even while the target
 * is stuck in computation; where a read needs the target's help and gets none, the
 * report says that rank did not answer, which points at it just as well.
 *
 * We work on a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so MPI errors come
 * back as DT_ERR_COMM with MPI's own message rather than killing the process. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <mpi.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtrain/comm.h"

#include "dtrain/clock.h"
#include "dtrain/hot.h"

const char *const dt_allreduce_names[] = {"ring", "mpi", NULL};

/* One started average of buf[0..count). */
typedef struct {
  float *buf;
  size_t count;
  int64_t seq; /* its number among the collectives this rank started (1-based) */
  bool done;
  dt_allreduce_algo algo;
  MPI_Request req[2]; /* DT_ALLREDUCE_MPI: req[0]; ring: this step's receive and send */
  int step;           /* ring: the step in flight, 0 .. 2(world-1) */
  bool posted;        /* ring: the step's messages are posted */
  float *scratch;     /* ring: (scratch_cap) what the left neighbour sends to be added; kept
                       * with the slot across steps, so later steps do not allocate */
  size_t scratch_cap;
} pending_t;

typedef struct {
  MPI_Comm comm;
  bool own_init; /* we called MPI_Init, so we call MPI_Finalize */
  pending_t *pending;
  int npending, cap;
  /* Heartbeat window: beat[0] = collectives started, beat[1] = step. */
  MPI_Win win;
  int64_t *beat;
  bool have_win;
  int64_t started;
  long step;
} mpi_t;

static mpi_t *impl(dt_comm_t *c) { return (mpi_t *)c->impl; }

static int mpi_error(int mrc, const char *what, dt_error_t *err) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(mrc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", mrc);
  return dt_error_set(err, DT_ERR_COMM, "%s failed: %s", what, text);
}

static void publish(mpi_t *m) {
  if (!m->have_win) return;
  m->beat[0] = m->started;
  m->beat[1] = m->step;
  MPI_Win_sync(m->win);
}

/* Counts a collective as started (before starting it, so that a rank stuck inside
 * the start shows as having reached it) and returns its number. */
static int64_t begin_collective(mpi_t *m) {
  m->started++;
  publish(m);
  return m->started;
}

/* Ring segment k of a range of count floats split among world ranks. */
static size_t seg_begin(size_t count, int world, int k) {
  return count * (size_t)k / (size_t)world;
}

static int mod(int a, int n) { return ((a % n) + n) % n; }

DT_HOT_LOOP static void add_into(float *restrict dst, const float *restrict src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

DT_HOT_LOOP static void scale(float *restrict x, size_t n, float f) {
  for (size_t i = 0; i < n; i++) x[i] *= f;
}

/* add_into then scale, in one pass over memory; the same two roundings. */
DT_HOT_LOOP static void add_scale_into(float *restrict dst, const float *restrict src, size_t n,
                                       float f) {
  for (size_t i = 0; i < n; i++) dst[i] = (dst[i] + src[i]) * f;
}

/* Appends "waiting for rank ..." to out: asks every other rank where it is and lists
 * those that have not yet started collective number `seq`. */
static void describe_peers(dt_comm_t *c, int64_t seq, char *out, size_t cap) {
  mpi_t *m = impl(c);
  size_t used = strlen(out);
#define PUT(...)                                                                        \
  do {                                                                                  \
    if (used < cap) {                                                                   \
      int n_ = snprintf(out + used, cap - used, __VA_ARGS__);                           \
      used += n_ > 0 ? (size_t)n_ : 0;                                                  \
    }                                                                                   \
  } while (0)
  if (!m->have_win) {
    PUT("; the other ranks' progress is unknown (no MPI window)");
    return;
  }
  int world = c->world;
  int64_t(*got)[2] = calloc((size_t)world, sizeof *got);
  MPI_Request *rq = malloc(sizeof *rq * (size_t)world);
  bool *answered = calloc((size_t)world, sizeof *answered);
  if (!got || !rq || !answered) {
    PUT("; out of memory asking the other ranks where they are");
    goto done;
  }
  for (int r = 0; r < world; r++) {
    rq[r] = MPI_REQUEST_NULL;
    if (r != c->rank &&
        MPI_Rget(got[r], 2, MPI_INT64_T, r, 0, 2, MPI_INT64_T, m->win, &rq[r]) != MPI_SUCCESS)
      rq[r] = MPI_REQUEST_NULL;
  }
  /* A second is plenty for a read from memory; what has not come by then will not. */
  double deadline = dt_now_s() + 1.0;
  int left = world - 1;
  while (left > 0 && dt_now_s() < deadline) {
    left = 0;
    for (int r = 0; r < world; r++) {
      if (r == c->rank || answered[r] || rq[r] == MPI_REQUEST_NULL) continue;
      int flag = 0;
      if (MPI_Test(&rq[r], &flag, MPI_STATUS_IGNORE) == MPI_SUCCESS && flag)
        answered[r] = true;
      else
        left++;
    }
  }
  int behind = 0, silent = 0, shown = 0;
  for (int r = 0; r < world; r++) {
    if (r == c->rank) continue;
    if (!answered[r]) {
      silent++;
      continue;
    }
    if (got[r][0] >= seq) continue;
    behind++;
    if (shown++ < 8)
      PUT("%s %d (at step %lld, %lld collective operation%s behind: it has not started #%lld)",
          behind == 1 ? "; waiting for rank" : ",", r, (long long)got[r][1],
          (long long)(seq - got[r][0]), seq - got[r][0] == 1 ? "" : "s", (long long)seq);
  }
  if (shown > 8) PUT(" and %d more", shown - 8);
  if (silent) {
    shown = 0;
    PUT("; no answer from rank");
    for (int r = 0; r < world; r++)
      if (r != c->rank && !answered[r] && shown++ < 8) PUT(" %d", r);
    PUT(" (busy outside MPI or stuck)");
  }
  if (!behind && !silent)
    PUT("; every rank has started it, so MPI itself is not making progress");
done:
#undef PUT
  free(got);
  free(rq);
  free(answered);
}

static int timeout_error(dt_comm_t *c, const char *what, int64_t seq, dt_error_t *err) {
  char msg[DT_ERROR_MSG_MAX];
  snprintf(msg, sizeof msg, "%s did not finish within %g s (collective operation #%lld, this "
           "rank at step %ld)", what, c->timeout_s, (long long)seq, impl(c)->step);
  describe_peers(c, seq, msg, sizeof msg);
  return dt_error_set(err, DT_ERR_TIMEOUT, "%s", msg);
}

/* How long to wait before easing off the CPU: the first milliseconds spin as
 * MPI_Wait would (the common case, a step's exchange, is short); after that a waiting
 * rank yields, then sleeps a little, so that a slow peer sharing the core gets it. */
static void back_off(double waited) {
  if (waited > 0.1) {
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  } else if (waited > 0.002) {
    sched_yield();
  }
}

/* Waits for one request started as collective number seq. */
static int wait_one(dt_comm_t *c, MPI_Request *req, int64_t seq, const char *what,
                    dt_error_t *err) {
  double start = dt_now_s(), waited = 0.0;
  for (unsigned spin = 0;; spin++) {
    int flag = 0, mrc = MPI_Test(req, &flag, MPI_STATUS_IGNORE);
    if (mrc != MPI_SUCCESS) return mpi_error(mrc, what, err);
    if (flag) return 0;
    if ((spin & 31) == 0) {
      waited = dt_now_s() - start;
      if (waited > c->timeout_s) return timeout_error(c, what, seq, err);
    }
    back_off(waited);
  }
}

static int broadcast(dt_comm_t *c, void *buf, size_t bytes, int root, dt_error_t *err) {
  if (root < 0 || root >= c->world)
    return dt_error_set(err, DT_ERR_ARG, "broadcast from rank %d of %d", root, c->world);
  /* MPI counts are ints: large buffers go in chunks of 1 GiB (and an empty one is
   * still one broadcast, so that every rank counts the same collectives). */
  const size_t chunk = (size_t)1 << 30;
  size_t off = 0;
  do {
    size_t n = bytes - off < chunk ? bytes - off : chunk;
    MPI_Request req;
    int64_t seq = begin_collective(impl(c));
    int mrc = MPI_Ibcast((char *)buf + off, (int)n, MPI_BYTE, root, impl(c)->comm, &req);
    if (mrc != MPI_SUCCESS) return mpi_error(mrc, "MPI broadcast", err);
    char what[96];
    snprintf(what, sizeof what, "broadcast of %zu bytes from rank %d", bytes, root);
    int rc = wait_one(c, &req, seq, what, err);
    if (rc) return rc;
    off += n;
  } while (off < bytes);
  return 0;
}

static int allreduce_sum_f64(dt_comm_t *c, double *buf, size_t count, dt_error_t *err) {
  if (count > INT_MAX)
    return dt_error_set(err, DT_ERR_ARG, "sum of %zu values is more than one MPI call takes",
                        count);
  MPI_Request req;
  int64_t seq = begin_collective(impl(c));
  int mrc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, MPI_DOUBLE, MPI_SUM, impl(c)->comm,
                           &req);
  if (mrc != MPI_SUCCESS) return mpi_error(mrc, "MPI all-reduce of metrics", err);
  char what[96];
  snprintf(what, sizeof what, "all-reduce (sum) of %zu metric value%s", count,
           count == 1 ? "" : "s");
  return wait_one(c, &req, seq, what, err);
}

static int allgather(dt_comm_t *c, const void *mine, void *all, size_t bytes, dt_error_t *err) {
  if (bytes > INT_MAX / (size_t)c->world)
    return dt_error_set(err, DT_ERR_ARG, "all-gather of %zu bytes per rank is too large", bytes);
  MPI_Request req;
  int64_t seq = begin_collective(impl(c));
  int mrc = MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, impl(c)->comm,
                           &req);
  if (mrc != MPI_SUCCESS) return mpi_error(mrc, "MPI all-gather", err);
  return wait_one(c, &req, seq, "all-gather", err);
}

static int barrier(dt_comm_t *c, dt_error_t *err) {
  MPI_Request req;
  int64_t seq = begin_collective(impl(c));
  int mrc = MPI_Ibarrier(impl(c)->comm, &req);
  if (mrc != MPI_SUCCESS) return mpi_error(mrc, "MPI barrier", err);
  return wait_one(c, &req, seq, "barrier", err);
}

static int start_allreduce_avg(dt_comm_t *c, float *buf, size_t count, dt_error_t *err) {
  mpi_t *m = impl(c);
  if (count > INT_MAX)
    return dt_error_set(err, DT_ERR_ARG,
                        "an all-reduce of %zu floats is more than one MPI call takes", count);
  if (m->npending == m->cap) {
    /* Grows during the first step only: the number of buckets is fixed. Moving a slot
     * with requests in flight is fine: requests are handles, buffers stay put. */
    int cap = m->cap ? 2 * m->cap : 16;
    pending_t *p = realloc(m->pending, sizeof *p * (size_t)cap);
    if (!p) return dt_error_set(err, DT_ERR_NOMEM, "out of memory for pending all-reduces");
    memset(p + m->cap, 0, sizeof *p * (size_t)(cap - m->cap));
    m->pending = p;
    m->cap = cap;
  }
  pending_t *p = &m->pending[m->npending];
  p->seq = begin_collective(m);
  p->buf = buf;
  p->count = count;
  p->done = false;
  p->algo = c->allreduce;
  p->step = 0;
  p->posted = false;
  if (p->algo == DT_ALLREDUCE_MPI) {
    int mrc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, m->comm,
                             &p->req[0]);
    if (mrc != MPI_SUCCESS) return mpi_error(mrc, "MPI all-reduce", err);
  } else {
    size_t need = count / (size_t)c->world + 1;
    if (p->scratch_cap < need) {
      float *scratch = realloc(p->scratch, need * sizeof *scratch);
      if (!scratch) return dt_error_set(err, DT_ERR_NOMEM, "out of memory for all-reduce scratch");
      p->scratch = scratch;
      p->scratch_cap = need;
    }
  }
  m->npending++;
  return 0;
}

/* Advances the ring of slot `slot` as far as the messages that have arrived allow;
 * sets p->done at the end. */
static int ring_advance(dt_comm_t *c, int slot, dt_error_t *err) {
  mpi_t *m = impl(c);
  pending_t *p = &m->pending[slot];
  int world = c->world, rank = c->rank, last = 2 * (world - 1);
  int left = mod(rank - 1, world), right = mod(rank + 1, world);
  /* The slot number is the tag: every rank starts ranges in the same order. */
  int tag = slot % 32767;
  for (;;) {
    if (p->posted) {
      /* The receive first: its segment is added while our own send may still be
       * finishing. A finished request becomes MPI_REQUEST_NULL, which tests as done. */
      int flag = 0, mrc;
      if (p->req[0] != MPI_REQUEST_NULL) {
        if ((mrc = MPI_Test(&p->req[0], &flag, MPI_STATUS_IGNORE)) != MPI_SUCCESS)
          return mpi_error(mrc, "all-reduce ring step", err);
        if (!flag) return 0;
        if (p->step < world - 1) {
          int k = mod(rank - p->step - 1, world);
          size_t b = seg_begin(p->count, world, k), e = seg_begin(p->count, world, k + 1);
          /* The last reduce step leaves segment rank+1 summed over all ranks: it
           * becomes the average in the same pass. */
          if (p->step == world - 2)
            add_scale_into(p->buf + b, p->scratch, e - b, 1.0f / (float)world);
          else
            add_into(p->buf + b, p->scratch, e - b);
        }
      }
      if ((mrc = MPI_Test(&p->req[1], &flag, MPI_STATUS_IGNORE)) != MPI_SUCCESS)
        return mpi_error(mrc, "all-reduce ring step", err);
      if (!flag) return 0;
      p->posted = false;
      p->step++;
    }
    if (p->step >= last) {
      p->done = true;
      return 0;
    }
    /* Reduce-scatter step s sends segment rank-s and receives segment rank-s-1 into
     * scratch; all-gather step t sends segment rank+1-t and receives segment rank-t in
     * place. */
    int s = p->step, send_k, recv_k;
    float *recv_at;
    if (s < world - 1) {
      send_k = mod(rank - s, world);
      recv_k = mod(rank - s - 1, world);
      recv_at = p->scratch;
    } else {
      int t = s - (world - 1);
      send_k = mod(rank + 1 - t, world);
      recv_k = mod(rank - t, world);
      recv_at = p->buf + seg_begin(p->count, world, recv_k);
    }
    size_t sb = seg_begin(p->count, world, send_k), se = seg_begin(p->count, world, send_k + 1);
    size_t rb = seg_begin(p->count, world, recv_k), re = seg_begin(p->count, world, recv_k + 1);
    int mrc = MPI_Irecv(recv_at, (int)(re - rb), MPI_FLOAT, left, tag, m->comm, &p->req[0]);
    if (mrc == MPI_SUCCESS)
      mrc = MPI_Isend(p->buf + sb, (int)(se - sb), MPI_FLOAT, right, tag, m->comm, &p->req[1]);
    if (mrc != MPI_SUCCESS) return mpi_error(mrc, "all-reduce ring step", err);
    p->posted = true;
  }
}

/* Tests every pending average once, advancing rings and turning finished sums into
 * averages while later ranges are still in flight. Returns how many are still
 * pending, or an error. */
static int test_pending(dt_comm_t *c, dt_error_t *err) {
  mpi_t *m = impl(c);
  int left = 0;
  for (int i = 0; i < m->npending; i++) {
    pending_t *p = &m->pending[i];
    if (p->done) continue;
    if (p->algo == DT_ALLREDUCE_RING) {
      int rc = ring_advance(c, i, err);
      if (rc) return rc;
    } else {
      int flag = 0, mrc = MPI_Test(&p->req[0], &flag, MPI_STATUS_IGNORE);
      if (mrc != MPI_SUCCESS) return mpi_error(mrc, "MPI all-reduce", err);
      if (flag) {
        scale(p->buf, p->count, 1.0f / (float)c->world);
        p->done = true;
      }
    }
    if (!p->done) left++;
  }
  return left;
}

static int progress(dt_comm_t *c, dt_error_t *err) {
  int rc = test_pending(c, err);
  return rc < 0 ? rc : 0;
}

static int wait_all(dt_comm_t *c, int *stuck, dt_error_t *err) {
  mpi_t *m = impl(c);
  if (stuck) *stuck = -1;
  double start = dt_now_s(), waited = 0.0;
  for (unsigned spin = 0;; spin++) {
    int left = test_pending(c, err);
    if (left < 0) return left;
    if (left == 0) break;
    if ((spin & 31) == 0) {
      waited = dt_now_s() - start;
      if (waited > c->timeout_s) {
        int first = 0;
        while (m->pending[first].done) first++;
        const pending_t *p = &m->pending[first];
        if (stuck) *stuck = first;
        char what[160];
        if (p->algo == DT_ALLREDUCE_RING)
          snprintf(what, sizeof what, "all-reduce %d of %d (ring step %d of %d, receiving from "
                   "rank %d)", first + 1, m->npending, p->step + 1, 2 * (c->world - 1),
                   mod(c->rank - 1, c->world));
        else
          snprintf(what, sizeof what, "all-reduce %d of %d", first + 1, m->npending);
        return timeout_error(c, what, p->seq, err);
      }
    }
    back_off(waited);
  }
  m->npending = 0;
  return 0;
}

static void set_step(dt_comm_t *c, long step) {
  impl(c)->step = step;
  publish(impl(c));
}

static void abort_job(dt_comm_t *c, int code) {
  (void)c;
  MPI_Abort(MPI_COMM_WORLD, code);
}

static void finalize(dt_comm_t *c) {
  mpi_t *m = impl(c);
  if (!m) return;
  if (m->have_win) {
    MPI_Win_unlock_all(m->win);
    MPI_Win_free(&m->win);
  }
  MPI_Comm_free(&m->comm);
  if (m->own_init) MPI_Finalize();
  for (int i = 0; i < m->cap; i++) free(m->pending[i].scratch);
  free(m->pending);
  free(m);
  c->impl = NULL;
}

static const dt_comm_ops_t mpi_ops = {.name = "mpi",
                                      .broadcast = broadcast,
                                      .allreduce_sum_f64 = allreduce_sum_f64,
                                      .allgather = allgather,
                                      .barrier = barrier,
                                      .start_allreduce_avg = start_allreduce_avg,
                                      .progress = progress,
                                      .wait_all = wait_all,
                                      .set_step = set_step,
                                      .abort = abort_job,
                                      .finalize = finalize};

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

bool dt_comm_mpi_launched(void) {
  /* Open MPI's mpirun; PMIx (Open MPI 5, srun --mpi=pmix); PMI-1/2 (MPICH's hydra,
   * srun --mpi=pmi2); a Slurm job step started by srun (SLURM_STEP_ID is set there,
   * not in the batch script itself). */
  return env("OMPI_COMM_WORLD_SIZE") || env("PMIX_RANK") || env("PMI_RANK") ||
         env("PMI_SIZE") || (env("SLURM_PROCID") && env("SLURM_STEP_ID"));
}

int dt_comm_init_mpi(dt_comm_t *c, int *argc, char ***argv, dt_error_t *err) {
  int inited = 0, mrc;
  MPI_Initialized(&inited);
  bool own = !inited;
  if (own && (mrc = MPI_Init(argc, argv)) != MPI_SUCCESS) return mpi_error(mrc, "MPI_Init", err);
  mpi_t *m = calloc(1, sizeof *m);
  if (!m) return dt_error_set(err, DT_ERR_NOMEM, "out of memory starting MPI");
  m->own_init = own;
  if ((mrc = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm)) != MPI_SUCCESS) {
    free(m);
    return mpi_error(mrc, "MPI_Comm_dup", err);
  }
  MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
  c->ops = &mpi_ops;
  c->impl = m;
  c->timeout_s = DT_COMM_DEFAULT_TIMEOUT_S;
  c->allreduce = DT_ALLREDUCE_RING;
  MPI_Comm_rank(m->comm, &c->rank);
  MPI_Comm_size(m->comm, &c->world);

  /* srun without an MPI plugin starts N singletons that would each train alone. */
  const char *tasks = env("SLURM_STEP_NUM_TASKS");
  if (tasks && atoi(tasks) > 1 && c->world == 1) {
    finalize(c);
    return dt_error_set(err, DT_ERR_COMM,
                        "Slurm started %s tasks but MPI sees 1 rank: launch with srun "
                        "--mpi=pmix (or pmi2), or with mpirun",
                        tasks);
  }

  /* The heartbeat window is a diagnostic: without it the job runs, and a timeout
   * just cannot say which rank is behind. */
  if (MPI_Win_allocate(2 * sizeof(int64_t), sizeof(int64_t), MPI_INFO_NULL, m->comm, &m->beat,
                       &m->win) == MPI_SUCCESS) {
    MPI_Win_set_errhandler(m->win, MPI_ERRORS_RETURN);
    m->beat[0] = m->beat[1] = 0;
    m->have_win = MPI_Win_lock_all(MPI_MODE_NOCHECK, m->win) == MPI_SUCCESS;
    if (!m->have_win) MPI_Win_free(&m->win);
  }
  return 0;
}
