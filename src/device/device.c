/* What every backend shares: stream and event handles, and the host views of device
 * memory (see device.h). */
#include "dtrain/device.h"

#include <stdlib.h>

int dt_device_stream_create(dt_device_t *dev, dt_stream_t **out, dt_error_t *err) {
  *out = NULL;
  dt_stream_t *s = calloc(1, sizeof *s);
  if (!s) return dt_error_set(err, DT_ERR_NOMEM, "out of memory creating a stream");
  s->dev = dev;
  int rc = dev->ops->stream_init(s, err);
  if (rc) {
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void dt_device_stream_destroy(dt_stream_t *s) {
  if (!s) return;
  s->dev->ops->stream_release(s);
  free(s);
}

int dt_device_event_create(dt_device_t *dev, dt_device_event_t **out, dt_error_t *err) {
  *out = NULL;
  dt_device_event_t *e = calloc(1, sizeof *e);
  if (!e) return dt_error_set(err, DT_ERR_NOMEM, "out of memory creating an event");
  e->dev = dev;
  int rc = dev->ops->event_init(e, err);
  if (rc) {
    free(e);
    return rc;
  }
  *out = e;
  return 0;
}

void dt_device_event_destroy(dt_device_event_t *e) {
  if (!e) return;
  e->dev->ops->event_release(e);
  free(e);
}

int dt_device_to_host(dt_stream_t *s, void *p, size_t bytes, void *mirror, void **host,
                      dt_error_t *err) {
  if (s->dev->host_memory) {
    /* The host reads the memory itself once the work writing it is done. */
    *host = p;
    return dt_device_stream_synchronize(s, err);
  }
  dt_device_copy(s, mirror, p, bytes, DT_COPY_D2H);
  *host = mirror;
  return dt_device_stream_synchronize(s, err);
}

int dt_device_from_host(dt_stream_t *s, void *p, const void *host, size_t bytes,
                        dt_error_t *err) {
  if (host == p) return 0;
  dt_device_copy(s, p, host, bytes, DT_COPY_H2D);
  /* The host may reuse its memory as soon as this returns. */
  return dt_device_stream_synchronize(s, err);
}
