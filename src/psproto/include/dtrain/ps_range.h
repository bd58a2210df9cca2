/* What the parameter server and its workers must compute the same way: the split of
 * the flat parameter vector into server ranges, and the model signature that HELLO
 * carries. */
#ifndef DTRAIN_PS_RANGE_H
#define DTRAIN_PS_RANGE_H

#include <stdint.h>

#include "dtrain/optim.h"
#include "dtrain/tensor.h"

/* Server k of K owns [floor(n*k/K), floor(n*(k+1)/K)): ranges differ in length by at
 * most one and depend only on (n, K, k). */
void dt_ps_range(uint64_t n, unsigned num_servers, unsigned k, uint64_t *begin, uint64_t *end);

/* FNV-1a 64 over a canonical text of every tensor (name, shape, offset, count, decay),
 * the parameter count and the optimizer's settings: workers of one job and the
 * servers they talk to must agree on it. */
uint64_t dt_ps_signature(const dt_param_info_t *tensors, int n, uint64_t num_params,
                         const dt_optim_config_t *opt);

#endif
