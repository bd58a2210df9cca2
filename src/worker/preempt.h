/* Preemption by signal: SIGTERM and SIGINT (what Slurm, Kubernetes and Ctrl-C send
 * before a job is killed) ask the trainer to finish its current step, write a
 * checkpoint and exit 0. A second signal ends the process at once. */
#ifndef DTRAIN_WORKER_PREEMPT_H
#define DTRAIN_WORKER_PREEMPT_H

/* Installs the handlers. */
void preempt_install(void);

/* The first signal received (SIGTERM, SIGINT), or 0. */
int preempt_signal(void);

#endif
