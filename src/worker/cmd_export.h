/* `dtrain-worker export`: a saved model (or checkpoint) written out in another format. */
#ifndef DTRAIN_WORKER_CMD_EXPORT_H
#define DTRAIN_WORKER_CMD_EXPORT_H

/* argv[0] is "export". Returns the exit status: 0, 1 (the export failed: a corrupt
 * model, a file that cannot be written) or 2 (bad usage, a folder that is not a model,
 * an unknown output format). */
int cmd_export(int argc, char **argv);

#endif
