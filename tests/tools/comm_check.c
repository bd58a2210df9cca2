/* comm_check: exercises the MPI communicator's operations on every rank of an
 * mpiexec job (any world size) and checks the results against values computed by
 * hand: averages of float ranges of many lengths (0, fewer floats than ranks, odd,
 * large) with several ranges in flight at once, for both all-reduce algorithms;
 * that every rank ends with bit-identical averages; broadcast, sum of doubles,
 * all-gather and barrier. Prints "comm_check: N passed, M failed" on rank 0 and
 * exits non-zero on any failure on any rank. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/comm.h"

static int failed, passed;

#define EXPECT(cond, ...)                            \
  do {                                               \
    if (cond) {                                      \
      passed++;                                      \
    } else {                                         \
      failed++;                                      \
      fprintf(stderr, "comm_check: " __VA_ARGS__);   \
      fputc('\n', stderr);                           \
    }                                                \
  } while (0)

/* Rank r's value at i: small integers, so that sums are exact. */
static float value(int r, size_t i) { return (float)(r * 1000 + (int)(i % 97)); }

static void check_ranges(dt_comm_t *c, dt_allreduce_algo algo) {
  static const size_t lengths[] = {0, 1, 2, 3, 5, 97, 1000, 65537, 300001};
  enum { N = sizeof lengths / sizeof lengths[0] };
  size_t total = 0, off[N];
  for (int k = 0; k < N; k++) {
    off[k] = total;
    total += lengths[k];
  }
  float *buf = malloc(total * sizeof *buf);
  dt_error_t err = {0};
  c->allreduce = algo;
  for (int round = 0; round < 2; round++) {
    for (int k = 0; k < N; k++)
      for (size_t i = 0; i < lengths[k]; i++) buf[off[k] + i] = value(c->rank, i) + (float)round;
    /* All ranges in flight together, in the same order on every rank. */
    for (int k = 0; k < N; k++)
      EXPECT(dt_comm_start_allreduce_avg(c, buf + off[k], lengths[k], &err) == 0, "start: %s",
             err.msg);
    EXPECT(dt_comm_progress(c, &err) == 0, "progress: %s", err.msg);
    int stuck = 0;
    EXPECT(dt_comm_wait_all(c, &stuck, &err) == 0, "wait_all: %s", err.msg);
    int bad = 0;
    for (int k = 0; k < N; k++)
      for (size_t i = 0; i < lengths[k]; i++) {
        double sum = 0;
        for (int r = 0; r < c->world; r++) sum += value(r, i) + round;
        double want = sum / c->world, got = buf[off[k] + i];
        if (fabs(got - want) > 1e-6 * fabs(want) + 1e-6 && bad++ < 3)
          fprintf(stderr, "comm_check: rank %d %s range %d [%zu] = %.9g, expected %.9g\n",
                  c->rank, dt_allreduce_names[algo], k, i, got, want);
      }
    EXPECT(bad == 0, "rank %d %s: %d wrong averages", c->rank, dt_allreduce_names[algo], bad);
  }
  /* Every rank must hold the same bits: compare with rank 0's copy. */
  float *ref = malloc(total * sizeof *ref);
  memcpy(ref, buf, total * sizeof *ref);
  EXPECT(dt_comm_broadcast(c, ref, total * sizeof *ref, 0, &err) == 0, "broadcast: %s", err.msg);
  EXPECT(memcmp(ref, buf, total * sizeof *ref) == 0, "rank %d %s: averages differ from rank 0's",
         c->rank, dt_allreduce_names[algo]);
  free(ref);
  free(buf);
}

int main(int argc, char **argv) {
  dt_comm_t c;
  dt_error_t err = {0};
  if (dt_comm_init_mpi(&c, &argc, &argv, &err)) {
    fprintf(stderr, "comm_check: %s\n", err.msg);
    return 2;
  }
  c.timeout_s = 30;
  check_ranges(&c, DT_ALLREDUCE_RING);
  check_ranges(&c, DT_ALLREDUCE_MPI);

  double sums[2] = {1.0, (double)c.rank};
  EXPECT(dt_comm_allreduce_sum_f64(&c, sums, 2, &err) == 0, "sum: %s", err.msg);
  EXPECT(sums[0] == c.world && sums[1] == c.world * (c.world - 1) / 2.0,
         "rank %d: sums %g %g", c.rank, sums[0], sums[1]);

  int mine[2] = {c.rank, 7 * c.rank}, *all = calloc((size_t)c.world * 2, sizeof *all);
  EXPECT(dt_comm_allgather(&c, mine, all, sizeof mine, &err) == 0, "allgather: %s", err.msg);
  for (int r = 0; r < c.world; r++)
    EXPECT(all[2 * r] == r && all[2 * r + 1] == 7 * r, "rank %d: allgather slot %d = %d %d",
           c.rank, r, all[2 * r], all[2 * r + 1]);
  free(all);

  char word[8] = "";
  if (c.rank == 0) strcpy(word, "dtrain");
  EXPECT(dt_comm_broadcast(&c, word, sizeof word, 0, &err) == 0, "broadcast: %s", err.msg);
  EXPECT(strcmp(word, "dtrain") == 0, "rank %d: broadcast gave '%s'", c.rank, word);
  EXPECT(dt_comm_barrier(&c, &err) == 0, "barrier: %s", err.msg);

  /* Everyone learns whether anyone failed, so that the exit status is the job's. */
  double fails = failed;
  dt_comm_allreduce_sum_f64(&c, &fails, 1, &err);
  if (c.rank == 0)
    printf("comm_check: %d ranks: %d passed, %d failed (all ranks: %g failed)\n", c.world, passed,
           failed, fails);
  dt_comm_finalize(&c);
  return fails == 0 ? 0 : 1;
}
