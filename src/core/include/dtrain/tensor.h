/* Tensor descriptors: per-sample shapes, initializer kinds and the description of one
 * tensor in a flat buffer (name, shape, offset, count). Everything that reads or
 * writes the flat buffers by name (layers, optimizers, checkpoints, safetensors, the
 * parameter server's signature) shares these, so they sit at the bottom layer. */
#ifndef DTRAIN_TENSOR_H
#define DTRAIN_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

enum { DT_MAX_DIMS = 4, DT_NAME_MAX = 64 };

/* A per-sample shape, e.g. (784) or (28, 28, 1); parameter shapes may use 4 dims. */
typedef struct {
  int ndim;
  int dims[DT_MAX_DIMS];
} dt_shape_t;

dt_shape_t dt_shape_1d(int a);
dt_shape_t dt_shape_3d(int a, int b, int c);
size_t dt_shape_size(const dt_shape_t *s);
/* "(28, 28, 1)" into buf; returns buf. */
const char *dt_shape_str(const dt_shape_t *s, char *buf, size_t cap);

typedef enum {
  DT_INIT_ZEROS,
  DT_INIT_ONES,
  DT_INIT_HE_NORMAL,
  DT_INIT_HE_UNIFORM,
  DT_INIT_GLOROT_NORMAL,
  DT_INIT_GLOROT_UNIFORM
} dt_init_kind;

/* Config names of the initializers, indexed by dt_init_kind, NULL-terminated. */
extern const char *const dt_init_names[];

/* One parameter tensor: where it lives in the flat buffers and how it starts. */
typedef struct {
  char name[DT_NAME_MAX]; /* "dense_1.kernel": unique, used in checkpoints and logs */
  dt_shape_t shape;
  size_t offset; /* into the flat parameter (and gradient) buffer */
  size_t count;
  dt_init_kind init;
  int fan_in, fan_out;
  bool decay; /* weight decay applies (kernels), or not (biases) */
} dt_param_info_t;

#endif
