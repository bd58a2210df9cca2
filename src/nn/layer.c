/* Parameter declaration and the registry of layer types. */
#include "dtrain/layer.h"

#include <stdio.h>
#include <string.h>

extern const dt_layer_ops_t dt_layer_dense, dt_layer_relu, dt_layer_leaky_relu, dt_layer_sigmoid,
    dt_layer_tanh, dt_layer_softmax, dt_layer_dropout;
extern const dt_layer_ops_t dt_layer_batch_norm;
extern const dt_layer_ops_t dt_layer_conv1d, dt_layer_conv2d, dt_layer_conv2d_transpose,
    dt_layer_max_pool2d, dt_layer_avg_pool2d, dt_layer_global_avg_pool, dt_layer_global_max_pool,
    dt_layer_flatten, dt_layer_reshape;
extern const dt_layer_ops_t dt_layer_embedding, dt_layer_simple_rnn, dt_layer_lstm, dt_layer_gru,
    dt_layer_bidirectional;
extern const dt_layer_ops_t dt_layer_add, dt_layer_subtract, dt_layer_multiply, dt_layer_average,
    dt_layer_maximum, dt_layer_concatenate, dt_layer_upsampling2d, dt_layer_zero_padding2d;

/* Adding a layer type: write layers/<type>.c defining its ops, and list it here. */
static const dt_layer_ops_t *const registry[] = {
    &dt_layer_dense,   &dt_layer_relu,    &dt_layer_leaky_relu, &dt_layer_sigmoid,
    &dt_layer_tanh,    &dt_layer_softmax, &dt_layer_dropout,
    &dt_layer_batch_norm,
    &dt_layer_conv1d,     &dt_layer_conv2d,          &dt_layer_conv2d_transpose,
    &dt_layer_max_pool2d, &dt_layer_avg_pool2d,      &dt_layer_global_avg_pool,
    &dt_layer_global_max_pool, &dt_layer_flatten,    &dt_layer_reshape,
    &dt_layer_embedding, &dt_layer_simple_rnn, &dt_layer_lstm, &dt_layer_gru,
    &dt_layer_bidirectional,
    &dt_layer_add, &dt_layer_subtract, &dt_layer_multiply, &dt_layer_average, &dt_layer_maximum,
    &dt_layer_concatenate, &dt_layer_upsampling2d, &dt_layer_zero_padding2d,
};

void dt_layer_declare_param(dt_layer_t *l, const char *suffix, dt_shape_t shape,
                            dt_init_kind init, int fan_in, int fan_out, bool decay) {
  dt_param_info_t *p = &l->param_decl[l->nparams++];
  /* 31 + 1 + 31 fits DT_NAME_MAX: "bidirectional_1.backward_recurrent_kernel" whole. */
  snprintf(p->name, sizeof p->name, "%s.%.31s", l->name, suffix);
  p->shape = shape;
  p->count = dt_shape_size(&shape);
  p->init = init;
  p->fan_in = fan_in;
  p->fan_out = fan_out;
  p->decay = decay;
}

void dt_layer_declare_state(dt_layer_t *l, const char *suffix, dt_shape_t shape,
                            dt_init_kind init) {
  dt_param_info_t *p = &l->state_decl[l->nstates++];
  snprintf(p->name, sizeof p->name, "%s.%.24s", l->name, suffix);
  p->shape = shape;
  p->count = dt_shape_size(&shape);
  p->init = init;
}

int dt_layer_get_init(dt_config_t *cfg, const char *section, const char *key, dt_init_kind def,
                      dt_init_kind *out, dt_error_t *err) {
  int idx;
  int rc = dt_config_get_choice(cfg, section, key, dt_init_names[def], dt_init_names, &idx, err);
  if (rc == 0) *out = (dt_init_kind)idx;
  return rc;
}

const dt_layer_ops_t *dt_layer_find(const char *type) {
  for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
    if (strcmp(registry[i]->type, type) == 0) return registry[i];
  return NULL;
}

const char *dt_layer_type_list(char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof registry / sizeof registry[0] && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, i ? ", %s" : "%s", registry[i]->type);
  return buf;
}
