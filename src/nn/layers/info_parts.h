/* The private settings of layers whose state struct is local to their own file, for
 * layer_info.c (private to the layers folder). */
#ifndef DTRAIN_LAYERS_INFO_PARTS_H
#define DTRAIN_LAYERS_INFO_PARTS_H

#include "dtrain/layer.h"

/* dtrain/layer_info.h's type, declared here only: that header's module includes this one. */
struct dt_layer_info;

void dt_batch_norm_info(const dt_layer_t *l, struct dt_layer_info *out);
void dt_bidirectional_info(const dt_layer_t *l, struct dt_layer_info *out);

#endif
