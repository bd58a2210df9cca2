/* `dtrain-worker evaluate`: a trained model's loss and metrics on a dataset, by default
 * the test split its own config names. */
#ifndef DTRAIN_WORKER_CMD_EVALUATE_H
#define DTRAIN_WORKER_CMD_EVALUATE_H

/* argv[0] is "evaluate"; returns the exit status. */
int cmd_evaluate_main(int argc, char **argv);

#endif
