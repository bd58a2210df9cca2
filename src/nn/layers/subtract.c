/* Subtract: y = x_1 - x_2 (Keras' Subtract), exactly 2 inputs of one shape. */
#include "merge_common.h"

DT_MERGE_LAYER(dt_layer_subtract, "subtract", DT_MERGE_SUBTRACT, 2, 2, true);
