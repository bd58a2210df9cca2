/* Losses and metrics. Every loss returns the mean over the batch and writes
 * dL/dout (already divided by the batch size) so backward can start from it.
 *
 * Model outputs are logits for the two cross-entropies (as PyTorch and Keras'
 * from_logits=True): the softmax/sigmoid is fused into the loss, which is both
 * faster and stable for large logits. */
#ifndef DTRAIN_LOSS_H
#define DTRAIN_LOSS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  DT_LOSS_SOFTMAX_CE, /* integer labels, "sparse_categorical_crossentropy" */
  DT_LOSS_BCE_LOGITS, /* float targets in [0,1], "binary_crossentropy" */
  DT_LOSS_MSE,        /* float targets, "mse" */
  DT_LOSS_MAE         /* float targets, "mae" */
} dt_loss_kind;

/* Config names indexed by dt_loss_kind, NULL-terminated. */
extern const char *const dt_loss_names[];

/* True if the loss takes integer class labels (otherwise float targets of the output's shape). */
int dt_loss_uses_labels(dt_loss_kind kind);

/* out: (batch, dim). labels: (batch) for label losses; targets: (batch, dim) otherwise.
 * dout may be NULL (evaluation). Returns the mean loss. */
double dt_loss_compute(dt_loss_kind kind, const float *out, int batch, int dim,
                       const int32_t *labels, const float *targets, float *dout);

/* Correct predictions in the batch: argmax == label for label losses, or elements with
 * (logit > 0) == (target > 0.5) for BCE (binary accuracy; *total gets batch * dim).
 * Returns 0 with *total 0 for regression losses, which have no accuracy. */
size_t dt_loss_count_correct(dt_loss_kind kind, const float *out, int batch, int dim,
                             const int32_t *labels, const float *targets, size_t *total);

#endif
