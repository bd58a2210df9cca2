/* cmp_params A B TOL: compares two parameter dumps (raw float32, as written by
 * dtrain-worker --save-params) element by element. Prints the count, the largest
 * absolute difference with its index and both values, and the largest parameter
 * magnitude; exits 0 if the files have the same length and every difference is at
 * most TOL, 1 otherwise, 2 on a usage or file error. TOL 0 asks for bit equality. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *load(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cmp_params: cannot open '%s'\n", path);
    return NULL;
  }
  size_t cap = 1 << 16, len = 0;
  float *v = malloc(cap * sizeof *v);
  while (v) {
    len += fread(v + len, sizeof *v, cap - len, f);
    if (len < cap) break;
    float *grown = realloc(v, 2 * cap * sizeof *v);
    if (!grown) free(v);
    v = grown;
    cap *= 2;
  }
  if (v && ferror(f)) {
    fprintf(stderr, "cmp_params: cannot read '%s'\n", path);
    free(v);
    v = NULL;
  }
  fclose(f);
  *n = len;
  return v;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: cmp_params A B TOL\n");
    return 2;
  }
  size_t na, nb;
  float *a = load(argv[1], &na), *b = load(argv[2], &nb);
  double tol = atof(argv[3]);
  int status = 2;
  if (!a || !b) goto done;
  if (na != nb || na == 0) {
    printf("%s has %zu floats, %s has %zu\n", argv[1], na, argv[2], nb);
    status = 1;
    goto done;
  }
  double worst = 0.0, largest = 0.0;
  size_t at = 0, differing = 0;
  for (size_t i = 0; i < na; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
    if (memcmp(&a[i], &b[i], sizeof a[i]) != 0) differing++;
    if (fabs(a[i]) > largest) largest = fabs(a[i]);
  }
  printf("%zu floats, %zu differ in bits; max |a-b| = %.3g at [%zu] (%.9g vs %.9g); max |a| = "
         "%.3g; tolerance %.3g\n",
         na, differing, worst, at, a[at], b[at], largest, tol);
  status = tol == 0.0 ? differing != 0 : !(worst <= tol);
done:
  free(a);
  free(b);
  return status;
}
