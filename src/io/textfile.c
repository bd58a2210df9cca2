/* Reading a whole text file into one NUL-terminated buffer (see textfile.h). One read of
 * the file's size for a regular file; a buffer that grows for pipes and for files that
 * grow while they are read. */
#define _POSIX_C_SOURCE 200809L

#include "textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int dt_textfile_read(const char *path, char **data, size_t *len, size_t *bom, dt_error_t *err) {
  *data = NULL;
  *len = 0;
  *bom = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return dt_error_set(err, DT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return dt_error_set(err, DT_ERR_IO, "'%s': cannot stat: %s", path, strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return dt_error_set(err, DT_ERR_IO, "'%s' is a directory, not a file", path);
  }
  /* The size is a hint (one read of it, plus one more that sees the end); the buffer keeps
   * one spare byte for the terminating NUL. */
  size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < SIZE_MAX - 2
                   ? (size_t)st.st_size + 1
                   : (size_t)1 << 16;
  char *buf = malloc(cap + 1);
  size_t got = 0;
  int rc = DT_OK;
  while (buf) {
    if (got == cap) {
      size_t bigger = cap < SIZE_MAX / 4 ? 2 * cap : 0;
      char *grown = bigger ? realloc(buf, bigger + 1) : NULL;
      if (!grown) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap = bigger;
    }
    ssize_t n = read(fd, buf + got, cap - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = dt_error_set(err, DT_ERR_IO, "'%s': read failed: %s", path, strerror(errno));
      break;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (!buf) return dt_error_set(err, DT_ERR_NOMEM, "'%s': out of memory reading %zu bytes", path, got);
  if (rc) {
    free(buf);
    return rc;
  }
  buf[got] = '\0';
  if (got >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) *bom = 3;
  *data = buf;
  *len = got;
  return DT_OK;
}
