/* Maximum: y = max(x_1, ..., x_k) element-wise (Keras' Maximum), 2 to 8 inputs of one
 * shape. Where inputs tie, the whole gradient goes to the first of them (backward reads
 * the inputs and the output to find it). */
#include "merge_common.h"

DT_MERGE_LAYER(dt_layer_maximum, "maximum", DT_MERGE_MAXIMUM, 2, DT_MAX_MERGE_INPUTS, false);
