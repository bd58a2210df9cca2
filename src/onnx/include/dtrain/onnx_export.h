/* Export of a built model to an ONNX file (opset 17), for ONNX Runtime and every other
 * ONNX reader. The graph takes one float input "input" of shape (batch, per-sample
 * input shape), channels-last as dtrain's data are, and gives one output "output" of
 * shape (batch, per-sample output shape): for a cross-entropy loss the probabilities
 * (dtrain's models give logits and the loss applies the softmax or sigmoid, whether the
 * config ends with that layer or not; the file applies it), as predict gives them, and
 * otherwise the model's output as it is. Dropout is left out;
 * batch norm is exported in its inference form (moving statistics). docs/onnx.md lists
 * the operators each layer type becomes. */
#ifndef DTRAIN_ONNX_EXPORT_H
#define DTRAIN_ONNX_EXPORT_H

#include "dtrain/error.h"
#include "dtrain/model.h"

enum { DT_ONNX_OPSET = 17 };

/* Writes model m with parameters `params` (m->num_params floats, host memory, in the
 * model's buffer order) and states `states` (m->num_states floats; may be NULL when
 * there are none) to `path`, through a temporary file renamed into place, so a failed
 * export leaves no partial file. Errors: DT_ERR_CONFIG for a layer type the exporter
 * does not know, DT_ERR_IO naming the path, DT_ERR_NOMEM. */
int dt_onnx_export(const dt_model_t *m, const float *params, const float *states,
                   const char *path, dt_error_t *err);

#endif
