/* libFuzzer target for the Keras import's architecture reader (src/keras/keras_config.c):
 * a .keras file's config.json, or a to_json() file, comes from anyone.
 *
 * Input: JSON text. A tree that parses is mapped with dt_keras_map_config; on success
 * the config text it wrote must itself parse as a dtrain config, name an input of 1 to
 * 3 positive sizes, and every weight source must be a layers/... path or empty (zeros);
 * on failure the message must be set. Nothing may crash, read out of bounds, or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"
#include "dtrain/json.h"
#include "keras_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dt_error_t err = {0};
  dt_json_t *root = NULL;
  if (dt_json_parse((const char *)data, size, "fuzz.json", &root, &err)) return 0;
  dt_keras_map_t map;
  int rc = dt_keras_map_config(root, "fuzz.json", &map, &err);
  if (rc) {
    if (!err.msg[0]) abort();
  } else {
    if (!map.ini || map.input_ndim < 1 || map.input_ndim > 3) abort();
    for (int i = 0; i < map.input_ndim; i++)
      if (map.input[i] < 1) abort();
    for (int i = 0; i < map.nparams + map.nstates; i++) {
      const char *p = i < map.nparams ? map.params[i].path : map.states[i - map.nparams].path;
      if (p[0] && strncmp(p, "layers/", 7) != 0) abort();
    }
    dt_config_t *cfg = dt_config_new();
    dt_error_t cerr = {0};
    /* Layer names come from the file: a name with a newline could add a section. The
     * config must still parse (or be refused with a message), never crash. */
    if (dt_config_load_string(cfg, map.ini, "imported", &cerr) && !cerr.msg[0]) abort();
    dt_config_free(cfg);
    dt_keras_map_free(&map);
  }
  dt_json_free(root);
  return 0;
}
