/* Shared by upsampling2d and zero_padding2d: reading a 1-, 2- or 4-number key the way
 * Keras' tuples are written, and checking for an (h, w, c) input. */
#ifndef DTRAIN_RESIZE2D_COMMON_H
#define DTRAIN_RESIZE2D_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "dtrain/layer.h"

/* The input must be images (h, w, c); `what` names the layer type in the message. */
static inline int dt_resize2d_check_input(const dt_layer_t *l, dt_config_t *cfg,
                                          const char *section, dt_error_t *err) {
  if (l->in_shape.ndim == 3) return 0;
  char s[64];
  return dt_error_set(err, DT_ERR_SHAPE, "%s: [%s] %s needs (height, width, channels) inputs, got %s",
                      dt_config_where(cfg, section, "type"), section, l->ops->type,
                      dt_shape_str(&l->in_shape, s, sizeof s));
}

/* key as 1 number (all of out), or counts[k] numbers for k in 1..nforms; *count is how
 * many were given. Values are >= min (the list getter itself wants positive numbers, so
 * a 0 is read as text here). */
static inline int dt_resize2d_get_list(dt_config_t *cfg, const char *section, const char *key,
                                       const char *def, int min, const int *forms, int nforms,
                                       int *out, int *count, dt_error_t *err) {
  const char *text;
  int rc = dt_config_get_string(cfg, section, key, def, &text, err);
  if (rc) return rc;
  int n = 0;
  const char *p = text;
  for (;;) {
    char *end;
    long v = strtol(p, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    if (end == p || v < min || v > 4096 || n == 4 || (*end && *end != ','))
      return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] %s = '%s': expected whole numbers >= %d "
                          "separated by commas",
                          dt_config_where(cfg, section, key), section, key, text, min);
    out[n++] = (int)v;
    if (!*end) break;
    p = end + 1;
  }
  for (int f = 0; f < nforms; f++)
    if (n == forms[f]) {
      *count = n;
      return 0;
    }
  char list[32] = "";
  size_t used = 0;
  for (int f = 0; f < nforms; f++)
    used += (size_t)snprintf(list + used, sizeof list - used, f ? " or %d" : "%d", forms[f]);
  return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] %s = '%s' has %d numbers, expected %s",
                      dt_config_where(cfg, section, key), section, key, text, n, list);
}

#endif
