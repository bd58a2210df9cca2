/* Multiply: y = x_1 x_2 ... element-wise (Keras' Multiply), 2 to 8 inputs of one shape;
 * backward reads the inputs (each gradient is dy times the others). */
#include "merge_common.h"

DT_MERGE_LAYER(dt_layer_multiply, "multiply", DT_MERGE_MULTIPLY, 2, DT_MAX_MERGE_INPUTS, false);
