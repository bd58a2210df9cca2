/* Shared build step of the element-wise activation layers: output shape = input shape. */
#ifndef DTRAIN_ACTIVATION_COMMON_H
#define DTRAIN_ACTIVATION_COMMON_H

#include "dtrain/layer.h"

static inline int dt_activation_build(dt_layer_t *l, dt_config_t *cfg, const char *section,
                                      dt_error_t *err) {
  (void)cfg;
  (void)section;
  (void)err;
  l->out_shape = l->in_shape;
  return 0;
}

#endif
