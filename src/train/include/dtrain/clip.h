/* Gradient clipping by global norm, as Keras' global_clipnorm (tf.clip_by_global_norm).
 *
 * The trainer clips the averaged gradients after the exchange and before the
 * optimizer, so every rank clips the same vector the same way. */
#ifndef DTRAIN_CLIP_H
#define DTRAIN_CLIP_H

#include <stddef.h>

/* The L2 norm of grads[0..n) (summed in double, in a fixed order, so every rank and every
 * CPU gets the same bits); if it exceeds max_norm > 0 the vector is scaled in place by
 * max_norm / norm, as tf.clip_by_global_norm does. Returns the norm before clipping
 * (NaN or infinity pass through unclipped, for the caller to report). Call it on the
 * averaged gradients, after the exchange, so that all ranks clip alike. */
double dt_clip_by_global_norm(float *grads, size_t n, float max_norm);

#endif
