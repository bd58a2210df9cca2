/* Reading the model's graph from the [layer.N] sections: names (given, or Keras-style
 * generated ones: dense_1, relu_1, ... counted by type in config order over all layers,
 * named or not, so a stack keeps the names it always had), inputs (given, or the previous section), and the checks of
 * a DAG, in the order a user would fix them. Then a topological order that keeps config
 * order wherever the graph allows (a stack stays as written). */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Layer types that `activation = ...` may name. */
static const char *const activation_layers[] = {"relu", "leaky_relu", "sigmoid", "tanh", "softmax",
                                                NULL};

/* At most this many sections (the model allows DT_MAX_LAYERS / 2) and so at most this
 * many layer types or sections on a cycle. */
enum { MAX_SECTIONS = 128 };

/* The name that stands for the model's input in `inputs`. */
static const char model_input_name[] = "input";

/* What resolve returns for a name that is nothing (below every model input index). */
enum { NOT_FOUND = -1000 };

void dt_graph_free(dt_graph_t *g) {
  free(g->nodes);
  free(g->order);
  memset(g, 0, sizeof *g);
}

/* The next generated name of a layer type: type_K, K counted over the layers so far. */
typedef struct {
  const dt_layer_ops_t *ops[MAX_SECTIONS];
  int count[MAX_SECTIONS];
  int n;
} type_counter_t;

static void generate_name(type_counter_t *tc, const dt_layer_ops_t *ops, char *out, size_t cap) {
  int i = 0;
  while (i < tc->n && tc->ops[i] != ops) i++;
  if (i == tc->n && tc->n < (int)(sizeof tc->ops / sizeof tc->ops[0])) {
    tc->ops[tc->n] = ops;
    tc->count[tc->n++] = 0;
  }
  snprintf(out, cap, "%s_%d", ops->type, ++tc->count[i]);
}

static bool valid_name(const char *s) {
  if (!*s || strlen(s) >= DT_NAME_MAX / 2) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_' || *p == '-' || *p == '.'))
      return false;
  return true;
}

/* The section whose output `name` stands for, a model input (DT_LAYER_MODEL_INPUT - j),
 * or NOT_FOUND. */
static int resolve(const dt_graph_t *g, const char *name) {
  if (g->nin == 0 && strcmp(name, model_input_name) == 0) return DT_LAYER_MODEL_INPUT;
  for (int j = 0; j < g->nin; j++)
    if (strcmp(name, g->in_names[j]) == 0) return DT_LAYER_MODEL_INPUT - j;
  for (int i = 0; i < g->n; i++) {
    const dt_graph_node_t *nd = &g->nodes[i];
    if (strcmp(nd->name, name) == 0 || strcmp(nd->section, name) == 0 ||
        (nd->act_ops && strcmp(nd->act_name, name) == 0))
      return i;
  }
  return NOT_FOUND;
}

int dt_graph_split_list(const char *text, char (*names)[DT_NAME_MAX], int max) {
  int n = 0;
  const char *p = text;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    const char *end = p;
    while (*end && *end != ',') end++;
    size_t len = (size_t)(end - p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    if (len == 0 || len >= DT_NAME_MAX || n == max) return -1;
    snprintf(names[n++], DT_NAME_MAX, "%.*s", (int)len, p);
    if (!*end) return n;
    p = end + 1;
  }
}

/* [model] inputs = a, b: the names of several model inputs (before any section's inputs
 * are resolved). */
static int read_model_inputs(dt_graph_t *g, dt_config_t *cfg, dt_error_t *err) {
  if (!dt_config_has_key(cfg, "model", "inputs")) return 0;
  const char *text;
  int rc = dt_config_get_string(cfg, "model", "inputs", "", &text, err);
  if (rc) return rc;
  g->is_graph = true;
  int n = dt_graph_split_list(text, g->in_names, DT_MAX_MODEL_IO);
  if (n < 0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [model] inputs = '%s': expected 1 to %d names separated by commas",
                        dt_config_where(cfg, "model", "inputs"), text, DT_MAX_MODEL_IO);
  for (int j = 0; j < n; j++) {
    bool clash = !valid_name(g->in_names[j]);
    for (int k = 0; k < j; k++) clash |= strcmp(g->in_names[k], g->in_names[j]) == 0;
    for (int s = 0; s < g->n; s++)
      clash |= strcmp(g->in_names[j], g->nodes[s].name) == 0 ||
               strcmp(g->in_names[j], g->nodes[s].section) == 0 ||
               (g->nodes[s].act_ops && strcmp(g->in_names[j], g->nodes[s].act_name) == 0);
    if (clash)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [model] inputs: '%s' is not a valid input name, or is named twice "
                          "or is also a layer's name",
                          dt_config_where(cfg, "model", "inputs"), g->in_names[j]);
  }
  g->nin = n;
  return 0;
}

/* Reads type, activation and name of every section. */
static int read_nodes(dt_graph_t *g, dt_config_t *cfg, const char *const *sections,
                      dt_error_t *err) {
  type_counter_t tc = {.n = 0};
  int rc;
  for (int s = 0; s < g->n; s++) {
    dt_graph_node_t *nd = &g->nodes[s];
    const char *sec = sections[s], *type, *activation, *name;
    nd->section = sec;
    if (!dt_config_has_key(cfg, sec, "type"))
      return dt_error_set(err, DT_ERR_CONFIG, "%s: the layer has no 'type'",
                          dt_config_where(cfg, sec, NULL));
    if ((rc = dt_config_get_string(cfg, sec, "type", "", &type, err))) return rc;
    if (!(nd->ops = dt_layer_find(type))) {
      char list[512];
      return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] unknown layer type '%s' (known: %s)",
                          dt_config_where(cfg, sec, "type"), sec, type,
                          dt_layer_type_list(list, sizeof list));
    }
    /* Asked only where present, so that the effective config of a stack lists no
     * defaults it never had. */
    name = "";
    if (dt_config_has_key(cfg, sec, "name") &&
        (rc = dt_config_get_string(cfg, sec, "name", "", &name, err)))
      return rc;
    /* Every layer counts for its type, named or not: dense_K is the K-th dense layer in
     * config order, so writing a stack's generated names out changes nothing. */
    generate_name(&tc, nd->ops, nd->name, sizeof nd->name);
    if (dt_config_has_key(cfg, sec, "name")) {
      if (!valid_name(name) || strcmp(name, model_input_name) == 0)
        return dt_error_set(err, DT_ERR_CONFIG,
                            "%s: [%s] name = '%s': a name is 1 to %d letters, digits, '_', '-' "
                            "or '.', and not '%s' (the model's input)",
                            dt_config_where(cfg, sec, "name"), sec, name, DT_NAME_MAX / 2 - 1,
                            model_input_name);
      snprintf(nd->name, sizeof nd->name, "%s", name);
      g->is_graph = true;
    }
    if ((rc = dt_config_get_string(cfg, sec, "activation", "", &activation, err))) return rc;
    if (activation[0] && strcmp(activation, "linear") != 0) {
      bool known = false;
      for (int a = 0; activation_layers[a]; a++) known |= strcmp(activation, activation_layers[a]) == 0;
      if (!known)
        return dt_error_set(err, DT_ERR_CONFIG,
                            "%s: [%s] activation = '%s': expected one of linear, relu, "
                            "leaky_relu, sigmoid, tanh, softmax",
                            dt_config_where(cfg, sec, "activation"), sec, activation);
      nd->act_ops = dt_layer_find(activation);
      generate_name(&tc, nd->act_ops, nd->act_name, sizeof nd->act_name);
    }
  }
  /* Every name once: the main layers' and the activation layers' (parameter and
   * checkpoint names are built from them), and no name that is another's section. */
  for (int a = 0; a < g->n; a++)
    for (int b = 0; b < a; b++) {
      const dt_graph_node_t *na = &g->nodes[a], *nb = &g->nodes[b];
      const char *clash = strcmp(na->name, nb->name) == 0                        ? na->name
                          : nb->act_ops && strcmp(na->name, nb->act_name) == 0   ? na->name
                          : na->act_ops && strcmp(na->act_name, nb->name) == 0   ? na->act_name
                          : strcmp(na->name, nb->section) == 0                   ? na->name
                          : strcmp(nb->name, na->section) == 0                   ? nb->name
                                                                                 : NULL;
      if (clash)
        return dt_error_set(err, DT_ERR_CONFIG,
                            "%s: [%s] the name '%s' is taken: [%s] has it too; give each layer "
                            "its own name",
                            dt_config_where(cfg, na->section, "name"), na->section, clash,
                            nb->section);
    }
  return 0;
}

/* Splits "a, b, c" into the node's input names and resolves them. */
static int read_inputs(dt_graph_t *g, dt_config_t *cfg, int s, dt_error_t *err) {
  dt_graph_node_t *nd = &g->nodes[s];
  const char *sec = nd->section, *text;
  int rc;
  nd->explicit_inputs = dt_config_has_key(cfg, sec, "inputs");
  if (!nd->explicit_inputs) {
    /* A stack: the section before, or the model's input for the first. */
    nd->ninputs = 1;
    nd->inputs[0] = s > 0 ? s - 1 : DT_LAYER_MODEL_INPUT;
    snprintf(nd->input_names[0], sizeof nd->input_names[0], "%s",
             s > 0 ? g->nodes[s - 1].act_ops ? g->nodes[s - 1].act_name : g->nodes[s - 1].name
                   : model_input_name);
    return 0;
  }
  g->is_graph = true;
  if ((rc = dt_config_get_string(cfg, sec, "inputs", "", &text, err))) return rc;
  const char *p = text;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    const char *end = p;
    while (*end && *end != ',') end++;
    size_t len = (size_t)(end - p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    if (len == 0)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [%s] inputs = '%s': expected layer names separated by commas",
                          dt_config_where(cfg, sec, "inputs"), sec, text);
    if (nd->ninputs == DT_MAX_LAYER_INPUTS)
      return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] inputs: more than %d names",
                          dt_config_where(cfg, sec, "inputs"), sec, DT_MAX_LAYER_INPUTS);
    char *name = nd->input_names[nd->ninputs];
    snprintf(name, DT_NAME_MAX, "%.*s", (int)(len < DT_NAME_MAX - 1 ? len : DT_NAME_MAX - 1), p);
    int src = resolve(g, name);
    if (src == NOT_FOUND)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [%s] inputs: unknown layer '%s' (a layer's name, its section, or "
                          "%s for the model's input)",
                          dt_config_where(cfg, sec, "inputs"), sec, name,
                          g->nin ? "a name of [model] inputs" : "'input'");
    nd->inputs[nd->ninputs++] = src;
    if (!*end) break;
    p = end + 1;
  }
  return 0;
}

/* The number of inputs fits the layer type. */
static int check_input_count(const dt_graph_t *g, dt_config_t *cfg, int s, dt_error_t *err) {
  const dt_graph_node_t *nd = &g->nodes[s];
  const int lo = nd->ops->max_inputs > 1 ? nd->ops->min_inputs : 1;
  const int hi = nd->ops->max_inputs > 1 ? nd->ops->max_inputs : 1;
  if (nd->ninputs >= lo && nd->ninputs <= hi) return 0;
  if (hi == 1)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [%s] a %s layer takes one input, but inputs names %d",
                        dt_config_where(cfg, nd->section, "inputs"), nd->section, nd->ops->type,
                        nd->ninputs);
  return dt_error_set(err, DT_ERR_CONFIG,
                      "%s: [%s] %s takes %d to %d inputs, but %s %d: list them in "
                      "inputs = name1, name2",
                      dt_config_where(cfg, nd->section, "inputs"), nd->section, nd->ops->type, lo,
                      hi, nd->explicit_inputs ? "inputs names" : "it has the default", nd->ninputs);
}

/* Kahn's algorithm, taking the lowest ready section each time: the config order where
 * the graph allows it. What is left at the end lies on or behind a cycle: one is found
 * by walking inputs among those until a section repeats. */
static int sort(dt_graph_t *g, dt_config_t *cfg, dt_error_t *err) {
  const int n = g->n;
  int *pending = calloc((size_t)n, sizeof *pending); /* inputs not yet placed */
  bool *placed = calloc((size_t)n, sizeof *placed);
  if (!pending || !placed) {
    free(pending);
    free(placed);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory sorting the model's layers");
  }
  for (int s = 0; s < n; s++)
    for (int k = 0; k < g->nodes[s].ninputs; k++) pending[s] += g->nodes[s].inputs[k] >= 0;
  int done = 0;
  while (done < n) {
    int next = -1;
    for (int s = 0; s < n && next < 0; s++)
      if (!placed[s] && pending[s] == 0) next = s;
    if (next < 0) break;
    placed[next] = true;
    g->order[done++] = next;
    for (int s = 0; s < n; s++)
      for (int k = 0; k < g->nodes[s].ninputs; k++) pending[s] -= g->nodes[s].inputs[k] == next;
  }
  int rc = 0;
  if (done < n) {
    /* Every unplaced section has an unplaced input: walk them until one repeats. */
    int *seen = calloc((size_t)n, sizeof *seen), s = 0, step = 1;
    while (placed[s]) s++;
    while (seen && !seen[s]) {
      seen[s] = step++;
      const dt_graph_node_t *nd = &g->nodes[s];
      int k = 0;
      while (nd->inputs[k] < 0 || placed[nd->inputs[k]]) k++;
      s = nd->inputs[k];
    }
    /* s is on the cycle; write it from s around, in the direction data flow. */
    char path[512];
    size_t used = 0;
    int start = s, cur = s;
    int members[MAX_SECTIONS], nm = 0;
    do {
      members[nm++] = cur;
      const dt_graph_node_t *nd = &g->nodes[cur];
      int k = 0;
      while (nd->inputs[k] < 0 || placed[nd->inputs[k]]) k++;
      cur = nd->inputs[k];
    } while (cur != start && nm < (int)(sizeof members / sizeof members[0]));
    for (int i = nm; i >= 0 && used < sizeof path; i--)
      used += (size_t)snprintf(path + used, sizeof path - used, i < nm ? " -> [%s]" : "[%s]",
                               g->nodes[members[i % nm]].section);
    rc = dt_error_set(err, DT_ERR_CONFIG,
                      "%s: [%s] the layers form a cycle: %s; a graph model must be acyclic",
                      dt_config_where(cfg, g->nodes[start].section, "inputs"),
                      g->nodes[start].section, path);
    free(seen);
  }
  free(pending);
  free(placed);
  return rc;
}

/* Every section's output is used by a later one or is a model output, and every model
 * input is taken by some section. */
static int check_used(const dt_graph_t *g, dt_config_t *cfg, dt_error_t *err) {
  const int nin = g->nin ? g->nin : 1;
  bool input_used[DT_MAX_MODEL_IO] = {false};
  for (int s = 0; s < g->n; s++) {
    bool used = false;
    for (int k = 0; k < g->noutputs; k++) used |= g->outputs[k] == s;
    for (int c = 0; c < g->n; c++)
      for (int k = 0; k < g->nodes[c].ninputs; k++) {
        const int p = g->nodes[c].inputs[k];
        used |= p == s;
        if (p < 0) input_used[DT_LAYER_MODEL_INPUT - p] = true;
      }
    if (!used)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [%s] nobody uses the output of '%s': no layer names it in its "
                          "inputs and it is not %s [%s]",
                          dt_config_where(cfg, g->nodes[s].section, NULL), g->nodes[s].section,
                          g->nodes[s].name,
                          g->noutputs > 1 ? "one of [model] outputs, such as"
                                          : "the model's output,",
                          g->nodes[g->output].section);
  }
  for (int j = 0; j < nin; j++)
    if (!input_used[j])
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: no layer takes the model's input%s%s: name '%s' in some layer's "
                          "inputs",
                          dt_config_where(cfg, g->nin ? "model" : g->nodes[0].section, "inputs"),
                          g->nin ? " " : "", g->nin ? g->in_names[j] : "",
                          g->nin ? g->in_names[j] : model_input_name);
  return 0;
}

/* [model] outputs = name1, name2: the sections whose outputs the losses see (default:
 * the last section alone). */
static int read_output(dt_graph_t *g, dt_config_t *cfg, dt_error_t *err) {
  const char *text;
  g->output = g->n - 1;
  g->noutputs = 1;
  g->outputs[0] = g->output;
  if (!dt_config_has_key(cfg, "model", "outputs")) return 0;
  int rc = dt_config_get_string(cfg, "model", "outputs", "", &text, err);
  if (rc) return rc;
  g->is_graph = true;
  char names[DT_MAX_MODEL_IO][DT_NAME_MAX];
  int n = dt_graph_split_list(text, names, DT_MAX_MODEL_IO);
  if (n < 0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [model] outputs = '%s': expected 1 to %d layer names separated by "
                        "commas",
                        dt_config_where(cfg, "model", "outputs"), text, DT_MAX_MODEL_IO);
  for (int k = 0; k < n; k++) {
    int s = resolve(g, names[k]);
    if (s < 0)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [model] outputs: unknown layer '%s' (a layer's name or its section)",
                          dt_config_where(cfg, "model", "outputs"), names[k]);
    for (int j = 0; j < k; j++)
      if (g->outputs[j] == s)
        return dt_error_set(err, DT_ERR_CONFIG,
                            "%s: [model] outputs: '%s' and '%s' are the same layer's output",
                            dt_config_where(cfg, "model", "outputs"), names[j], names[k]);
    g->outputs[k] = s;
  }
  g->noutputs = n;
  g->output = g->outputs[0];
  return 0;
}

int dt_graph_parse(dt_graph_t *g, dt_config_t *cfg, const char *const *sections, int n,
                   dt_error_t *err) {
  memset(g, 0, sizeof *g);
  g->n = n;
  g->nodes = calloc((size_t)n, sizeof *g->nodes);
  g->order = calloc((size_t)n, sizeof *g->order);
  if (!g->nodes || !g->order)
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading the model's layers");
  int rc;
  if ((rc = read_nodes(g, cfg, sections, err)) || (rc = read_model_inputs(g, cfg, err))) return rc;
  for (int s = 0; s < n; s++)
    if ((rc = read_inputs(g, cfg, s, err)) || (rc = check_input_count(g, cfg, s, err))) return rc;
  if ((rc = read_output(g, cfg, err)) || (rc = sort(g, cfg, err)) ||
      (rc = check_used(g, cfg, err)))
    return rc;
  return 0;
}
