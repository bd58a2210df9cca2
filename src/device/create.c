/* Creating a device: the backend is chosen here, once, by the options' kind. */
#include <stdlib.h>

#include "cpu/cpu.h"
#include "dtrain/device.h"

int dt_device_create(const dt_device_options_t *opt, dt_device_t **out, dt_error_t *err) {
  static const dt_device_options_t defaults;
  if (!opt) opt = &defaults;
  *out = NULL;
  dt_device_t *dev = calloc(1, sizeof *dev);
  if (!dev) return dt_error_set(err, DT_ERR_NOMEM, "out of memory creating the device");
  int rc;
  switch (opt->kind) {
    case DT_DEVICE_CPU:
      rc = dt_cpu_device_init(dev, opt, err);
      break;
    default:
      rc = dt_error_set(err, DT_ERR_ARG, "unknown device kind %d", (int)opt->kind);
  }
  if (rc) {
    free(dev);
    return rc;
  }
  if ((rc = dt_device_stream_create(dev, &dev->stream, err))) {
    dev->ops->destroy(dev);
    free(dev);
    return dt_error_prefix(err, "creating the default stream: ");
  }
  *out = dev;
  return 0;
}

void dt_device_destroy(dt_device_t *dev) {
  if (!dev) return;
  dt_device_stream_destroy(dev->stream);
  dev->ops->destroy(dev);
  free(dev);
}
