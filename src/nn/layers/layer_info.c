/* dt_layer_info: a built layer's settings from its private state, by layer type. */
#include <string.h>

#include "dtrain/layer_info.h"

#include "conv.h"
#include "info_parts.h"
#include "recurrent.h"

bool dt_layer_info(const dt_layer_t *l, dt_layer_info_t *out) {
  memset(out, 0, sizeof *out);
  out->gamma = out->beta = -1;
  const char *t = l->ops->type;
  if (!strcmp(t, "conv1d") || !strcmp(t, "conv2d") || !strcmp(t, "conv2d_transpose")) {
    const dt_conv_t *c = l->priv;
    out->geom = c->desc.g;
    out->use_bias = c->use_bias;
  } else if (!strcmp(t, "max_pool2d") || !strcmp(t, "avg_pool2d")) {
    out->geom = *(const dt_conv_geom_t *)l->priv;
  } else if (!strcmp(t, "simple_rnn") || !strcmp(t, "lstm") || !strcmp(t, "gru")) {
    const dt_rnn_cell_t *c = l->priv;
    out->rnn_kind = c->kind;
    out->units = c->units;
    out->return_sequences = c->return_sequences;
  } else if (!strcmp(t, "bidirectional")) {
    dt_bidirectional_info(l, out);
  } else if (!strcmp(t, "batch_norm")) {
    dt_batch_norm_info(l, out);
  } else if (!strcmp(t, "leaky_relu")) {
    out->alpha = *(const float *)l->priv;
  } else if (!strcmp(t, "concatenate")) {
    dt_concatenate_info(l, out);
  } else if (!strcmp(t, "upsampling2d") || !strcmp(t, "zero_padding2d")) {
    out->resize = *(const dt_resize2d_t *)l->priv;
  } else {
    static const char *const plain[] = {
        "dense", "dropout", "embedding", "flatten", "reshape", "global_avg_pool",
        "global_max_pool", "relu", "sigmoid", "tanh", "softmax", "sampling",
        /* the element-wise merges: their type says it all */
        "add", "subtract", "multiply", "average", "maximum", NULL};
    for (int i = 0; plain[i]; i++)
      if (!strcmp(t, plain[i])) return true;
    return false;
  }
  return true;
}
