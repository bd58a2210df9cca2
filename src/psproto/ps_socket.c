/* TCP settings of PS connections, the same on both sides (see ps.h). */
#define _POSIX_C_SOURCE 200809L
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "dtrain/ps.h"

void dt_ps_socket_liveness(int fd, double timeout_s) {
  /* Keepalive probes on an idle connection: the first after half the timeout, then
   * three more within the other half. TCP_USER_TIMEOUT bounds how long sent data may
   * stay unacknowledged (probes included) before the kernel gives up on the peer.
   * Failures are ignored: these only make a dead peer show sooner. */
  int one = 1, idle = (int)(timeout_s / 2), intvl = (int)(timeout_s / 6), cnt = 3;
  unsigned ms = (unsigned)(timeout_s * 1000.0);
  if (idle < 1) idle = 1;
  if (intvl < 1) intvl = 1;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
#ifdef TCP_USER_TIMEOUT
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
#else
  (void)ms;
#endif
}
