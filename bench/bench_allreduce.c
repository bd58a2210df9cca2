/* bench_allreduce: the bus bandwidth of dtrain's gradient exchange against Open MPI's
 * raw MPI_Allreduce on the same byte counts, measured in one program, interleaved.
 *
 *   raw:   MPI_Allreduce(MPI_IN_PLACE, float, MPI_SUM) in a loop, as
 *          ../shared/anchors/allreduce_bw.c does (a sum, not an average).
 *   ours:  a whole step's exchange through dt_grad_sync (buckets of BUCKET_MB, our
 *          ring all-reduce, averaging included), started and waited for back to back:
 *          nothing to overlap with, so this is its pure cost.
 *   mpi:   the same with sync.allreduce = mpi (Open MPI's MPI_Iallreduce per bucket).
 *
 * busbw = bytes / time * 2 (n - 1) / n (nccl-tests). Each cell is the median over
 * ROUNDS rounds; within a round the three methods run one after the other on the
 * same buffer size, so machine noise hits them alike. Rank 0 prints a markdown table.
 *
 * usage: mpirun -np N bench_allreduce [ROUNDS [BUCKET_MB]]   (default 7, 1.0) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/comm.h"
#include "dtrain/grad_sync.h"

enum { METHODS = 3, MAX_ROUNDS = 101 };

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Seconds per exchange of count floats by method m, timed on rank 0 over `iters`. */
static double time_method(dt_comm_t *c, int m, float *buf, size_t count, double bucket_mb,
                          int iters) {
  dt_grad_sync_t s;
  dt_error_t err = {0};
  c->allreduce = m == 2 ? DT_ALLREDUCE_MPI : DT_ALLREDUCE_RING;
  if (dt_grad_sync_init(&s, c, buf, count, bucket_mb, &err)) {
    fprintf(stderr, "bench_allreduce: %s\n", err.msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  double t0 = 0.0;
  for (int i = -3; i < iters; i++) { /* 3 warm-up exchanges */
    if (i == 0) {
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = MPI_Wtime();
    }
    if (m == 0) {
      MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    } else {
      dt_grad_sync_begin(&s, i + 4);
      if (dt_grad_sync_finish(&s, &err)) {
        fprintf(stderr, "bench_allreduce: %s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
  }
  return (MPI_Wtime() - t0) / iters;
}

int main(int argc, char **argv) {
  dt_comm_t c;
  dt_error_t err = {0};
  if (dt_comm_init_mpi(&c, &argc, &argv, &err)) {
    fprintf(stderr, "bench_allreduce: %s\n", err.msg);
    return 1;
  }
  int rounds = argc > 1 ? atoi(argv[1]) : 7;
  double bucket_mb = argc > 2 ? atof(argv[2]) : 1.0;
  if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 7;
  /* The MLP example's 235,146 parameters, then powers of four as in the anchor. */
  static const size_t counts[] = {235146, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22};
  static const char *const names[METHODS] = {"raw MPI_Allreduce", "dtrain ring", "dtrain mpi"};
  const int ncounts = (int)(sizeof counts / sizeof counts[0]);
  float *buf = malloc(counts[ncounts - 1] * sizeof *buf);
  if (!buf) MPI_Abort(MPI_COMM_WORLD, 1);
  for (size_t i = 0; i < counts[ncounts - 1]; i++) buf[i] = 0.5f;
  double factor = 2.0 * (c.world - 1) / c.world;
  if (c.rank == 0) {
    printf("%d ranks, buckets of %g MB, median of %d interleaved rounds; busbw in GB/s\n",
           c.world, bucket_mb, rounds);
    printf("| floats | bytes | %s | %s | %s | ring / raw | mpi / raw |\n", names[0], names[1],
           names[2]);
    printf("|---|---|---|---|---|---|---|\n");
  }
  for (int k = 0; k < ncounts; k++) {
    size_t count = counts[k], bytes = count * sizeof(float);
    int iters = bytes >= (4u << 20) ? 20 : bytes >= (1u << 20) ? 50 : 200;
    double t[METHODS][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
      for (int m = 0; m < METHODS; m++) t[m][r] = time_method(&c, m, buf, count, bucket_mb, iters);
    double bw[METHODS];
    for (int m = 0; m < METHODS; m++) bw[m] = (double)bytes / median(t[m], rounds) / 1e9 * factor;
    if (c.rank == 0)
      printf("| %zu | %zu | %.2f | %.2f | %.2f | %.2fx | %.2fx |\n", count, bytes, bw[0], bw[1],
             bw[2], bw[1] / bw[0], bw[2] / bw[0]);
    fflush(stdout);
  }
  free(buf);
  dt_comm_finalize(&c);
  return 0;
}
