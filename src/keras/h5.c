/* model.weights.h5 in memory through libhdf5 (see h5.h). libhdf5 prints its error
 * stack to stderr by default; we turn that off once and say what failed ourselves. */
#include "h5.h"

#include <hdf5.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct dt_h5 {
  hid_t file;
  char what[256];
};

static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static int fail(dt_h5_t *h, const char *path, const char *doing, dt_error_t *err) {
  return dt_error_set(err, DT_ERR_FORMAT, "%s: %s '%s' failed (libhdf5)", h->what, doing, path);
}

int dt_h5_create(const char *what, dt_h5_t **out, dt_error_t *err) {
  quiet();
  dt_h5_t *h = calloc(1, sizeof *h);
  if (!h) return dt_error_set(err, DT_ERR_NOMEM, "out of memory creating %s", what);
  snprintf(h->what, sizeof h->what, "%s", what);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  /* The core driver without a backing store: the file lives in memory only. */
  if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0) {
    if (fapl >= 0) H5Pclose(fapl);
    free(h);
    return dt_error_set(err, DT_ERR_IO, "%s: cannot set up libhdf5's in-memory driver", what);
  }
  h->file = H5Fcreate(what, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (h->file < 0) {
    free(h);
    return dt_error_set(err, DT_ERR_IO, "%s: libhdf5 cannot create an in-memory file", what);
  }
  *out = h;
  return 0;
}

static int set_name(dt_h5_t *h, hid_t g, const char *path, const char *name, dt_error_t *err) {
  hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR), attr = -1;
  bool ok = type >= 0 && space >= 0 && H5Tset_size(type, strlen(name) ? strlen(name) : 1) >= 0 &&
            H5Tset_cset(type, H5T_CSET_UTF8) >= 0;
  if (ok) attr = H5Acreate2(g, "name", type, space, H5P_DEFAULT, H5P_DEFAULT);
  ok = ok && attr >= 0 && H5Awrite(attr, type, name) >= 0;
  if (attr >= 0) H5Aclose(attr);
  if (space >= 0) H5Sclose(space);
  if (type >= 0) H5Tclose(type);
  return ok ? 0 : fail(h, path, "writing the name attribute of", err);
}

int dt_h5_group(dt_h5_t *h, const char *path, const char *name, dt_error_t *err) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t g = H5Lexists(h->file, path, H5P_DEFAULT) > 0
                ? H5Gopen2(h->file, path, H5P_DEFAULT)
                : H5Gcreate2(h->file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Pclose(lcpl);
  if (g < 0) return fail(h, path, "creating group", err);
  int rc = name ? set_name(h, g, path, name, err) : 0;
  H5Gclose(g);
  return rc;
}

int dt_h5_write(dt_h5_t *h, const char *path, const dt_shape_t *shape, const float *data,
                dt_error_t *err) {
  hsize_t dims[4];
  for (int i = 0; i < shape->ndim; i++) dims[i] = (hsize_t)shape->dims[i];
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t space = shape->ndim ? H5Screate_simple(shape->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t d = space < 0 ? -1
                      : H5Dcreate2(h->file, path, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT,
                                   H5P_DEFAULT);
  bool ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
  if (d >= 0) H5Dclose(d);
  if (space >= 0) H5Sclose(space);
  H5Pclose(lcpl);
  return ok ? 0 : fail(h, path, "writing dataset", err);
}

int dt_h5_image(dt_h5_t *h, void **data, size_t *len, dt_error_t *err) {
  if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0) return fail(h, "/", "flushing", err);
  ssize_t n = H5Fget_file_image(h->file, NULL, 0);
  if (n <= 0) return fail(h, "/", "taking the image of", err);
  if (!(*data = malloc((size_t)n))) return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
  if (H5Fget_file_image(h->file, *data, (size_t)n) != n) {
    free(*data);
    *data = NULL;
    return fail(h, "/", "taking the image of", err);
  }
  *len = (size_t)n;
  return 0;
}

int dt_h5_open(const void *data, size_t len, const char *what, dt_h5_t **out, dt_error_t *err) {
  quiet();
  /* An HDF5 file starts with its signature at offset 0 (or 512, 1024, ...; Keras'
   * files have it at 0): check it first so that a file that is not HDF5 is named as such. */
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (len < 8 || memcmp(data, sig, 8) != 0)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: not an HDF5 file (no HDF5 signature)", what);
  dt_h5_t *h = calloc(1, sizeof *h);
  if (!h) return dt_error_set(err, DT_ERR_NOMEM, "out of memory opening %s", what);
  snprintf(h->what, sizeof h->what, "%s", what);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  bool ok = fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 &&
            H5Pset_file_image(fapl, (void *)data, len) >= 0;
  h->file = ok ? H5Fopen(what, H5F_ACC_RDONLY, fapl) : -1;
  if (fapl >= 0) H5Pclose(fapl);
  if (h->file < 0) {
    free(h);
    return dt_error_set(err, DT_ERR_FORMAT, "%s: libhdf5 cannot open it (a corrupt HDF5 file)",
                        what);
  }
  *out = h;
  return 0;
}

/* Whether every link on the way to path exists (H5Lexists fails on a missing parent). */
int dt_h5_exists(dt_h5_t *h, const char *path) {
  char part[512];
  size_t n = strlen(path);
  if (n >= sizeof part) return 0;
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    memcpy(part, path, i);
    part[i] = '\0';
    if (H5Lexists(h->file, part, H5P_DEFAULT) <= 0) return 0;
  }
  return 1;
}

int dt_h5_shape(dt_h5_t *h, const char *path, dt_shape_t *shape, dt_error_t *err) {
  if (!dt_h5_exists(h, path))
    return dt_error_set(err, DT_ERR_FORMAT, "%s: no dataset '%s'", h->what, path);
  hid_t d = H5Dopen2(h->file, path, H5P_DEFAULT);
  if (d < 0) return fail(h, path, "opening dataset", err);
  hid_t space = H5Dget_space(d);
  int nd = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
  hsize_t dims[8];
  int rc = 0;
  if (nd < 0 || nd > 4 || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
    rc = dt_error_set(err, DT_ERR_FORMAT, "%s: dataset '%s' has %d axes (at most 4 expected)",
                      h->what, path, nd);
  } else {
    memset(shape, 0, sizeof *shape);
    shape->ndim = nd;
    for (int i = 0; i < nd; i++) {
      if (dims[i] > (1u << 30)) {
        rc = dt_error_set(err, DT_ERR_FORMAT, "%s: dataset '%s' is too large", h->what, path);
        break;
      }
      shape->dims[i] = (int)dims[i];
    }
  }
  if (space >= 0) H5Sclose(space);
  H5Dclose(d);
  return rc;
}

int dt_h5_read(dt_h5_t *h, const char *path, float *out, size_t count, dt_error_t *err) {
  dt_shape_t s;
  int rc = dt_h5_shape(h, path, &s, err);
  if (rc) return rc;
  size_t n = 1;
  for (int i = 0; i < s.ndim; i++) n *= (size_t)s.dims[i];
  if (n != count)
    return dt_error_set(err, DT_ERR_SHAPE, "%s: dataset '%s' has %zu values, %zu expected",
                        h->what, path, n, count);
  hid_t d = H5Dopen2(h->file, path, H5P_DEFAULT);
  if (d < 0) return fail(h, path, "opening dataset", err);
  hid_t type = H5Dget_type(d);
  H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
  if (type >= 0) H5Tclose(type);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
    H5Dclose(d);
    return dt_error_set(err, DT_ERR_FORMAT, "%s: dataset '%s' holds no numbers", h->what, path);
  }
  herr_t r = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
  H5Dclose(d);
  return r < 0 ? fail(h, path, "reading dataset", err) : 0;
}

void dt_h5_close(dt_h5_t *h) {
  if (!h) return;
  if (h->file >= 0) H5Fclose(h->file);
  free(h);
}
