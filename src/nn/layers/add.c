/* Add: y = x_1 + x_2 + ... (Keras' Add), 2 to 8 inputs of one shape. */
#include "merge_common.h"

DT_MERGE_LAYER(dt_layer_add, "add", DT_MERGE_ADD, 2, DT_MAX_MERGE_INPUTS, true);
