/* A misbehaving parameter-server client for tests/cli/test_ps_bad_input.sh: sends one
 * kind of bad input on its own connection(s) and checks that the server answers with
 * the right ERROR and then closes the connection.
 *
 * usage: ps_bad_client HOST PORT CASE [TOKEN SIGNATURE_HEX NUM_PARAMS]
 * cases: random truncated huge unknown_type no_hello bad_token bad_signature bad_shard
 *        unread too_many idle   (the last four and bad_* need the optional arguments:
 *        the right token, the job's model signature and parameter count)
 *        nan_push               (a server of its own: INIT with a model of 4 floats,
 *                                then a PUSH with a NaN in it; TOKEN is optional)
 *        throwaway [COUNT]      (after the three optional arguments: COUNT times, a new
 *                                connection says HELLO with a new worker id, reads the
 *                                WELCOME and hangs up; prints how many were welcomed)
 *        big_before_hello MB N  (N connections each send a frame of MB MiB before any
 *                                HELLO, round robin so that all are under way at once;
 *                                expects FRAME_TOO_LARGE)
 *        unread_many N FLOATS   (a server of its own: INIT with a model of FLOATS, then N
 *                                members that PULL 400 times each and read nothing; each
 *                                must be closed, with or without an ERROR)
 *        push_many N FLOATS     (not bad: a server of its own, then N members push a
 *                                gradient of FLOATS at once, all under way together, then
 *                                each pulls; every one must get PARAMS. Prints the version)
 * Prints "CASE: ERROR CODE: message; closed" and exits 0 when the expected code came,
 * 1 otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "dtrain/ps_frame.h"
#include "dtrain/ps_range.h"

enum { BAD_TOO_LARGE = DTRAIN__PS__ERROR_CODE__FRAME_TOO_LARGE,
       BAD_TYPE = DTRAIN__PS__ERROR_CODE__UNKNOWN_TYPE,
       BAD_MSG = DTRAIN__PS__ERROR_CODE__BAD_MESSAGE,
       BAD_TOK = DTRAIN__PS__ERROR_CODE__BAD_TOKEN,
       BAD_SIG = DTRAIN__PS__ERROR_CODE__BAD_SIGNATURE,
       BAD_SHARD = DTRAIN__PS__ERROR_CODE__BAD_SHARD,
       BAD_PROTO = DTRAIN__PS__ERROR_CODE__PROTOCOL,
       BAD_MANY = DTRAIN__PS__ERROR_CODE__TOO_MANY_CONNECTIONS,
       BAD_TIME = DTRAIN__PS__ERROR_CODE__TIMEOUT,
       BAD_TRUNC = DTRAIN__PS__ERROR_CODE__TRUNCATED,
       BAD_BUF = DTRAIN__PS__ERROR_CODE__BUFFER_LIMIT };

static const char *host, *port, *token = "";
static uint64_t signature, num_params = 1;

static int connect_server(void) {
  struct addrinfo hints = {0}, *ai;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &ai)) return -1;
  int fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  struct timeval tv = {15, 0};
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static int send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads frames until an ERROR (skipping others), then until the end of the stream.
 * Returns the ERROR's code, or -1 if none came; *closed says the stream ended. */
static int read_error(int fd, char *msg, size_t cap, bool *closed) {
  dt_ps_reader_t r;
  dt_error_t err;
  int code = -1;
  *closed = false;
  msg[0] = '\0';
  if (dt_ps_reader_init(&r, 256u << 20, &err)) return -1;
  for (;;) {
    uint8_t *p;
    size_t space;
    if (dt_ps_reader_space(&r, &p, &space, &err)) break;
    ssize_t n = recv(fd, p, space, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      *closed = true;
      break;
    }
    if (n < 0) break; /* the receive timeout */
    dt_ps_reader_commit(&r, (size_t)n);
    int type, c;
    const uint8_t *body;
    size_t len;
    while (dt_ps_reader_next(&r, &type, &body, &len, &c, &err) == 1) {
      dt_ps_msg_t m;
      if (type != DT_PS_ERROR || code >= 0 || dt_ps_decode(type, body, len, &m, &c, &err)) continue;
      code = (int)m.m.error->code;
      snprintf(msg, cap, "%s", m.m.error->message);
      dt_ps_msg_free(&m);
    }
  }
  dt_ps_reader_free(&r);
  return code;
}

/* Sends bytes (optionally ending our side), then expects one of the codes and a close. */
static int expect(const char *name, int fd, const void *bytes, size_t n, bool end_side,
                  const int *codes, int ncodes) {
  if (fd < 0) {
    printf("%s: cannot connect\n", name);
    return 1;
  }
  if (n && send_all(fd, bytes, n) != 0) {
    /* The server may already have answered and closed: read what it said. */
  }
  if (end_side) shutdown(fd, SHUT_WR);
  char msg[1024];
  bool closed;
  int code = read_error(fd, msg, sizeof msg, &closed);
  close(fd);
  bool ok = false;
  for (int i = 0; i < ncodes; i++) ok |= code == codes[i];
  if (ok && closed) {
    printf("%s: ERROR %s: %s; closed\n", name, dt_ps_error_name(code), msg);
    return 0;
  }
  printf("%s: FAILED: got %s (%s), %s; expected %s%s\n", name,
         code < 0 ? "no ERROR" : dt_ps_error_name(code), msg, closed ? "closed" : "not closed",
         dt_ps_error_name(codes[0]), ncodes > 1 ? " or similar" : "");
  return 1;
}

static size_t hello(uint8_t *buf, const char *tok, uint64_t sig, uint64_t np) {
  Dtrain__Ps__Hello h = DTRAIN__PS__HELLO__INIT;
  h.protocol = DT_PS_PROTOCOL_VERSION;
  h.worker_id = 990;
  h.signature = sig;
  h.token.data = (uint8_t *)(uintptr_t)tok;
  h.token.len = strlen(tok);
  h.num_params = np;
  h.num_servers = 1;
  return dt_ps_encode_head(DT_PS_HELLO, &h.base, 0, buf);
}

/* A model of its own for a fresh server: one tensor "w" of n floats, plain SGD. Appends
 * HELLO (as worker `id`) and INIT with values 1 to out (malloc'd, *len bytes); false
 * without memory. */
static bool own_model(uint32_t id, size_t n, uint8_t **out, size_t *len) {
  dt_param_info_t t = {.shape = dt_shape_1d((int)n), .count = n};
  snprintf(t.name, sizeof t.name, "w");
  dt_optim_config_t o = dt_optim_defaults(DT_OPT_SGD);
  uint64_t sig = dt_ps_signature(&t, 1, n, &o);
  uint8_t head[4096];
  Dtrain__Ps__Hello h = DTRAIN__PS__HELLO__INIT;
  h.protocol = DT_PS_PROTOCOL_VERSION;
  h.worker_id = id;
  h.signature = sig;
  h.token.data = (uint8_t *)(uintptr_t)token;
  h.token.len = strlen(token);
  h.num_params = n;
  h.num_servers = 1;
  size_t hlen = dt_ps_encode_head(DT_PS_HELLO, &h.base, 0, head);
  Dtrain__Ps__Tensor pt = DTRAIN__PS__TENSOR__INIT, *pts = &pt;
  uint32_t dim = (uint32_t)n;
  pt.name = t.name;
  pt.n_shape = 1;
  pt.shape = &dim;
  pt.count = n;
  Dtrain__Ps__Optimizer po = DTRAIN__PS__OPTIMIZER__INIT;
  po.kind = DT_OPT_SGD;
  po.momentum = o.momentum;
  po.nesterov = o.nesterov;
  po.beta1 = o.beta1;
  po.beta2 = o.beta2;
  po.rho = o.rho;
  po.epsilon = o.eps;
  po.weight_decay = o.weight_decay;
  Dtrain__Ps__Init in = DTRAIN__PS__INIT__INIT;
  in.signature = sig;
  in.num_params = n;
  in.num_servers = 1;
  in.n_tensors = 1;
  in.tensors = &pts;
  in.optimizer = &po;
  float *ones = malloc(n * sizeof *ones);
  uint8_t *init;
  size_t ilen;
  dt_error_t err;
  if (!ones) return false;
  for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
  int rc = dt_ps_encode_alloc(DT_PS_INIT, &in.base, ones, n, &init, &ilen, &err);
  free(ones);
  if (rc || !(*out = malloc(hlen + ilen))) {
    if (!rc) free(init);
    return false;
  }
  memcpy(*out, head, hlen);
  memcpy(*out + hlen, init, ilen);
  *len = hlen + ilen;
  free(init);
  return true;
}

/* Sends data[i] (len[i] bytes) on fds[i], all at once: whatever each socket takes, as
 * it takes it, so that a server that stops reading one connection for a while does not
 * hold up the others. False if a connection fails or nothing moves for 30 s. */
static bool send_many(const int *fds, uint8_t *const *data, const size_t *len, int k) {
  size_t done[64] = {0};
  for (;;) {
    struct pollfd pf[64];
    int waiting = 0;
    for (int i = 0; i < k; i++) {
      pf[i] = (struct pollfd){.fd = done[i] < len[i] ? fds[i] : -1, .events = POLLOUT};
      waiting += done[i] < len[i];
    }
    if (!waiting) return true;
    if (poll(pf, (nfds_t)k, 30000) <= 0) return false;
    for (int i = 0; i < k; i++) {
      if (!(pf[i].revents & (POLLOUT | POLLERR | POLLHUP))) continue;
      ssize_t w = send(fds[i], data[i] + done[i], len[i] - done[i], MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (w > 0) done[i] += (size_t)w;
    }
  }
}

/* Reads frames on fd until one of `type`; its version for PARAMS. False on an ERROR or
 * the end of the stream. */
static bool read_until(int fd, int type, uint64_t *version) {
  dt_ps_reader_t r;
  dt_error_t err;
  bool found = false, over = false;
  if (dt_ps_reader_init(&r, 256u << 20, &err)) return false;
  while (!found && !over) {
    uint8_t *p;
    size_t space;
    if (dt_ps_reader_space(&r, &p, &space, &err)) break;
    ssize_t n = recv(fd, p, space, 0);
    if (n <= 0) break;
    dt_ps_reader_commit(&r, (size_t)n);
    int t, c;
    const uint8_t *body;
    size_t len;
    while (!found && dt_ps_reader_next(&r, &t, &body, &len, &c, &err) == 1) {
      if (t == DT_PS_ERROR) over = true;
      if (t != type) continue;
      dt_ps_msg_t m;
      if (dt_ps_decode(t, body, len, &m, &c, &err)) break;
      if (t == DT_PS_PARAMS) *version = m.m.params->version;
      dt_ps_msg_free(&m);
      found = true;
    }
  }
  dt_ps_reader_free(&r);
  return found;
}

/* HELLO as worker `id` of the model that own_model's frames (hi) describe. */
static size_t rehello(const uint8_t *hi, uint32_t id, uint8_t *out) {
  size_t len = (size_t)hi[0] << 24 | (size_t)hi[1] << 16 | (size_t)hi[2] << 8 | hi[3];
  Dtrain__Ps__Hello *h = dtrain__ps__hello__unpack(NULL, len - 1, hi + DT_PS_HEADER_BYTES);
  if (!h) return 0;
  h->worker_id = id;
  size_t n = dt_ps_encode_head(DT_PS_HELLO, &h->base, 0, out);
  dtrain__ps__hello__free_unpacked(h, NULL);
  return n;
}

/* A connection that initializes a fresh server with own_model(id, floats) and has seen
 * it done (the PARAMS of a PULL: data before INIT would be refused). Returns its fd
 * and the HELLO and INIT frames in *hi (malloc'd), or -1. */
static int start_own(uint32_t id, size_t floats, uint8_t **hi) {
  uint8_t pull[64];
  size_t hilen;
  Dtrain__Ps__Pull p = DTRAIN__PS__PULL__INIT;
  size_t plen = dt_ps_encode_head(DT_PS_PULL, &p.base, 0, pull);
  int fd = connect_server();
  if (fd < 0 || !own_model(id, floats, hi, &hilen)) return -1;
  if (send_all(fd, *hi, hilen) != 0 || send_all(fd, pull, plen) != 0 ||
      !read_until(fd, DT_PS_PARAMS, &(uint64_t){0})) {
    close(fd);
    return -1;
  }
  return fd;
}

static int case_random(void) {
  static const int codes[] = {BAD_TOO_LARGE, BAD_TYPE, BAD_MSG, BAD_PROTO, BAD_TRUNC, BAD_TOK};
  uint64_t s = 0x9e3779b97f4a7c15ULL;
  int failures = 0;
  for (int round = 0; round < 8; round++) {
    uint8_t buf[4096];
    size_t n = 16 + (size_t)(s % 4000);
    for (size_t i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      buf[i] = (uint8_t)s;
    }
    /* Every other stream is one whole frame of a real type with a random body, so
     * that the body's decoding is attacked too, not only the header's checks. */
    if (round % 2) {
      uint32_t len = (uint32_t)n - 4;
      buf[0] = (uint8_t)(len >> 24);
      buf[1] = (uint8_t)(len >> 16);
      buf[2] = (uint8_t)(len >> 8);
      buf[3] = (uint8_t)len;
      buf[4] = (uint8_t)(DT_PS_HELLO + s % 9);
    }
    char name[32];
    snprintf(name, sizeof name, "random[%d]", round);
    failures += expect(name, connect_server(), buf, n, true, codes, 6);
  }
  return failures;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s HOST PORT CASE [TOKEN SIGNATURE_HEX NUM_PARAMS]\n", argv[0]);
    return 2;
  }
  host = argv[1];
  port = argv[2];
  const char *c = argv[3];
  if (argc > 4) token = argv[4];
  if (argc > 6) {
    token = argv[4];
    signature = strtoull(argv[5], NULL, 16);
    num_params = strtoull(argv[6], NULL, 10);
  }
  uint8_t buf[4096];
  size_t n;
  if (!strcmp(c, "random")) return case_random();
  if (!strcmp(c, "truncated")) {
    /* A HELLO whose header promises more bytes than ever come. */
    n = hello(buf, token, signature, num_params);
    buf[3] = (uint8_t)(buf[3] + 40);
    return expect(c, connect_server(), buf, n, true, (const int[]){BAD_TRUNC}, 1);
  }
  if (!strcmp(c, "huge")) {
    /* A length prefix of 4 GiB - 1: refused from the header alone. */
    const uint8_t h[5] = {0xff, 0xff, 0xff, 0xff, DT_PS_PUSH};
    return expect(c, connect_server(), h, 5, false, (const int[]){BAD_TOO_LARGE}, 1);
  }
  if (!strcmp(c, "unknown_type")) {
    const uint8_t h[7] = {0, 0, 0, 3, 77, 0x08, 0x01};
    return expect(c, connect_server(), h, 7, false, (const int[]){BAD_TYPE}, 1);
  }
  if (!strcmp(c, "no_hello")) {
    const uint8_t h[7] = {0, 0, 0, 3, DT_PS_PULL, 0x08, 0x01};
    return expect(c, connect_server(), h, 7, false, (const int[]){BAD_PROTO}, 1);
  }
  if (!strcmp(c, "bad_token")) {
    n = hello(buf, "not-the-token", signature, num_params);
    return expect(c, connect_server(), buf, n, false, (const int[]){BAD_TOK}, 1);
  }
  if (!strcmp(c, "bad_signature")) {
    n = hello(buf, token, signature ^ 0x5a5a, num_params);
    return expect(c, connect_server(), buf, n, false, (const int[]){BAD_SIG}, 1);
  }
  if (!strcmp(c, "bad_shard")) {
    n = hello(buf, token, signature, num_params + 1);
    return expect(c, connect_server(), buf, n, false, (const int[]){BAD_SHARD}, 1);
  }
  if (!strcmp(c, "unread")) {
    /* A member that asks for the parameters again and again and reads none of them
     * until the server must have given up on it. Reading at once, a client with a core
     * of its own could take the answers as fast as the server writes them: nothing
     * would queue up, the server would rightly never reach ps.max_buffered_mb, answer
     * every pull, and drop the member as silent later (TIMEOUT). Half a second is far
     * more than the server needs to queue 4 MB, and less than the 2 s it gives a
     * failed connection to read its ERROR. */
    int fd = connect_server();
    n = hello(buf, token, signature, num_params);
    Dtrain__Ps__Pull p = DTRAIN__PS__PULL__INIT;
    for (int i = 0; i < 400; i++) {
      p.clock = 1;
      n += dt_ps_encode_head(DT_PS_PULL, &p.base, 0, buf + n);
      if (n > sizeof buf - 32) break;
    }
    if (fd >= 0 && send_all(fd, buf, n) == 0) nanosleep(&(struct timespec){0, 500000000L}, NULL);
    return expect(c, fd, NULL, 0, false, (const int[]){BAD_BUF}, 1);
  }
  if (!strcmp(c, "too_many")) {
    /* Connections that stay open until the server refuses one. */
    int fds[256], k = 0, rc = 1;
    for (; k < 256; k++) {
      fds[k] = connect_server();
      struct pollfd pf = {.fd = fds[k], .events = POLLIN};
      if (fds[k] < 0) break;
      if (poll(&pf, 1, 200) > 0) {
        rc = expect(c, fds[k], NULL, 0, false, (const int[]){BAD_MANY}, 1);
        break;
      }
    }
    for (int i = 0; i < k; i++) close(fds[i]);
    return rc;
  }
  if (!strcmp(c, "idle")) {
    /* Connected, and silent: closed after ps.heartbeat_timeout_s. */
    return expect(c, connect_server(), NULL, 0, false, (const int[]){BAD_TIME}, 1);
  }
  if (!strcmp(c, "nan_push")) {
    /* A push of {1, NaN, 1, 1}: refused, and nothing of it applied. */
    uint8_t *hi;
    size_t hilen;
    float g[4] = {1.0f, NAN, 1.0f, 1.0f};
    Dtrain__Ps__Push p = DTRAIN__PS__PUSH__INIT;
    p.clock = 1;
    p.lr = 1.0f;
    p.steps = 1;
    uint8_t *pf;
    size_t plen;
    dt_error_t err;
    if (!own_model(991, 4, &hi, &hilen)) return 1;
    if (dt_ps_encode_alloc(DT_PS_PUSH, &p.base, g, 4, &pf, &plen, &err)) return 1;
    uint8_t *all = malloc(hilen + plen);
    if (!all) return 1;
    memcpy(all, hi, hilen);
    memcpy(all + hilen, pf, plen);
    int rc = expect(c, connect_server(), all, hilen + plen, false, (const int[]){BAD_MSG}, 1);
    free(all);
    free(hi);
    free(pf);
    return rc;
  }
  if (!strcmp(c, "throwaway")) {
    /* Clients that join and leave without a push, 50 ms apart: they must not stall the
     * SSP and sync waits of the real workers (issue 14, defect 7). */
    int count = argc > 7 ? atoi(argv[7]) : 20, welcomed = 0;
    for (int i = 0; i < count; i++) {
      int fd = connect_server();
      if (fd < 0) break;
      Dtrain__Ps__Hello h = DTRAIN__PS__HELLO__INIT;
      h.protocol = DT_PS_PROTOCOL_VERSION;
      h.worker_id = 2000u + (uint32_t)i;
      h.signature = signature;
      h.token.data = (uint8_t *)(uintptr_t)token;
      h.token.len = strlen(token);
      h.num_params = num_params;
      h.num_servers = 1;
      n = dt_ps_encode_head(DT_PS_HELLO, &h.base, 0, buf);
      uint8_t in[256];
      if (send_all(fd, buf, n) == 0 && recv(fd, in, sizeof in, 0) > DT_PS_HEADER_BYTES &&
          in[4] == DT_PS_WELCOME)
        welcomed++;
      close(fd);
      nanosleep(&(struct timespec){0, 50000000L}, NULL);
    }
    printf("throwaway: %d of %d clients welcomed\n", welcomed, count);
    return welcomed == count ? 0 : 1;
  }
  if (!strcmp(c, "big_before_hello") && argc > 5) {
    /* Frames of MB MiB on N connections at once, before any HELLO: a server that took
     * them would hold N x MB MiB (issue 14, defect 6). */
    size_t mb = strtoul(argv[4], NULL, 10), len = mb << 20;
    int k = atoi(argv[5]), failures = 0;
    if (k < 1 || k > 256 || mb < 1 || mb > 1024) return 2;
    int fds[256];
    bool dead[256] = {false};
    uint8_t h[5] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
                    DT_PS_PUSH};
    static uint8_t zeros[256 << 10];
    struct timeval tv = {5, 0};
    for (int i = 0; i < k; i++) {
      fds[i] = connect_server();
      if (fds[i] < 0) return 1;
      setsockopt(fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      dead[i] = send_all(fds[i], h, sizeof h) != 0;
    }
    /* Round robin, so that every frame is under way before any is complete. */
    for (size_t sent = 1; sent < len; sent += sizeof zeros)
      for (int i = 0; i < k; i++) {
        size_t piece = len - sent < sizeof zeros ? len - sent : sizeof zeros;
        if (!dead[i] && send_all(fds[i], zeros, piece) != 0) dead[i] = true;
      }
    for (int i = 0; i < k; i++) {
      char name[48];
      snprintf(name, sizeof name, "big_before_hello[%d]", i);
      failures += expect(name, fds[i], NULL, 0, false, (const int[]){BAD_TOO_LARGE}, 1);
    }
    return failures ? 1 : 0;
  }
  if (!strcmp(c, "unread_many") && argc > 5) {
    /* Members that ask for the parameters again and again and read none of them: the
     * server must close them before their replies take more than ps.max_memory_mb. */
    int k = atoi(argv[4]), closed = 0;
    size_t floats = strtoul(argv[5], NULL, 10);
    if (k < 1 || k > 64 || floats < 1) return 2;
    uint8_t *hi;
    int first = start_own(3000, floats, &hi);
    if (first < 0) return 1;
    int fds[64];
    for (int i = 0; i < k; i++) {
      fds[i] = connect_server();
      if (fds[i] < 0) return 1;
      size_t m = rehello(hi, 3001u + (uint32_t)i, buf);
      if (!m) return 1;
      Dtrain__Ps__Pull p = DTRAIN__PS__PULL__INIT;
      p.clock = 1;
      while (m < sizeof buf - 32) m += dt_ps_encode_head(DT_PS_PULL, &p.base, 0, buf + m);
      if (send_all(fds[i], buf, m) != 0) return 1;
    }
    nanosleep(&(struct timespec){1, 0}, NULL);
    for (int i = 0; i < k; i++) {
      char msg[1024];
      bool end;
      int code = read_error(fds[i], msg, sizeof msg, &end);
      close(fds[i]);
      closed += end;
      printf("unread_many[%d]: %s%s%s\n", i, end ? "closed" : "NOT closed",
             code >= 0 ? " after ERROR " : "", code >= 0 ? dt_ps_error_name(code) : "");
    }
    close(first);
    free(hi);
    return closed == k ? 0 : 1;
  }
  if (!strcmp(c, "push_many") && argc > 5) {
    /* Members whose pushes together exceed what the server may hold at once: they wait
     * their turn (the server stops reading a connection until memory frees) and every
     * one is applied. */
    int k = atoi(argv[4]), got = 0;
    size_t floats = strtoul(argv[5], NULL, 10);
    if (k < 1 || k > 64 || floats < 1) return 2;
    uint8_t *hi;
    int first = start_own(3100, floats, &hi);
    if (first < 0) return 1;
    float *g = malloc(floats * sizeof *g);
    int fds[64];
    uint8_t *frames[64];
    size_t lens[64];
    if (!g) return 1;
    for (size_t i = 0; i < floats; i++) g[i] = 1.0f;
    for (int i = 0; i < k; i++) {
      Dtrain__Ps__Push p = DTRAIN__PS__PUSH__INIT;
      p.clock = 1;
      p.lr = 0.5f;
      p.steps = 1;
      uint8_t *pf;
      size_t plen;
      dt_error_t err;
      size_t hl = rehello(hi, 3101u + (uint32_t)i, buf);
      if ((fds[i] = connect_server()) < 0 || !hl ||
          dt_ps_encode_alloc(DT_PS_PUSH, &p.base, g, floats, &pf, &plen, &err) ||
          !(frames[i] = malloc(hl + plen)))
        return 1;
      memcpy(frames[i], buf, hl);
      memcpy(frames[i] + hl, pf, plen);
      lens[i] = hl + plen;
      free(pf);
    }
    bool sent = send_many(fds, frames, lens, k);
    uint64_t version = 0;
    for (int i = 0; i < k && sent; i++) {
      Dtrain__Ps__Pull p = DTRAIN__PS__PULL__INIT;
      p.clock = 2;
      size_t n = dt_ps_encode_head(DT_PS_PULL, &p.base, 0, buf);
      got += send_all(fds[i], buf, n) == 0 && read_until(fds[i], DT_PS_PARAMS, &version);
    }
    for (int i = 0; i < k; i++) {
      close(fds[i]);
      free(frames[i]);
    }
    close(first);
    free(hi);
    free(g);
    printf("push_many: %d of %d members pushed and pulled; version %llu\n", got, k,
           (unsigned long long)version);
    return got == k ? 0 : 1;
  }
  fprintf(stderr, "unknown case '%s'\n", c);
  return 2;
}
