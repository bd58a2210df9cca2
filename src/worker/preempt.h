/* Preemption by signal: SIGTERM and SIGINT (what Slurm, Kubernetes and Ctrl-C send
 * before a job is killed) and SIGUSR1 ask the trainer to finish its current step,
 * write a checkpoint and exit 0. A second signal ends the process at once.
 *
 * SIGUSR1 is there for mpirun: Open MPI's mpirun treats a SIGTERM of its own as
 * "abort the job" (the ranks are killed), but forwards SIGUSR1 to every rank. Slurm
 * can send it ahead of a time limit too (sbatch --signal=B:USR1@120). */
#ifndef DTRAIN_WORKER_PREEMPT_H
#define DTRAIN_WORKER_PREEMPT_H

/* Installs the handlers. */
void preempt_install(void);

/* The first signal received (SIGTERM, SIGINT, SIGUSR1), or 0. */
int preempt_signal(void);

#endif
