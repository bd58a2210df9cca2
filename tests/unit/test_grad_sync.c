/* The bucketed gradient exchange against a recording communicator: bucket layout
 * from the end of the buffer, buckets started as soon as backward has made them
 * final (and not before), the rest started by finish in order, one wait per step,
 * timeouts reported with the step and the bucket, nothing done with one rank. */
#include <stdio.h>
#include <string.h>

#include "dtrain/grad_sync.h"
#include "test_util.h"

/* What the fake communicator saw. */
typedef struct {
  size_t begin[64], count[64];
  int nstarts, nwaits, nprogress;
  long step;
  int fail_wait_at; /* -1: waits succeed; else time out with this bucket stuck */
  float *base;
} record_t;

static record_t rec;

static int start(dt_comm_t *c, float *buf, size_t count, dt_error_t *err) {
  (void)c, (void)err;
  rec.begin[rec.nstarts] = (size_t)(buf - rec.base);
  rec.count[rec.nstarts++] = count;
  return 0;
}
static int progress(dt_comm_t *c, dt_error_t *err) {
  (void)c, (void)err;
  rec.nprogress++;
  return 0;
}
static int wait_all(dt_comm_t *c, int *stuck, dt_error_t *err) {
  (void)c;
  rec.nwaits++;
  *stuck = rec.fail_wait_at;
  return rec.fail_wait_at < 0 ? 0 : dt_error_set(err, DT_ERR_TIMEOUT, "did not finish");
}
static void set_step(dt_comm_t *c, long step) {
  (void)c;
  rec.step = step;
}

static const dt_comm_ops_t fake_ops = {.name = "fake", .start_allreduce_avg = start,
                                       .progress = progress, .wait_all = wait_all,
                                       .set_step = set_step};

static void reset(float *base) {
  memset(&rec, 0, sizeof rec);
  rec.fail_wait_at = -1;
  rec.base = base;
}

/* 4 floats per bucket, in MB. */
static const double four_floats_mb = 4.0 * sizeof(float) / (1024.0 * 1024.0);

static void test_layout(void) {
  float g[10];
  dt_comm_t c = {.ops = &fake_ops, .rank = 0, .world = 2};
  dt_grad_sync_t s;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_grad_sync_init(&s, &c, g, 10, four_floats_mb, &err), 0);
  CHECK_INT_EQ(s.nbuckets, 3);
  size_t b, e;
  dt_grad_sync_bucket_range(&s, 0, &b, &e);
  CHECK_INT_EQ(b, 6);
  CHECK_INT_EQ(e, 10);
  dt_grad_sync_bucket_range(&s, 1, &b, &e);
  CHECK_INT_EQ(b, 2);
  CHECK_INT_EQ(e, 6);
  dt_grad_sync_bucket_range(&s, 2, &b, &e);
  CHECK_INT_EQ(b, 0);
  CHECK_INT_EQ(e, 2);

  CHECK_INT_EQ(dt_grad_sync_init(&s, &c, g, 10, 0.0, &err), 0);
  CHECK_INT_EQ(s.nbuckets, 1);
  dt_grad_sync_bucket_range(&s, 0, &b, &e);
  CHECK_INT_EQ(b, 0);
  CHECK_INT_EQ(e, 10);
  CHECK_INT_EQ(dt_grad_sync_init(&s, &c, g, 10, -1.0, &err), DT_ERR_ARG);
}

/* Backward of three layers owning [0,3), [3,8) and [8,10), last layer first. */
static void test_overlap(void) {
  float g[10];
  reset(g);
  dt_comm_t c = {.ops = &fake_ops, .rank = 0, .world = 2};
  dt_grad_sync_t s;
  dt_error_t err = {0};
  dt_grad_sync_init(&s, &c, g, 10, four_floats_mb, &err);
  dt_grad_sync_begin(&s, 7);
  CHECK_INT_EQ(rec.step, 7);
  dt_grad_sync_ready(&s, 8, 10, NULL);
  CHECK_INT_EQ(rec.nstarts, 0); /* bucket 0 is [6,10): not final yet */
  dt_grad_sync_ready(&s, 3, 8, NULL);
  CHECK_INT_EQ(rec.nstarts, 1); /* bucket 0 starts during backward */
  CHECK_INT_EQ(rec.begin[0], 6);
  CHECK_INT_EQ(rec.count[0], 4);
  CHECK(rec.nprogress >= 1);
  dt_grad_sync_ready(&s, 0, 3, NULL);
  CHECK_INT_EQ(rec.nstarts, 3);
  CHECK_INT_EQ(rec.begin[1], 2);
  CHECK_INT_EQ(rec.begin[2], 0);
  CHECK_INT_EQ(rec.count[2], 2);
  CHECK_INT_EQ(dt_grad_sync_finish(&s, &err), 0);
  CHECK_INT_EQ(rec.nstarts, 3);
  CHECK_INT_EQ(rec.nwaits, 1);

  /* The next step starts from nothing final again. */
  dt_grad_sync_begin(&s, 8);
  dt_grad_sync_ready(&s, 8, 10, NULL);
  CHECK_INT_EQ(rec.nstarts, 3);
  CHECK_INT_EQ(dt_grad_sync_finish(&s, &err), 0);
  CHECK_INT_EQ(rec.nstarts, 6);
  CHECK_INT_EQ(rec.begin[3], 6);
  CHECK_INT_EQ(rec.begin[5], 0);
}

/* A range that leaves a gap above it does not make anything final. */
static void test_gap(void) {
  float g[10];
  reset(g);
  dt_comm_t c = {.ops = &fake_ops, .rank = 0, .world = 2};
  dt_grad_sync_t s;
  dt_error_t err = {0};
  dt_grad_sync_init(&s, &c, g, 10, four_floats_mb, &err);
  dt_grad_sync_begin(&s, 1);
  dt_grad_sync_ready(&s, 0, 5, NULL);
  CHECK_INT_EQ(rec.nstarts, 0);
  CHECK_INT_EQ(dt_grad_sync_finish(&s, &err), 0);
  CHECK_INT_EQ(rec.nstarts, 3);
  CHECK_INT_EQ(rec.begin[0], 6);
  CHECK_INT_EQ(rec.begin[1], 2);
  CHECK_INT_EQ(rec.begin[2], 0);
}

static void test_timeout_message(void) {
  float g[10];
  reset(g);
  rec.fail_wait_at = 1;
  dt_comm_t c = {.ops = &fake_ops, .rank = 0, .world = 2};
  dt_grad_sync_t s;
  dt_error_t err = {0};
  dt_grad_sync_init(&s, &c, g, 10, four_floats_mb, &err);
  dt_grad_sync_begin(&s, 42);
  CHECK_INT_EQ(dt_grad_sync_finish(&s, &err), DT_ERR_TIMEOUT);
  CHECK_STR_CONTAINS(err.msg,
                     "step 42: gradient bucket 1 of 3 (floats [2, 6) of 10): did not finish");
}

static void test_single_rank(void) {
  float g[10];
  reset(g);
  dt_comm_t c = {.ops = &fake_ops, .rank = 0, .world = 1};
  dt_grad_sync_t s;
  dt_error_t err = {0};
  dt_grad_sync_init(&s, &c, g, 10, four_floats_mb, &err);
  dt_grad_sync_begin(&s, 1);
  dt_grad_sync_ready(&s, 0, 10, NULL);
  CHECK_INT_EQ(dt_grad_sync_finish(&s, &err), 0);
  CHECK_INT_EQ(rec.nstarts, 0);
  CHECK_INT_EQ(rec.nwaits, 0);
}

int main(void) {
  test_layout();
  test_overlap();
  test_gap();
  test_timeout_message();
  test_single_rank();
  return test_summary("test_grad_sync");
}
