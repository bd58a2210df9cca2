/* Image folders as datasets, like Keras' image_dataset_from_directory: DIR holds one
 * sub-folder per class, each holding that class's PNG and JPEG files.
 *
 *   dir/cat/0001.png  dir/cat/0002.jpg  dir/dog/a.jpeg ...
 *
 * Class names are the sub-folder names in sorted (byte) order and class ids their
 * positions; files are taken in name order inside each class, class after class (then
 * shuffled if asked). Loading reads every file's header only, to check that it opens and
 * to learn its channel count; the pixels are decoded when samples are gathered, through
 * the dataset's decoder (image.h does the decoding), and come out as HWC floats 0..255.
 *
 * Entries whose names start with '.' are ignored (".DS_Store", ".ipynb_checkpoints").
 * Other files that are not .png/.jpg/.jpeg (any case) are skipped and counted; a folder
 * inside a class folder is an error, as is an image directly in DIR. */
#ifndef DTRAIN_IMAGES_H
#define DTRAIN_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/data.h"
#include "dtrain/error.h"

typedef struct {
  int height, width;   /* resize every image to this; 0, 0: the first image's size */
  int channels;        /* 1 grayscale or 3 RGB: convert every image to it; 0: the first
                        * image's channel count, and an image with another is an error */
  const dt_dataset_t *classes_from; /* NULL: class names are the sorted sub-folder names;
                        * else a training set whose class names this folder must have
                        * (a test or validation folder) */
  bool shuffle;        /* shuffle the file list with shuffle_seed (as Keras does) so that a
                        * validation split's tail holds every class */
  uint64_t shuffle_seed;
  size_t *skipped;     /* if non-NULL: set to the number of files skipped for not being
                        * .png/.jpg/.jpeg (case-insensitive) */
} dt_images_opts_t;

/* Fills out (owned: free with dt_dataset_free): shape (height, width, channels), x.base
 * NULL and a decoder, y DT_I32 class ids (DT_Y_CLASSES), num_classes and class_names,
 * what = dir, meta_json `"class_names": [...], "image_size": [h, w], "channels": c`.
 * "The first image" is the first file of the first class in name order, whether or not
 * the list is shuffled. Errors name the folder or file: dir missing or unreadable, no
 * class folders, a class folder without images, an image directly in dir, a folder
 * inside a class folder, a file that is not a PNG/JPEG or whose header is corrupt,
 * another channel count when channels is 0, class folders that differ from
 * classes_from's. A file that is corrupt past its header fails when it is gathered. */
int dt_images_load(const char *dir, const dt_images_opts_t *o, dt_dataset_t *out,
                   dt_error_t *err);

#endif
