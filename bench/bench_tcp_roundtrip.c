/* The raw TCP loopback baseline for bench_ps_roundtrip: the same bytes per round (N
 * floats out, N floats back) between two threads over a 127.0.0.1 connection with
 * blocking sockets and nothing else in the way: the best a round trip can do here.
 *
 * usage: bench_tcp_roundtrip N ROUNDS
 * prints: "tcp_roundtrip params=N rounds=R ms=M mbps=B" (both directions, 10^6 B/s). */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int listen_fd;
  size_t bytes;
  long rounds;
} echo_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int io_all(int fd, char *buf, size_t n, int writing) {
  while (n) {
    ssize_t r = writing ? write(fd, buf, n) : read(fd, buf, n);
    if (r <= 0) return -1;
    buf += r;
    n -= (size_t)r;
  }
  return 0;
}

/* The server side: reads a round's bytes, sends as many back. */
static void *echo_main(void *arg) {
  echo_t *e = arg;
  int fd = accept(e->listen_fd, NULL, NULL);
  char *buf = malloc(e->bytes);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (long r = 0; fd >= 0 && buf && r < e->rounds; r++)
    if (io_all(fd, buf, e->bytes, 0) || io_all(fd, buf, e->bytes, 1)) break;
  free(buf);
  if (fd >= 0) close(fd);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s NUM_PARAMS ROUNDS\n", argv[0]);
    return 2;
  }
  long n = atol(argv[1]), rounds = atol(argv[2]);
  if (n < 1 || rounds < 1) return 2;
  size_t bytes = (size_t)n * sizeof(float);
  echo_t e = {socket(AF_INET, SOCK_STREAM, 0), bytes, rounds + 2};
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (bind(e.listen_fd, (struct sockaddr *)&a, sizeof a) || listen(e.listen_fd, 1) ||
      getsockname(e.listen_fd, (struct sockaddr *)&a, &alen)) {
    perror("listen");
    return 1;
  }
  pthread_t th;
  pthread_create(&th, NULL, echo_main, &e);
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    perror("connect");
    return 1;
  }
  char *out = calloc(1, bytes), *in = malloc(bytes);
  double t0 = 0.0;
  int rc = out && in ? 0 : 1;
  for (long r = -2; rc == 0 && r < rounds; r++) {
    if (r == 0) t0 = now_s();
    rc = io_all(fd, out, bytes, 1) || io_all(fd, in, bytes, 0);
  }
  double secs = now_s() - t0;
  close(fd);
  pthread_join(th, NULL);
  close(e.listen_fd);
  free(out);
  free(in);
  if (rc) {
    fprintf(stderr, "bench_tcp_roundtrip: transfer failed\n");
    return 1;
  }
  printf("tcp_roundtrip params=%ld rounds=%ld ms=%.3f mbps=%.1f\n", n, rounds,
         1e3 * secs / (double)rounds, 2.0 * (double)bytes * (double)rounds / secs / 1e6);
  return 0;
}
