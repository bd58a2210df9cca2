/* Reading the [ps] section, server addresses and the token (see ps.h). */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/ps.h"

const char *const dt_ps_consistency_names[] = {"async", "ssp", "sync", NULL};

int dt_ps_parse_addr(const char *s, dt_ps_addr_t *out, const char *what, dt_error_t *err) {
  memset(out, 0, sizeof *out);
  const char *host = s, *colon;
  size_t hlen;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':')
      return dt_error_set(err, DT_ERR_CONFIG, "%s: '%s' is not [ipv6-address]:port", what, s);
    host = s + 1;
    hlen = (size_t)(close - host);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon)
      return dt_error_set(err, DT_ERR_CONFIG, "%s: '%s' has no port (expected host:port)", what,
                          s);
    hlen = (size_t)(colon - s);
  }
  if (hlen == 0 || hlen >= sizeof out->host)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: '%s': the host is empty or too long", what, s);
  const char *port = colon + 1;
  char *end;
  errno = 0;
  long p = strtol(port, &end, 10);
  if (!isdigit((unsigned char)port[0]) || *end || errno || p < 0 || p > 65535)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: '%s': the port must be a number 0-65535", what,
                        s);
  memcpy(out->host, host, hlen);
  snprintf(out->port, sizeof out->port, "%ld", p);
  return 0;
}

static int parse_servers(dt_config_t *cfg, const char *list, dt_ps_config_t *o, dt_error_t *err) {
  const char *where = dt_config_where(cfg, "ps", "servers");
  char what[DT_PS_PATH_MAX];
  size_t n = strlen(list);
  for (size_t pos = 0; pos < n;) {
    size_t len = strcspn(list + pos, ",");
    char item[DT_PS_HOST_MAX + 16];
    size_t a = pos, b = pos + len;
    while (a < b && isspace((unsigned char)list[a])) a++;
    while (b > a && isspace((unsigned char)list[b - 1])) b--;
    if (b == a || b - a >= sizeof item)
      return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] servers: entry %d is empty or too long",
                          where, o->nservers + 1);
    if (o->nservers == DT_PS_MAX_SERVERS)
      return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] servers: more than %d servers", where,
                          DT_PS_MAX_SERVERS);
    memcpy(item, list + a, b - a);
    item[b - a] = '\0';
    snprintf(what, sizeof what, "%s: [ps] servers", where);
    int rc = dt_ps_parse_addr(item, &o->servers[o->nservers], what, err);
    if (rc) return rc;
    o->nservers++;
    pos += len + 1;
  }
  return 0;
}

/* A token file holds the secret on its first line; surrounding whitespace (the
 * newline an editor adds) is not part of it. */
static int read_token_file(const char *path, const char *where, dt_ps_config_t *o,
                           dt_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] token_file: cannot open '%s': %s", where,
                        path, strerror(errno));
  char buf[DT_PS_TOKEN_MAX + 2];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  size_t a = 0;
  while (a < n && isspace((unsigned char)buf[a])) a++;
  size_t b = a;
  while (b < n && buf[b] != '\n' && buf[b] != '\r') b++;
  while (b > a && isspace((unsigned char)buf[b - 1])) b--;
  if (b == a)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] token_file '%s' is empty", where, path);
  if (b - a > DT_PS_TOKEN_MAX)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] token_file '%s': the token is longer than "
                        "%d bytes", where, path, DT_PS_TOKEN_MAX);
  memcpy(o->token, buf + a, b - a);
  o->token_len = b - a;
  o->has_token = true;
  return 0;
}

static int read_token(dt_config_t *cfg, dt_ps_config_t *o, dt_error_t *err) {
  const char *path;
  int rc = dt_config_get_string(cfg, "ps", "token_file", "", &path, err);
  if (rc) return rc;
  if (path[0]) return read_token_file(path, dt_config_where(cfg, "ps", "token_file"), o, err);
  const char *env = getenv("DTRAIN_PS_TOKEN");
  if (!env || !env[0]) return 0;
  size_t len = strlen(env);
  if (len > DT_PS_TOKEN_MAX)
    return dt_error_set(err, DT_ERR_CONFIG, "DTRAIN_PS_TOKEN is longer than %d bytes",
                        DT_PS_TOKEN_MAX);
  memcpy(o->token, env, len);
  o->token_len = len;
  o->has_token = true;
  return 0;
}

/* ps.worker_id: a number, or "assigned" (the default): the servers give one. */
static int read_worker_id(dt_config_t *cfg, dt_ps_config_t *o, dt_error_t *err) {
  const char *v;
  int rc = dt_config_get_string(cfg, "ps", "worker_id", "assigned", &v, err);
  if (rc) return rc;
  if (strcmp(v, "assigned") == 0) {
    o->worker_id = DT_PS_ASSIGNED;
    return 0;
  }
  char *end;
  errno = 0;
  long id = strtol(v, &end, 10);
  if (!isdigit((unsigned char)v[0]) || *end || errno || id > DT_PS_MAX_WORKERS - 1)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] worker_id = '%s': a number from 0 to %d, "
                        "or 'assigned' (the servers give each worker its own)",
                        dt_config_where(cfg, "ps", "worker_id"), v, DT_PS_MAX_WORKERS - 1);
  o->worker_id = id;
  return 0;
}

int dt_ps_config_read(dt_config_t *cfg, dt_ps_config_t *o, dt_error_t *err) {
  memset(o, 0, sizeof *o);
  const char *servers, *ckpt, *logdir;
  int rc;
  if ((rc = dt_config_get_string(cfg, "ps", "servers", "", &servers, err)) ||
      (rc = read_worker_id(cfg, o, err)) ||
      (rc = dt_config_get_int(cfg, "ps", "num_workers", 1, 1, DT_PS_MAX_WORKERS, &o->num_workers,
                              err)) ||
      (rc = dt_config_get_int(cfg, "ps", "push_every", 1, 1, 1000000, &o->push_every, err)) ||
      (rc = dt_config_get_bool(cfg, "ps", "overlap", false, &o->overlap, err)) ||
      (rc = dt_config_get_double(cfg, "ps", "heartbeat_s", 1.0, 0.01, 3600.0, &o->heartbeat_s,
                                 err)) ||
      (rc = dt_config_get_double(cfg, "ps", "reconnect_timeout_s", 60.0, 0.0, 1e7,
                                 &o->reconnect_timeout_s, err)) ||
      (rc = dt_config_get_double(cfg, "ps", "heartbeat_timeout_s", 10.0, 0.05, 1e7,
                                 &o->heartbeat_timeout_s, err)) ||
      (rc = dt_config_get_choice(cfg, "ps", "consistency", "async", dt_ps_consistency_names,
                                 &o->consistency, err)) ||
      (rc = dt_config_get_int(cfg, "ps", "staleness", 2, 0, 1000000, &o->staleness, err)) ||
      (rc = dt_config_get_bool(cfg, "ps", "staleness_lr", false, &o->staleness_lr, err)) ||
      (rc = dt_config_get_string(cfg, "ps", "checkpoint_dir", "", &ckpt, err)) ||
      (rc = dt_config_get_double(cfg, "ps", "checkpoint_every_s", 30.0, 0.0, 1e7,
                                 &o->checkpoint_every_s, err)) ||
      (rc = dt_config_get_int(cfg, "ps", "checkpoint_every_updates", 0, 0, 1L << 40,
                              &o->checkpoint_every_updates, err)) ||
      (rc = dt_config_get_int(cfg, "ps", "keep_checkpoints", 3, 0, 1000000, &o->keep_checkpoints,
                              err)) ||
      (rc = dt_config_get_double(cfg, "ps", "max_frame_mb", 64.0, 0.001, 4000.0, &o->max_frame_mb,
                                 err)) ||
      (rc = dt_config_get_double(cfg, "ps", "max_buffered_mb", 128.0, 0.001, 1e6,
                                 &o->max_buffered_mb, err)) ||
      (rc = dt_config_get_double(cfg, "ps", "max_memory_mb", 512.0, 0.01, 1e7, &o->max_memory_mb,
                                 err)) ||
      (rc = dt_config_get_int(cfg, "ps", "max_connections", 256, 1, 65536, &o->max_connections,
                              err)) ||
      (rc = dt_config_get_string(cfg, "ps", "logdir", "", &logdir, err)) ||
      (rc = dt_config_get_double(cfg, "ps", "log_every_s", 10.0, 1.0, 1e6, &o->log_every_s,
                                 err)) ||
      (rc = read_token(cfg, o, err)) || (rc = parse_servers(cfg, servers, o, err)))
    return rc;
  if (o->worker_id != DT_PS_ASSIGNED && o->worker_id >= o->num_workers)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] worker_id = %ld must be below num_workers "
                        "= %ld (workers are numbered from 0)",
                        dt_config_where(cfg, "ps", "worker_id"), o->worker_id, o->num_workers);
  if (o->heartbeat_timeout_s <= o->heartbeat_s)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] heartbeat_timeout_s = %g must be longer "
                        "than heartbeat_s = %g, or live workers would be dropped",
                        dt_config_where(cfg, "ps", "heartbeat_timeout_s"), o->heartbeat_timeout_s,
                        o->heartbeat_s);
  if (o->max_memory_mb < o->max_frame_mb)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] max_memory_mb = %g must be at least "
                        "max_frame_mb = %g, or the largest frame could never be received",
                        dt_config_where(cfg, "ps", "max_memory_mb"), o->max_memory_mb,
                        o->max_frame_mb);
  if (strlen(ckpt) >= sizeof o->checkpoint_dir)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] checkpoint_dir: path too long",
                        dt_config_where(cfg, "ps", "checkpoint_dir"));
  snprintf(o->checkpoint_dir, sizeof o->checkpoint_dir, "%s", ckpt);
  if (strlen(logdir) >= sizeof o->logdir - 16)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [ps] logdir: path too long",
                        dt_config_where(cfg, "ps", "logdir"));
  snprintf(o->logdir, sizeof o->logdir, "%s", logdir);
  return 0;
}

bool dt_ps_token_equal(const uint8_t *expected, size_t elen, const uint8_t *got, size_t glen) {
  /* Every byte of the expected token is visited whatever arrived, and no branch
   * depends on a byte's value: the time reveals the lengths, not the contents. */
  volatile uint8_t diff = (uint8_t)(elen != glen);
  for (size_t i = 0; i < elen; i++) {
    uint8_t g = i < glen ? got[i] : 0;
    diff |= (uint8_t)(expected[i] ^ g);
  }
  return diff == 0;
}
