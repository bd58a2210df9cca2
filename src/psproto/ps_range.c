/* The split of the parameter vector over servers and the model signature (see
 * ps_range.h). */
#include "dtrain/ps_range.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void dt_ps_range(uint64_t n, unsigned num_servers, unsigned k, uint64_t *begin, uint64_t *end) {
  /* n < 2^40 and K <= 2^16 in practice; in 128 bits the products cannot overflow for
   * any arguments, so every party gets the same answer whatever it was given. */
  unsigned __int128 nn = n;
  *begin = (uint64_t)(nn * k / num_servers);
  *end = (uint64_t)(nn * (k + 1u) / num_servers);
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* Appends one formatted line to the running hash. */
static uint64_t feed(uint64_t h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static uint64_t feed(uint64_t h, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (len < 0) len = 0;
  if ((size_t)len >= sizeof line) len = (int)sizeof line - 1;
  return fnv1a(h, line, (size_t)len);
}

uint64_t dt_ps_signature(const dt_param_info_t *tensors, int n, uint64_t num_params,
                         const dt_optim_config_t *opt) {
  uint64_t h = 0xcbf29ce484222325ULL;
  h = feed(h, "params %llu\n", (unsigned long long)num_params);
  for (int i = 0; i < n; i++) {
    const dt_param_info_t *t = &tensors[i];
    h = feed(h, "%s (", t->name);
    for (int d = 0; d < t->shape.ndim; d++) h = feed(h, "%s%d", d ? "," : "", t->shape.dims[d]);
    h = feed(h, ") @%zu +%zu decay=%d\n", t->offset, t->count, t->decay ? 1 : 0);
  }
  /* %a prints every bit of a double, so equal settings give equal text and different
   * ones different text. */
  h = feed(h, "optimizer %d momentum %a nesterov %d beta1 %a beta2 %a rho %a eps %a wd %a\n",
           (int)opt->kind, opt->momentum, opt->nesterov ? 1 : 0, opt->beta1, opt->beta2, opt->rho,
           opt->eps, opt->weight_decay);
  return h;
}
