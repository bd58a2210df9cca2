/* `dtrain-worker import --keras FILE -o OUTDIR`: a Keras model as a dtrain model config
 * and its initial weights. */
#ifndef DTRAIN_WORKER_CMD_IMPORT_H
#define DTRAIN_WORKER_CMD_IMPORT_H

/* argv[0] is "import"; returns the exit status. */
int cmd_import_main(int argc, char **argv);

#endif
