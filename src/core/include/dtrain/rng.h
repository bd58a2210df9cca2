/* A seeded pseudo-random generator of our own (xoshiro256**, seeded through
 * splitmix64) whose whole state is four integers, so a checkpoint can save it
 * and a resumed run draws exactly the same numbers. Never use rand(). */
#ifndef DTRAIN_RNG_H
#define DTRAIN_RNG_H

#include <stdint.h>

typedef struct {
  uint64_t s[4];
} dt_rng_t;

/* Seeds from one number; different streams (e.g. per rank, per epoch) come from
 * different seeds mixed with dt_rng_mix. */
void dt_rng_seed(dt_rng_t *rng, uint64_t seed);
uint64_t dt_rng_mix(uint64_t a, uint64_t b);

uint64_t dt_rng_u64(dt_rng_t *rng);
/* Uniform in [0, n) without modulo bias. */
uint64_t dt_rng_below(dt_rng_t *rng, uint64_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float dt_rng_uniform(dt_rng_t *rng);
/* Standard normal (Box-Muller; one of the pair is discarded so state stays four words). */
float dt_rng_normal(dt_rng_t *rng);

#endif
