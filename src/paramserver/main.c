/* dtrain-ps: the parameter server program. Reads the command line and [ps] from the
 * job's config, hands them to the event loop (server.c), which serves workers until
 * SIGTERM/SIGINT (saving a checkpoint when ps.checkpoint_dir is set), and turns errors
 * into an exit status: 0 after a clean stop, 1 when the server failed (cannot listen,
 * unusable checkpoint, last checkpoint failed), 2 for a bad command line or config. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"
#include "dtrain/fpenv.h"
#include "server.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

static void usage(FILE *out) {
  fputs(
      "Usage: dtrain-ps [--config FILE] [--set ps.KEY=VALUE]... [options]\n"
      "\n"
      "A parameter server for dtrain-worker runs with sync.mode = ps. It owns one range\n"
      "of the model's flat parameter vector (which one, the workers' HELLO says: the\n"
      "position of this server in their ps.servers list), applies their gradients with\n"
      "the optimizer of their config, and answers their pulls under the consistency\n"
      "model ps.consistency (async, ssp with ps.staleness, or sync).\n"
      "\n"
      "Options:\n"
      "  -c, --config FILE         the job's run config; only [ps] is read here (the other\n"
      "                            sections are the workers'), so one file serves both\n"
      "  -s, --set SEC.KEY=VALUE   override one config value (repeatable), e.g.\n"
      "                            --set ps.consistency=ssp --set ps.staleness=2\n"
      "  -l, --listen HOST[:PORT]  address to listen on (default 127.0.0.1:7070); port 0\n"
      "                            takes a free port. Listening beyond loopback without a\n"
      "                            token (ps.token_file or DTRAIN_PS_TOKEN) is warned about\n"
      "      --port-file FILE      write the port listened on to FILE once listening\n"
      "  -r, --resume              restore the newest checkpoint under ps.checkpoint_dir\n"
      "                            (starts empty, with a warning, if there is none yet);\n"
      "                            running workers reconnect and carry on\n"
      "  -q, --quiet               print only warnings and errors\n"
      "  -h, --help                show this help and exit\n"
      "  -V, --version             show the version and exit\n"
      "\n"
      "Keys are documented in docs/configuration.md ([ps]). SIGTERM or SIGINT saves a\n"
      "checkpoint (when ps.checkpoint_dir is set) and stops.\n"
      "Exit status: 0 stopped by a signal, 1 the server failed, 2 bad usage or config.\n",
      out);
}

typedef struct {
  const char *config_path, *listen, *port_file;
  bool resume, quiet;
} cli_t;

static int parse_cli(int argc, char **argv, cli_t *cli, char ***sets, int *nsets) {
  static const struct option longopts[] = {{"config", required_argument, 0, 'c'},
                                           {"set", required_argument, 0, 's'},
                                           {"listen", required_argument, 0, 'l'},
                                           {"port-file", required_argument, 0, 'P'},
                                           {"resume", no_argument, 0, 'r'},
                                           {"quiet", no_argument, 0, 'q'},
                                           {"help", no_argument, 0, 'h'},
                                           {"version", no_argument, 0, 'V'},
                                           {0, 0, 0, 0}};
  *sets = calloc((size_t)argc, sizeof **sets);
  *nsets = 0;
  if (!*sets) return EXIT_FAILED;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":c:s:l:rqhV", longopts, NULL)) != -1) {
    switch (c) {
      case 'c': cli->config_path = optarg; break;
      case 's': (*sets)[(*nsets)++] = optarg; break;
      case 'l': cli->listen = optarg; break;
      case 'P': cli->port_file = optarg; break;
      case 'r': cli->resume = true; break;
      case 'q': cli->quiet = true; break;
      case 'h': usage(stdout); exit(0);
      case 'V': printf("dtrain-ps %s\n", DT_VERSION); exit(0);
      case ':':
        fprintf(stderr, "dtrain-ps: option '%s' needs a value\n", argv[optind - 1]);
        return EXIT_USAGE;
      default:
        fprintf(stderr, "dtrain-ps: unknown option '%s' (see --help)\n", argv[optind - 1]);
        return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "dtrain-ps: unexpected argument '%s' (see --help)\n", argv[optind]);
    return EXIT_USAGE;
  }
  return 0;
}

/* The other sections of a job file are the workers' business: marked as used here so
 * that the unused-key check looks at [ps] only. */
static int claim_other_sections(void *ctx, const char *section, const char *key,
                                const char *value) {
  (void)value;
  const char *v;
  if (strcmp(section, "ps") != 0) dt_config_get_string(ctx, section, key, "", &v, NULL);
  return 0;
}

static int load_config(const cli_t *cli, char **sets, int nsets, dt_ps_config_t *out,
                       dt_error_t *err) {
  dt_config_t *cfg = dt_config_new();
  if (!cfg) return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
  int rc = cli->config_path ? dt_config_load_file(cfg, cli->config_path, err) : 0;
  for (int i = 0; rc == 0 && i < nsets; i++) rc = dt_config_override(cfg, sets[i], err);
  if (rc == 0) rc = dt_ps_config_read(cfg, out, err);
  if (rc == 0) {
    dt_config_foreach(cfg, claim_other_sections, cfg);
    rc = dt_config_check_unused(cfg, err);
  }
  dt_config_free(cfg);
  /* Whatever went wrong while reading the config is for the user to fix. */
  return rc ? DT_ERR_CONFIG : 0;
}

/* HOST:PORT, [V6]:PORT, or a bare host (or IPv4 address) on the default port. */
static int split_listen(const char *arg, char *host, char *port, dt_error_t *err) {
  dt_ps_addr_t a;
  if (arg[0] != '[' && !strchr(arg, ':')) {
    if (!arg[0] || strlen(arg) >= DT_PS_HOST_MAX)
      return dt_error_set(err, DT_ERR_ARG, "--listen: the host is empty or too long");
    snprintf(host, DT_PS_HOST_MAX, "%s", arg);
    return 0;
  }
  if (dt_ps_parse_addr(arg, &a, "--listen", err)) return DT_ERR_ARG;
  snprintf(host, DT_PS_HOST_MAX, "%s", a.host);
  snprintf(port, 8, "%s", a.port);
  return 0;
}

static bool is_loopback(const char *host) {
  return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
         strcmp(host, "::1") == 0;
}

static int run(const dt_ps_config_t *cfg, dt_log_t *log, const cli_t *cli, bool *failed,
               dt_error_t *err) {
  char host[DT_PS_HOST_MAX] = "127.0.0.1", port[8] = "7070";
  int rc;
  if (cli->listen && (rc = split_listen(cli->listen, host, port, err))) return rc;
  if (cli->resume && !cfg->checkpoint_dir[0])
    return dt_error_set(err, DT_ERR_ARG, "--resume needs ps.checkpoint_dir");
  if (!is_loopback(host) && !cfg->has_token)
    dt_log_warn(log, "listening on %s without a token: anyone who can reach it can change "
                "the model (set ps.token_file or DTRAIN_PS_TOKEN)", host);
  ps_server_opts_t opts = {.host = host, .port = port, .port_file = cli->port_file,
                           .resume = cli->resume};
  return ps_server_run(cfg, log, &opts, failed, err);
}

int main(int argc, char **argv) {
  /* The updates are applied in this thread (the event loop's): no microcode assists for
   * denormal optimizer state (dtrain/fpenv.h). */
  dt_fp_flush_denormals();
  cli_t cli = {0};
  char **sets;
  int nsets, rc;
  if ((rc = parse_cli(argc, argv, &cli, &sets, &nsets))) {
    free(sets);
    return rc;
  }
  /* A worker that vanishes mid-write must not kill the server. */
  signal(SIGPIPE, SIG_IGN);
  dt_error_t err = {0};
  dt_log_t log = dt_log_make(0, 1);
  log.quiet = cli.quiet;
  dt_ps_config_t cfg;
  if ((rc = load_config(&cli, sets, nsets, &cfg, &err))) {
    free(sets);
    dt_log_error(&log, "%s", err.msg);
    return EXIT_USAGE;
  }
  free(sets);
  bool failed = false;
  rc = run(&cfg, &log, &cli, &failed, &err);
  if (rc) {
    dt_log_error(&log, "%s", err.msg);
    return rc == DT_ERR_ARG || rc == DT_ERR_CONFIG ? EXIT_USAGE : EXIT_FAILED;
  }
  return failed ? EXIT_FAILED : 0;
}
