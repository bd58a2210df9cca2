/* xoshiro256** generator with splitmix64 seeding (algorithms by Blackman and Vigna). */
#include "dtrain/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void dt_rng_seed(dt_rng_t *rng, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

uint64_t dt_rng_mix(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b * 0xd6e8feb86659fd93ULL);
  return splitmix64(&x);
}

uint64_t dt_rng_u64(dt_rng_t *rng) {
  uint64_t *s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t dt_rng_below(dt_rng_t *rng, uint64_t n) {
  /* Rejection sampling: draw until the value falls below the largest multiple of n. */
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r;
  do r = dt_rng_u64(rng);
  while (r >= limit);
  return r % n;
}

float dt_rng_uniform(dt_rng_t *rng) { return (float)(dt_rng_u64(rng) >> 40) * (1.0f / 16777216.0f); }

float dt_rng_normal(dt_rng_t *rng) {
  /* u1 in (0,1] so that log(u1) is finite. */
  double u1 = ((double)(dt_rng_u64(rng) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  double u2 = (double)(dt_rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
