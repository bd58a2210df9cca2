/* Signal handlers for preemption (see preempt.h). */
#define _POSIX_C_SOURCE 200809L
#include "preempt.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t received;

static void on_signal(int sig) {
  if (received) {
    /* The second signal: the user (or the system) does not want to wait. Only
     * async-signal-safe calls here. */
    static const char msg[] = "\ndtrain-worker: second signal, exiting without a checkpoint\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(128 + sig);
  }
  received = sig;
}

void preempt_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  /* Restart interrupted system calls: the signal only sets a flag the loop polls. */
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
}

int preempt_signal(void) { return received; }
