/* Test helper for tests/cli/test_images.sh: decodes one image file, or loads an image
 * folder as a dataset, and writes what came out for Python to compare with Pillow.
 *
 *   images_dump file PATH OUT          -> stdout "format h w c"; OUT: the decoded bytes (HWC)
 *   images_dump folder DIR OUT [options]
 *       options: --size H W, --channels C, --shuffle SEED, --classes-from TRAIN_DIR,
 *                --threads N (N threads then gather every sample at once, and each
 *                must get exactly what one thread got: the decoder is thread-safe)
 *       -> stdout "n h w c num_classes skipped", then "class NAME" lines, "meta JSON",
 *          "labels L0 L1 ..."; OUT: every sample gathered unscaled, float32 (n, h, w, c)
 * Errors go to stderr with exit status 1. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/image.h"
#include "dtrain/images.h"

static int fail(const dt_error_t *err) {
  fprintf(stderr, "error: %s\n", err->msg);
  return 1;
}

static int dump_file(const char *path, const char *out) {
  dt_error_t err;
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  dt_image_info_t probe, info;
  uint8_t *pixels = NULL;
  int rc = dt_image_probe(f, path, &probe, &err);
  if (!rc) {
    rewind(f);
    rc = dt_image_decode(f, path, &info, &pixels, &err);
  }
  fclose(f);
  if (rc) return fail(&err);
  if (probe.height != info.height || probe.width != info.width ||
      probe.channels != info.channels) {
    fprintf(stderr, "error: the header says %d x %d x %d, decoding gave %d x %d x %d\n",
            probe.height, probe.width, probe.channels, info.height, info.width, info.channels);
    return 1;
  }
  printf("%s %d %d %d\n", info.format == DT_IMAGE_PNG ? "png" : "jpeg", info.height, info.width,
         info.channels);
  FILE *o = fopen(out, "wb");
  size_t n = (size_t)info.height * info.width * info.channels;
  if (!o || fwrite(pixels, 1, n, o) != n || fclose(o) != 0) {
    perror(out);
    return 1;
  }
  free(pixels);
  return 0;
}

typedef struct {
  const dt_dataset_t *ds;
  const float *expected; /* (n, dim): what one thread gathered */
  int mismatches, errors;
} race_t;

static void *gather_all(void *arg) {
  race_t *r = arg;
  float *x = malloc(r->ds->dim * sizeof *x);
  dt_error_t err;
  for (size_t i = 0; x && i < r->ds->n; i++) {
    uint32_t idx = (uint32_t)i;
    if (dt_dataset_gather(r->ds, NULL, &idx, 1, x, NULL, NULL, &err)) r->errors++;
    else r->mismatches += memcmp(x, r->expected + i * r->ds->dim, r->ds->dim * sizeof *x) != 0;
  }
  if (!x) r->errors++;
  free(x);
  return NULL;
}

/* Runs n_threads gathers of every sample at once; returns the number of samples that
 * came out different from `expected` or failed. */
static int race(const dt_dataset_t *ds, const float *expected, int n_threads) {
  pthread_t t[16];
  race_t r[16];
  if (n_threads > 16) n_threads = 16;
  for (int i = 0; i < n_threads; i++) {
    r[i] = (race_t){ds, expected, 0, 0};
    if (pthread_create(&t[i], NULL, gather_all, &r[i]) != 0) return -1;
  }
  int bad = 0;
  for (int i = 0; i < n_threads; i++) {
    pthread_join(t[i], NULL);
    bad += r[i].mismatches + r[i].errors;
  }
  return bad;
}

static int dump_folder(int argc, char **argv) {
  const char *dir = argv[2], *out = argv[3];
  dt_images_opts_t o = {0};
  size_t skipped = 0;
  o.skipped = &skipped;
  const char *classes_dir = NULL;
  int threads = 0;
  for (int i = 4; i < argc; i++) {
    if (!strcmp(argv[i], "--size") && i + 2 < argc) {
      o.height = atoi(argv[++i]);
      o.width = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--channels") && i + 1 < argc) {
      o.channels = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--shuffle") && i + 1 < argc) {
      o.shuffle = true;
      o.shuffle_seed = strtoull(argv[++i], NULL, 10);
    } else if (!strcmp(argv[i], "--classes-from") && i + 1 < argc) {
      classes_dir = argv[++i];
    } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = atoi(argv[++i]);
    } else {
      fprintf(stderr, "images_dump: unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  dt_error_t err;
  dt_dataset_t train = {0}, ds;
  if (classes_dir) {
    dt_images_opts_t t = {0};
    if (dt_images_load(classes_dir, &t, &train, &err)) return fail(&err);
    o.classes_from = &train;
  }
  int rc = dt_images_load(dir, &o, &ds, &err);
  dt_dataset_free(&train);
  if (rc) return fail(&err);
  printf("%zu %d %d %d %d %zu\n", ds.n, ds.shape[0], ds.shape[1], ds.shape[2], ds.num_classes,
         skipped);
  for (int k = 0; k < ds.num_classes; k++) printf("class %s\n", ds.class_names[k]);
  printf("meta {%s}\n", ds.meta_json);
  float *x = malloc(ds.n * ds.dim * sizeof *x);
  int32_t *labels = malloc((ds.n ? ds.n : 1) * sizeof *labels);
  FILE *o_file = fopen(out, "wb");
  rc = 0;
  if (!x || !labels || !o_file) {
    perror(out);
    rc = 1;
  }
  for (size_t i = 0; !rc && i < ds.n; i++) {
    uint32_t idx = (uint32_t)i;
    float *xi = x + i * ds.dim;
    if (dt_dataset_gather(&ds, NULL, &idx, 1, xi, &labels[i], NULL, &err)) rc = fail(&err);
    else if (fwrite(xi, sizeof *xi, ds.dim, o_file) != ds.dim) {
      perror(out);
      rc = 1;
    }
  }
  if (!rc && threads > 0) {
    int bad = race(&ds, x, threads);
    if (bad) {
      fprintf(stderr, "error: %d samples gathered by %d threads at once differ or failed\n",
              bad, threads);
      rc = 1;
    }
  }
  if (!rc) {
    printf("labels");
    for (size_t i = 0; i < ds.n; i++) printf(" %d", labels[i]);
    printf("\n");
  }
  if (o_file) fclose(o_file);
  free(x);
  free(labels);
  dt_dataset_free(&ds);
  return rc;
}

int main(int argc, char **argv) {
  if (argc >= 4 && !strcmp(argv[1], "file")) return dump_file(argv[2], argv[3]);
  if (argc >= 4 && !strcmp(argv[1], "folder")) return dump_folder(argc, argv);
  fprintf(stderr, "usage: images_dump file PATH OUT | folder DIR OUT [options]\n");
  return 2;
}
