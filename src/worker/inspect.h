/* dtrain-worker --inspect: verifies a checkpoint and prints what it holds. */
#ifndef DTRAIN_WORKER_INSPECT_H
#define DTRAIN_WORKER_INSPECT_H

#include <stdbool.h>
#include <stdio.h>

#include "dtrain/error.h"

/* True if path is one checkpoint's directory (it has a manifest), not a root. */
bool inspect_is_checkpoint(const char *path);

/* Verifies the checkpoint at path (a checkpoint directory, or a root: its newest good
 * one) and prints its manifest, position, tensors with statistics, optimizer and rank
 * state, and the run config it was trained with. */
int inspect_checkpoint(FILE *out, const char *path, dt_error_t *err);

#endif
