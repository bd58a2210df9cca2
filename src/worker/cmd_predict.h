/* `dtrain-worker predict`: a trained model's outputs (probabilities, classes or values)
 * for every sample of an input file, written to .npy or .csv. */
#ifndef DTRAIN_WORKER_CMD_PREDICT_H
#define DTRAIN_WORKER_CMD_PREDICT_H

/* argv[0] is "predict"; returns the exit status. */
int cmd_predict_main(int argc, char **argv);

#endif
