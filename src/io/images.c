/* Image-folder datasets (images.h): listing the class folders and their files, checking
 * every file's header at load, and the decoder that turns storage row i into floats when
 * a batch is gathered. */
#define _POSIX_C_SOURCE 200809L

#include "dtrain/images.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dtrain/image.h"
#include "dtrain/json.h"
#include "dtrain/rng.h"

/* A list of malloc'd strings. */
typedef struct {
  char **items;
  size_t n, cap;
} strlist_t;

static void strlist_free(strlist_t *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
  memset(l, 0, sizeof *l);
}

/* Takes s (freed on failure). */
static int strlist_push(strlist_t *l, char *s, dt_error_t *err) {
  if (!s) return dt_error_set(err, DT_ERR_NOMEM, "out of memory listing an image folder");
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    char **bigger = realloc(l->items, cap * sizeof *bigger);
    if (!bigger) {
      free(s);
      return dt_error_set(err, DT_ERR_NOMEM, "out of memory listing an image folder");
    }
    l->items = bigger;
    l->cap = cap;
  }
  l->items[l->n++] = s;
  return DT_OK;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join_path(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) return NULL;
  memcpy(p, dir, a);
  size_t k = a;
  if (a == 0 || dir[a - 1] != '/') p[k++] = '/';
  memcpy(p + k, name, b + 1);
  return p;
}

static bool is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
                 strcasecmp(dot, ".jpeg") == 0);
}

/* The entries of dir, sorted: sub-folders into dirs, image files into images, and the
 * count of other files added to *others. Names starting with '.' are ignored. */
static int list_folder(const char *dir, strlist_t *dirs, strlist_t *images, size_t *others,
                       dt_error_t *err) {
  DIR *d = opendir(dir);
  if (!d)
    return dt_error_set(err, errno == ENOENT ? DT_ERR_NOT_FOUND : DT_ERR_IO,
                        "cannot open image folder '%s': %s", dir, strerror(errno));
  int rc = DT_OK;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno)
        rc = dt_error_set(err, DT_ERR_IO, "cannot list image folder '%s': %s", dir,
                          strerror(errno));
      break;
    }
    if (e->d_name[0] == '.') continue;
    char *path = join_path(dir, e->d_name);
    struct stat st;
    if (!path) {
      rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory listing '%s'", dir);
      break;
    }
    /* stat, not d_type: symbolic links to folders and files count as what they point
     * to, and some file systems do not fill d_type. */
    if (stat(path, &st) != 0) {
      rc = dt_error_set(err, DT_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
      free(path);
      break;
    }
    free(path);
    if (S_ISDIR(st.st_mode)) rc = strlist_push(dirs, strdup(e->d_name), err);
    else if (is_image_name(e->d_name)) rc = strlist_push(images, strdup(e->d_name), err);
    else (*others)++;
    if (rc) break;
  }
  closedir(d);
  if (rc) return rc;
  /* qsort's array must not be NULL even when it is empty. */
  if (dirs->n > 1) qsort(dirs->items, dirs->n, sizeof *dirs->items, cmp_str);
  if (images->n > 1) qsort(images->items, images->n, sizeof *images->items, cmp_str);
  return DT_OK;
}

/* The decoder's state: the files' paths (one block of NUL-terminated strings) and the
 * size every sample is made to have. Read-only after loading, so read() may run in many
 * threads at once. */
typedef struct {
  char *paths;
  size_t *offsets; /* (rows): where each row's path starts in paths */
  int height, width, channels;
  bool convert; /* false: an image with another channel count is an error */
} images_src_t;

static int read_sample(void *self, size_t i, float *x, dt_error_t *err) {
  const images_src_t *s = self;
  const char *path = s->paths + s->offsets[i];
  FILE *f = fopen(path, "rb");
  if (!f) {
    /* strerror_r: this runs in several threads at once. */
    char why[128] = "unknown error";
    (void)strerror_r(errno, why, sizeof why);
    return dt_error_set(err, DT_ERR_IO, "cannot open '%s': %s", path, why);
  }
  dt_image_info_t info;
  uint8_t *pixels = NULL;
  int rc = dt_image_decode(f, path, &info, &pixels, err);
  fclose(f);
  if (rc) return rc;
  if (info.channels != s->channels) {
    if (!s->convert) {
      free(pixels);
      return dt_error_set(err, DT_ERR_FORMAT, "'%s': %d channel%s, but the images of this "
                          "dataset have %d", path, info.channels, info.channels == 1 ? "" : "s",
                          s->channels);
    }
    size_t n = (size_t)info.height * (size_t)info.width;
    uint8_t *converted = malloc(n * (size_t)s->channels);
    if (!converted) {
      free(pixels);
      return dt_error_set(err, DT_ERR_NOMEM, "'%s': out of memory converting channels", path);
    }
    dt_image_convert_channels(pixels, info.channels, converted, s->channels, n);
    free(pixels);
    pixels = converted;
  }
  dt_image_resize_bilinear(pixels, info.height, info.width, s->channels, x, s->height,
                           s->width);
  free(pixels);
  return DT_OK;
}

/* Everything a load builds, released together on failure. */
typedef struct {
  strlist_t classes;
  strlist_t files; /* full paths, class after class */
  int32_t *labels;
  size_t skipped;
} listing_t;

static void listing_free(listing_t *l) {
  strlist_free(&l->classes);
  strlist_free(&l->files);
  free(l->labels);
}

static const char *plural(size_t n) { return n == 1 ? "" : "s"; }

/* The class folders must be exactly the training set's classes. */
static int check_classes(const char *dir, const strlist_t *classes, const dt_dataset_t *train,
                         dt_error_t *err) {
  const char *where = train->what ? train->what : "the training set";
  if (!train->class_names)
    return dt_error_set(err, DT_ERR_ARG, "'%s': the training set '%s' has no class names to "
                        "match the class folders with", dir, where);
  for (size_t i = 0; i < classes->n; i++) {
    bool found = false;
    for (int k = 0; k < train->num_classes && !found; k++)
      found = strcmp(classes->items[i], train->class_names[k]) == 0;
    if (!found)
      return dt_error_set(err, DT_ERR_FORMAT, "'%s': class folder '%s' is not a class of the "
                          "training set '%s' (%d classes)", dir, classes->items[i], where,
                          train->num_classes);
  }
  for (int k = 0; k < train->num_classes; k++) {
    bool found = false;
    for (size_t i = 0; i < classes->n && !found; i++)
      found = strcmp(classes->items[i], train->class_names[k]) == 0;
    if (!found)
      return dt_error_set(err, DT_ERR_FORMAT, "'%s': no folder for the training set's class "
                          "'%s' (the training set '%s' has %d classes, this folder %zu)", dir,
                          train->class_names[k], where, train->num_classes, classes->n);
  }
  return DT_OK;
}

static int list_dataset(const char *dir, const dt_images_opts_t *o, listing_t *l,
                        dt_error_t *err) {
  strlist_t top_images = {0};
  int rc = list_folder(dir, &l->classes, &top_images, &l->skipped, err);
  if (rc == DT_OK && top_images.n > 0) {
    char *path = join_path(dir, top_images.items[0]);
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': an image directly in the image folder '%s'; "
                      "images go in one sub-folder per class", path ? path : top_images.items[0],
                      dir);
    free(path);
  }
  strlist_free(&top_images);
  if (rc) return rc;
  if (l->classes.n == 0)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': no class folders (an image folder holds "
                        "one sub-folder of images per class)", dir);
  if (l->classes.n > INT32_MAX)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': too many class folders (%zu)", dir,
                        l->classes.n);
  if (o->classes_from && (rc = check_classes(dir, &l->classes, o->classes_from, err)))
    return rc;

  /* Class ids: positions in the training set's names when given (the same as here,
   * since both are sorted), else in the sorted folder names. */
  for (size_t k = 0; k < l->classes.n; k++) {
    char *class_dir = join_path(dir, l->classes.items[k]);
    if (!class_dir) return dt_error_set(err, DT_ERR_NOMEM, "out of memory listing '%s'", dir);
    strlist_t subdirs = {0}, images = {0};
    rc = list_folder(class_dir, &subdirs, &images, &l->skipped, err);
    if (rc == DT_OK && subdirs.n > 0) {
      char *sub = join_path(class_dir, subdirs.items[0]);
      rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': a folder inside the class folder '%s'; "
                        "images go directly in their class folder", sub ? sub : class_dir,
                        class_dir);
      free(sub);
    }
    if (rc == DT_OK && images.n == 0)
      rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': class folder without images (.png, .jpg "
                        "or .jpeg files)", class_dir);
    for (size_t i = 0; rc == DT_OK && i < images.n; i++)
      rc = strlist_push(&l->files, join_path(class_dir, images.items[i]), err);
    if (rc == DT_OK) {
      int32_t *labels = realloc(l->labels, (l->files.n ? l->files.n : 1) * sizeof *labels);
      if (!labels) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory listing '%s'", dir);
      else {
        l->labels = labels;
        for (size_t i = l->files.n - images.n; i < l->files.n; i++) labels[i] = (int32_t)k;
      }
    }
    strlist_free(&subdirs);
    strlist_free(&images);
    free(class_dir);
    if (rc) return rc;
  }
  if (l->files.n > UINT32_MAX)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': more than %lu images", dir,
                        (unsigned long)UINT32_MAX);
  return DT_OK;
}

/* Reads every file's header: each must be a PNG or JPEG that opens; with channels 0,
 * each must have the first image's channel count. *first receives the first's info. */
static int check_headers(const listing_t *l, const dt_images_opts_t *o, dt_image_info_t *first,
                         dt_error_t *err) {
  for (size_t i = 0; i < l->files.n; i++) {
    const char *path = l->files.items[i];
    FILE *f = fopen(path, "rb");
    if (!f) return dt_error_set(err, DT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    dt_image_info_t info;
    int rc = dt_image_probe(f, path, &info, err);
    fclose(f);
    if (rc) return rc;
    if (i == 0) *first = info;
    else if (o->channels == 0 && info.channels != first->channels)
      return dt_error_set(err, DT_ERR_FORMAT, "'%s': %d channel%s, but the first image '%s' "
                          "has %d (set the channel count to convert every image to it)", path,
                          info.channels, plural((size_t)info.channels), l->files.items[0],
                          first->channels);
  }
  return DT_OK;
}

/* `"class_names": [...], "image_size": [h, w], "channels": c`, or NULL. */
static char *make_meta(const strlist_t *classes, int h, int w, int c) {
  size_t cap = 96;
  for (size_t k = 0; k < classes->n; k++) cap += dt_json_quote(classes->items[k], NULL, 0) + 2;
  char *meta = malloc(cap);
  if (!meta) return NULL;
  size_t len = (size_t)snprintf(meta, cap, "\"class_names\": [");
  for (size_t k = 0; k < classes->n; k++) {
    if (k) len += (size_t)snprintf(meta + len, cap - len, ", ");
    len += dt_json_quote(classes->items[k], meta + len, cap - len);
  }
  snprintf(meta + len, cap - len, "], \"image_size\": [%d, %d], \"channels\": %d", h, w, c);
  return meta;
}

/* Moves the listing into the dataset: paths into one block, class names into another,
 * labels as they are; everything owned by out. */
static int fill_dataset(const char *dir, listing_t *l, int h, int w, int c, bool convert,
                        dt_dataset_t *out, dt_error_t *err) {
  size_t n = l->files.n, bytes = 0, name_bytes = 0;
  for (size_t i = 0; i < n; i++) bytes += strlen(l->files.items[i]) + 1;
  for (size_t k = 0; k < l->classes.n; k++) name_bytes += strlen(l->classes.items[k]) + 1;

  images_src_t *src = calloc(1, sizeof *src);
  char *paths = malloc(bytes);
  size_t *offsets = malloc(n * sizeof *offsets);
  char **names = malloc(l->classes.n * sizeof *names + name_bytes);
  char *what = strdup(dir);
  char *meta = make_meta(&l->classes, h, w, c);
  int32_t *labels = l->labels;
  l->labels = NULL;
  int rc = DT_OK;
  /* Each block joins the owner as soon as it exists, so that one dt_dataset_free
   * releases whatever was made (dt_data_own frees its block itself when it fails). */
  void *blocks[] = {labels, src, paths, offsets, names, what, meta};
  for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
    if (!blocks[b]) {
      if (!rc) rc = dt_error_set(err, DT_ERR_NOMEM, "'%s': out of memory for the dataset", dir);
    } else if (rc) {
      free(blocks[b]);
    } else {
      rc = dt_data_own(out, blocks[b], err);
    }
  }
  if (rc) {
    dt_dataset_free(out);
    return rc;
  }
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(l->files.items[i]) + 1;
    offsets[i] = at;
    memcpy(paths + at, l->files.items[i], len);
    at += len;
  }
  char *name_at = (char *)(names + l->classes.n);
  for (size_t k = 0; k < l->classes.n; k++) {
    size_t len = strlen(l->classes.items[k]) + 1;
    names[k] = name_at;
    memcpy(name_at, l->classes.items[k], len);
    name_at += len;
  }
  *src = (images_src_t){paths, offsets, h, w, c, convert};

  out->n = n;
  out->shape[0] = h;
  out->shape[1] = w;
  out->shape[2] = c;
  out->ndim = 3;
  out->dim = (size_t)h * (size_t)w * (size_t)c;
  out->x = (dt_array_t){DT_U8, NULL, out->dim};
  out->decoder = (dt_decoder_t){read_sample, src};
  out->ykind = DT_Y_CLASSES;
  out->y = (dt_array_t){DT_I32, labels, 1};
  out->num_classes = (int)l->classes.n;
  out->class_names = names;
  out->what = what;
  out->meta_json = meta;
  return DT_OK;
}

/* Fisher-Yates over the paths and their labels together, drawn from the seed alone. */
static void shuffle_listing(listing_t *l, uint64_t seed) {
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  for (size_t i = l->files.n; i > 1; i--) {
    size_t j = (size_t)dt_rng_below(&rng, (uint64_t)i);
    char *p = l->files.items[i - 1];
    l->files.items[i - 1] = l->files.items[j];
    l->files.items[j] = p;
    int32_t y = l->labels[i - 1];
    l->labels[i - 1] = l->labels[j];
    l->labels[j] = y;
  }
}

int dt_images_load(const char *dir, const dt_images_opts_t *o, dt_dataset_t *out,
                   dt_error_t *err) {
  memset(out, 0, sizeof *out);
  dt_images_opts_t none = {0};
  if (!o) o = &none;
  if (o->skipped) *o->skipped = 0;
  if (o->height < 0 || o->width < 0 || (o->height == 0) != (o->width == 0))
    return dt_error_set(err, DT_ERR_ARG, "'%s': image size %d x %d: give both sides (or "
                        "neither, for the first image's size)", dir, o->height, o->width);
  if (o->channels != 0 && o->channels != 1 && o->channels != 3)
    return dt_error_set(err, DT_ERR_ARG, "'%s': %d channels: images have 1 (grayscale) or 3 "
                        "(RGB)", dir, o->channels);
  if ((uint64_t)o->height * (uint64_t)o->width > DT_IMAGE_MAX_PIXELS)
    return dt_error_set(err, DT_ERR_ARG, "'%s': image size %d x %d is larger than the %llu "
                        "pixels supported", dir, o->height, o->width,
                        (unsigned long long)DT_IMAGE_MAX_PIXELS);

  listing_t l = {0};
  dt_image_info_t first = {0};
  int rc = list_dataset(dir, o, &l, err);
  if (rc == DT_OK) rc = check_headers(&l, o, &first, err);
  if (rc == DT_OK) {
    int h = o->height ? o->height : first.height, w = o->width ? o->width : first.width;
    int c = o->channels ? o->channels : first.channels;
    if (o->shuffle) shuffle_listing(&l, o->shuffle_seed);
    if (o->skipped) *o->skipped = l.skipped;
    rc = fill_dataset(dir, &l, h, w, c, o->channels != 0, out, err);
  }
  listing_free(&l);
  return rc;
}
