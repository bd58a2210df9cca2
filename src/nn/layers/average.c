/* Average: y = (x_1 + ... + x_k) / k (Keras' Average), 2 to 8 inputs of one shape. */
#include "merge_common.h"

DT_MERGE_LAYER(dt_layer_average, "average", DT_MERGE_AVERAGE, 2, DT_MAX_MERGE_INPUTS, true);
