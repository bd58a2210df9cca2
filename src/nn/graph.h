/* The model's graph as the config writes it (private to nn/): one node per [layer.N]
 * section with its name and the sections its inputs come from, checked as a DAG and
 * put in topological order before any layer is built. model.c then builds the layers
 * in that order. */
#ifndef DTRAIN_NN_GRAPH_H
#define DTRAIN_NN_GRAPH_H

#include <stdbool.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/layer.h"

/* One [layer.N] section: its main layer and, with activation = ..., an activation layer
 * after it. Other sections name it by `name` (the main layer's name), by the activation
 * layer's name, or by the section's own name ("layer.3"); each stands for the section's
 * output, after the activation. */
typedef struct {
  const char *section;
  const dt_layer_ops_t *ops;
  const dt_layer_ops_t *act_ops; /* NULL: no activation layer */
  char name[DT_NAME_MAX / 2];
  char act_name[DT_NAME_MAX / 2];
  int ninputs;
  int inputs[DT_MAX_LAYER_INPUTS]; /* section indices, or DT_LAYER_MODEL_INPUT */
  char input_names[DT_MAX_LAYER_INPUTS][DT_NAME_MAX];
  bool explicit_inputs; /* the section has an `inputs` key */
} dt_graph_node_t;

typedef struct dt_graph {
  int n;
  dt_graph_node_t *nodes; /* (n) in config order */
  int *order;             /* (n) section indices in topological order */
  int output;             /* the first output's section (outputs[0]) */
  /* [model] outputs: the sections whose outputs the losses see, in order (default: the
   * last section alone). */
  int noutputs;
  int outputs[DT_MAX_MODEL_IO];
  /* [model] inputs: the names of the model's inputs (input j is DT_LAYER_MODEL_INPUT - j
   * in inputs[]); none: one input, called 'input'. */
  int nin;
  char in_names[DT_MAX_MODEL_IO][DT_NAME_MAX];
  bool is_graph;          /* some section says name or inputs: the summary shows inputs */
} dt_graph_t;

/* Reads type, activation, name and inputs of sections[0..n), resolves the names and
 * checks the DAG: unknown types and input names, duplicate names, input counts, cycles,
 * outputs nobody uses; every error names its section. */
int dt_graph_parse(dt_graph_t *g, dt_config_t *cfg, const char *const *sections, int n,
                   dt_error_t *err);
void dt_graph_free(dt_graph_t *g);

/* Splits "a, b, c" into at most max names of up to DT_NAME_MAX - 1 characters; returns
 * the count, or -1 for an empty name or too many. */
int dt_graph_split_list(const char *text, char (*names)[DT_NAME_MAX], int max);

#endif
