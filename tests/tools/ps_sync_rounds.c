/* Drives two sync-mode parameter servers with two scripted workers, in an order that
 * real workers only hit by chance, and checks that both servers put the same pushes
 * into the same rounds (tests/cli/test_ps_sync_rounds.sh).
 *
 * usage: ps_sync_rounds HOST PORT0 PORT1
 *
 * The model is one tensor of 4 floats, split [0,2) on server 0 and [2,4) on server 1;
 * plain SGD with lr 1, so after each round the parameters are 0 minus the sum of the
 * rounds' mean gradients, and every float of the model must show the same value.
 *   1. worker A joins both servers, INITs them to 0 and pulls clock 1.
 *   2. A pushes clock 1 (gradient 1) to server 0 only: its round 1 is applied.
 *   3. worker B says HELLO to both: server 0 is at round 2, server 1 still at round 1.
 *   4. A pushes clock 1 to server 1.
 *   5. B pulls clock 2 (the round after the largest clock offered) from both: that
 *      names round 2 as its first. Round 1 is A's alone on both servers: -1.
 *   6. A pushes 2 and B pushes 4 for clock 2: round 2 is their mean on both: -4.
 *   7. B leaves (BYE); A pushes 8 for clock 3 and is alone in round 3: -12.
 * Deciding B's first round by its arrival time instead puts B into round 1 on server 1
 * and into round 2 on server 0, and the two halves of the model differ. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dtrain/ps.h"
#include "dtrain/ps_frame.h"

enum { NPARAMS = 4, HALF = 2 };

typedef struct {
  int fd;
  dt_ps_reader_t rd;
} link_t;

static const char *host;
static const char *ports[2];
static uint64_t signature;
static dt_param_info_t tensor;
static dt_optim_config_t optim;
static int failures;

static void die(const char *what) {
  printf("FAILED: %s\n", what);
  exit(1);
}

static void open_link(link_t *l, int server) {
  struct addrinfo hints = {0}, *ai;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, ports[server], &hints, &ai)) die("cannot resolve the server address");
  l->fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (l->fd < 0 || connect(l->fd, ai->ai_addr, ai->ai_addrlen) != 0) die("cannot connect");
  freeaddrinfo(ai);
  /* Each message goes out when written, so the servers see them in script order. */
  int one = 1;
  setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* Every answer this script waits for comes at once; a missing one ends the test. */
  struct timeval tv = {20, 0};
  setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  dt_error_t err;
  if (dt_ps_reader_init(&l->rd, 1u << 20, &err)) die(err.msg);
}

static void send_msg(link_t *l, int type, const ProtobufCMessage *m, const float *payload,
                     size_t n) {
  uint8_t *buf;
  size_t len;
  dt_error_t err;
  if (dt_ps_encode_alloc(type, m, payload, n, &buf, &len, &err)) die(err.msg);
  for (size_t off = 0; off < len;) {
    ssize_t w = send(l->fd, buf + off, len - off, MSG_NOSIGNAL);
    if (w <= 0) die("send failed");
    off += (size_t)w;
  }
  free(buf);
}

/* Waits for the next frame, which must be of `type`. */
static void expect_msg(link_t *l, int type, dt_ps_msg_t *out, const char *what) {
  dt_error_t err;
  for (;;) {
    int t, code;
    const uint8_t *body;
    size_t len;
    int r = dt_ps_reader_next(&l->rd, &t, &body, &len, &code, &err);
    if (r < 0) die(err.msg);
    if (r == 1) {
      if (dt_ps_decode(t, body, len, out, &code, &err)) die(err.msg);
      if (t == type) return;
      char msg[256];
      snprintf(msg, sizeof msg, "%s: got %s%s%s instead of %s", what, dt_ps_type_name(t),
               t == DT_PS_ERROR ? ": " : "", t == DT_PS_ERROR ? out->m.error->message : "",
               dt_ps_type_name(type));
      die(msg);
    }
    uint8_t *p;
    size_t space;
    if (dt_ps_reader_space(&l->rd, &p, &space, &err)) die(err.msg);
    ssize_t n = recv(l->fd, p, space, 0);
    if (n <= 0) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s: no %s (%s)", what, dt_ps_type_name(type),
               n == 0 ? "connection closed" : "nothing within 20 s");
      die(msg);
    }
    dt_ps_reader_commit(&l->rd, (size_t)n);
  }
}

static void hello(link_t *l, uint32_t worker, int server, bool *initialized, int64_t *clock) {
  Dtrain__Ps__Hello h = DTRAIN__PS__HELLO__INIT;
  h.protocol = DT_PS_PROTOCOL_VERSION;
  h.worker_id = worker;
  h.signature = signature;
  h.num_params = NPARAMS;
  h.server_index = (uint32_t)server;
  h.num_servers = 2;
  send_msg(l, DT_PS_HELLO, &h.base, NULL, 0);
  dt_ps_msg_t m;
  expect_msg(l, DT_PS_WELCOME, &m, "HELLO");
  *initialized = m.m.welcome->initialized;
  *clock = m.m.welcome->clock;
  dt_ps_msg_free(&m);
}

static void init(link_t *l, int server) {
  Dtrain__Ps__Tensor t = DTRAIN__PS__TENSOR__INIT;
  uint32_t shape = NPARAMS;
  t.name = tensor.name;
  t.n_shape = 1;
  t.shape = &shape;
  t.count = NPARAMS;
  Dtrain__Ps__Tensor *tp = &t;
  Dtrain__Ps__Optimizer o = DTRAIN__PS__OPTIMIZER__INIT;
  o.kind = (uint32_t)optim.kind;
  o.momentum = optim.momentum;
  o.nesterov = optim.nesterov;
  o.weight_decay = optim.weight_decay;
  o.epsilon = optim.eps;
  o.beta1 = optim.beta1;
  o.beta2 = optim.beta2;
  o.rho = optim.rho;
  Dtrain__Ps__Init in = DTRAIN__PS__INIT__INIT;
  in.signature = signature;
  in.num_params = NPARAMS;
  in.server_index = (uint32_t)server;
  in.num_servers = 2;
  in.n_tensors = 1;
  in.tensors = &tp;
  in.optimizer = &o;
  const float zeros[HALF] = {0};
  send_msg(l, DT_PS_INIT, &in.base, zeros, HALF);
}

static void push(link_t *l, int64_t clock, float g) {
  Dtrain__Ps__Push p = DTRAIN__PS__PUSH__INIT;
  p.clock = clock;
  p.lr = 1.0f;
  p.steps = 1;
  const float grad[HALF] = {g, g};
  send_msg(l, DT_PS_PUSH, &p.base, grad, HALF);
}

static void pull(link_t *l, int64_t clock) {
  Dtrain__Ps__Pull p = DTRAIN__PS__PULL__INIT;
  p.clock = clock;
  send_msg(l, DT_PS_PULL, &p.base, NULL, 0);
}

/* The PARAMS answering a pull: both floats must be `want`, after `version` updates. */
static void expect_params(link_t *l, const char *who, float want, uint64_t version) {
  dt_ps_msg_t m;
  expect_msg(l, DT_PS_PARAMS, &m, who);
  bool ok = m.npayload == HALF && m.m.params->version == version;
  for (size_t i = 0; ok && i < HALF; i++) ok = m.payload[i] == want;
  printf("%s: version %llu, parameters %g %g (expected version %llu, %g): %s\n", who,
         (unsigned long long)m.m.params->version, m.npayload > 0 ? (double)m.payload[0] : 0.0,
         m.npayload > 1 ? (double)m.payload[1] : 0.0, (unsigned long long)version, (double)want,
         ok ? "ok" : "WRONG");
  failures += !ok;
  dt_ps_msg_free(&m);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s HOST PORT0 PORT1\n", argv[0]);
    return 2;
  }
  host = argv[1];
  ports[0] = argv[2];
  ports[1] = argv[3];
  snprintf(tensor.name, sizeof tensor.name, "w");
  tensor.shape = dt_shape_1d(NPARAMS);
  tensor.count = NPARAMS;
  optim = dt_optim_defaults(DT_OPT_SGD);
  signature = dt_ps_signature(&tensor, 1, NPARAMS, &optim);

  link_t a[2], b[2];
  bool initialized;
  int64_t clock, b_clock = 0;
  /* 1 */
  for (int s = 0; s < 2; s++) {
    open_link(&a[s], s);
    hello(&a[s], 0, s, &initialized, &clock);
    if (initialized || clock != 0) die("the servers must be fresh, in ps.consistency = sync");
    init(&a[s], s);
    pull(&a[s], 1);
    expect_params(&a[s], "A's first pull", 0.0f, 0);
  }
  /* 2 */
  push(&a[0], 1, 1.0f);
  pull(&a[0], 2);
  expect_params(&a[0], "A's pull 2, server 0", -1.0f, 1);
  /* 3 */
  for (int s = 0; s < 2; s++) {
    open_link(&b[s], s);
    hello(&b[s], 1, s, &initialized, &clock);
    printf("B's WELCOME from server %d: clock %lld\n", s, (long long)clock);
    if (clock > b_clock) b_clock = clock;
  }
  if (b_clock != 1) {
    printf("B's clock to continue from is %lld, expected 1\n", (long long)b_clock);
    failures++;
  }
  /* 4, 5 */
  push(&a[1], 1, 1.0f);
  pull(&a[1], 2);
  for (int s = 0; s < 2; s++) {
    pull(&b[s], b_clock + 1);
    expect_params(&b[s], s ? "B's first pull, server 1" : "B's first pull, server 0", -1.0f, 1);
  }
  expect_params(&a[1], "A's pull 2, server 1", -1.0f, 1);
  /* 6 */
  for (int s = 0; s < 2; s++) {
    push(&a[s], 2, 2.0f);
    pull(&a[s], 3);
    push(&b[s], 2, 4.0f);
    pull(&b[s], 3);
  }
  for (int s = 0; s < 2; s++) {
    expect_params(&a[s], s ? "A's pull 3, server 1" : "A's pull 3, server 0", -4.0f, 2);
    expect_params(&b[s], s ? "B's pull 3, server 1" : "B's pull 3, server 0", -4.0f, 2);
  }
  /* 7 */
  Dtrain__Ps__Bye bye = DTRAIN__PS__BYE__INIT;
  for (int s = 0; s < 2; s++) send_msg(&b[s], DT_PS_BYE, &bye.base, NULL, 0);
  for (int s = 0; s < 2; s++) {
    push(&a[s], 3, 8.0f);
    pull(&a[s], 4);
    expect_params(&a[s], s ? "A's pull 4, server 1" : "A's pull 4, server 0", -12.0f, 3);
  }
  for (int s = 0; s < 2; s++) {
    send_msg(&a[s], DT_PS_BYE, &bye.base, NULL, 0);
    close(a[s].fd);
    close(b[s].fd);
    dt_ps_reader_free(&a[s].rd);
    dt_ps_reader_free(&b[s].rd);
  }
  printf("%s\n", failures ? "FAILED" : "all rounds agree");
  return failures ? 1 : 0;
}
