/* `dtrain-worker generate`: samples from a trained generative model (a VAE's decoder
 * on draws from its prior, or a generator whose input is the latent vector), written
 * to a .npy file in the data's shape with values in [0, 1]. */
#ifndef DTRAIN_WORKER_CMD_GENERATE_H
#define DTRAIN_WORKER_CMD_GENERATE_H

/* argv[0] is "generate"; returns the exit status. */
int cmd_generate_main(int argc, char **argv);

#endif
