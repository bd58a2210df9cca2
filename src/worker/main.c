/* dtrain-worker: reads a run config, trains, evaluates, and turns any error into a
 * message and an exit status (0 success, 1 the run failed, 2 bad command line or
 * config).
 *
 * Started by mpirun/srun it is one rank of a synchronous job (MPI communicator);
 * started on its own it trains alone (single-process communicator). An error that
 * the other ranks cannot know about ends the whole job through the communicator's
 * abort, so that no rank is left waiting for one that has gone. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/device.h"
#include "dtrain/events.h"
#include "dtrain/fpenv.h"
#include "dtrain/log.h"
#include "dtrain/test_hooks.h"
#include "cmd_evaluate.h"
#include "cmd_export.h"
#include "cmd_generate.h"
#include "cmd_import.h"
#include "cmd_predict.h"
#include "gan_trainer.h"
#include "inspect.h"
#include "preempt.h"
#include "trainer.h"

enum { EXIT_RUN_FAILED = 1, EXIT_USAGE = 2 };

/* Subcommands: the first argument names one; without one, dtrain-worker trains (every
 * command line from before the subcommands means what it meant). Each entry's main takes
 * the arguments after the command's name (argv[0] is the command's name). */
typedef struct {
  const char *name;
  int (*main)(int argc, char **argv);
  const char *summary;
} command_t;

static const command_t commands[] = {
    {"predict", cmd_predict_main, "a saved model's outputs for an input file, to .npy or .csv"},
    {"evaluate", cmd_evaluate_main, "a saved model's loss and metrics on a dataset"},
    {"export", cmd_export, "a saved model as an ONNX or Keras file (-o FILE.onnx|FILE.keras)"},
    {"generate", cmd_generate_main, "samples from a VAE's prior or a generator, to .npy"},
    {"import", cmd_import_main, "a Keras model (.keras or .json) as a dtrain model config"},
    {NULL, NULL, NULL}};

static void usage(FILE *out) {
  fputs(
      "Usage: dtrain-worker --config FILE [--set SECTION.KEY=VALUE]... [options]\n"
      "       dtrain-worker COMMAND [options]   (COMMAND --help for its options)\n"
      "\n"
      "Trains the model described by an INI run config (data, [layer.N] stack, optimizer,\n"
      "schedule, epochs, batch size, seed), writes it to <tensorboard.logdir>/<run>/model/\n"
      "(a saved model) and evaluates it on the test set.\n"
      "\n"
      "Commands on a trained model (a saved model or a checkpoint directory):\n",
      out);
  for (const command_t *c = commands; c->name; c++) fprintf(out, "  %-25s %s\n", c->name, c->summary);
  fputs(
      "\n"
      "Options:\n"
      "  -c, --config FILE         the run config, e.g. examples/fmnist-mlp.ini\n"
      "  -s, --set SEC.KEY=VALUE   override one config value (repeatable),\n"
      "                            e.g. --set train.lr=0.01 --set layer.2.units=512\n"
      "      --print-config        print the effective config after overrides, with every\n"
      "                            default the run would use as a comment, and exit\n"
      "      --events FILE         print a TensorBoard event file as text and exit; a\n"
      "                            corrupt record is reported with its byte offset\n"
      "      --no-progress         nothing inside an epoch: no live bar on a terminal, no\n"
      "                            progress lines in a log or under mpirun\n"
      "      --progress-every SEC  where there is no live bar (a log, a pipe, mpirun), a\n"
      "                            progress line every SEC seconds (default 10; 0: every\n"
      "                            step)\n"
      "  -q, --quiet               print only errors and the final test result\n"
      "  -v, --all-ranks           in a multi-rank job, every rank prints its info lines\n"
      "                            (by default only rank 0 does; errors always print)\n"
      "      --resume [DIR]        continue from the newest good checkpoint in DIR (default:\n"
      "                            checkpoint.dir); a corrupt newest one is reported and\n"
      "                            the one before it used; none at all starts from scratch\n"
      "      --inspect CKPT        verify a checkpoint (directory, or a root: its newest)\n"
      "                            and print what it holds, then exit\n"
      "      --save-params FILE    at the end, write the parameters (raw little-endian\n"
      "                            float32, flat buffer order) to FILE (rank 0)\n"
      "  -h, --help                show this help and exit\n"
      "  -V, --version             show the version and exit\n"
      "\n"
      "Keys are documented in docs/configuration.md. Unknown keys are errors.\n"
      "Several ranks: mpirun -np N dtrain-worker --config FILE (or srun); the rank and\n"
      "world size come from MPI, each rank trains on its shard of every global batch.\n"
      "Parameter servers: start dtrain-ps, then each worker as a process of its own with\n"
      "--set sync.mode=ps --set ps.servers=HOST:PORT,... --set ps.num_workers=N (the\n"
      "servers assign each worker its id, or --set ps.worker_id=I; README, \"Parameter\n"
      "server\").\n"
      "SIGTERM, SIGINT or SIGUSR1: finish the current step, write a checkpoint\n"
      "(checkpoint.dir) and the model so far, exit 0; a second signal exits at once. Under\n"
      "mpirun send SIGUSR1\n"
      "to mpirun (it forwards it; a SIGTERM makes mpirun abort the job).\n"
      "Exit status: 0 success (or stopped by a signal after a checkpoint or the model), 1 the\n"
      "run failed\n"
      "(data, I/O, numerics), 2 bad usage or config.\n",
      out);
}

typedef struct {
  const char *config_path;
  const char *events_path;
  const char *save_params_path;
  const char *inspect_path;
  const char *resume_dir; /* --resume DIR; NULL with --resume alone: checkpoint.dir */
  bool resume, print_config, no_progress, quiet, all_ranks;
  double progress_every_s;
} cli_t;

/* Fills cli and the list of --set assignments (*sets, malloc'd, caller frees). */
static int parse_cli(int argc, char **argv, cli_t *cli, char ***sets, int *nsets) {
  static const struct option longopts[] = {{"config", required_argument, 0, 'c'},
                                           {"set", required_argument, 0, 's'},
                                           {"print-config", no_argument, 0, 'P'},
                                           {"events", required_argument, 0, 'E'},
                                           {"no-progress", no_argument, 0, 'N'},
                                           {"progress-every", required_argument, 0, 'G'},
                                           {"quiet", no_argument, 0, 'q'},
                                           {"all-ranks", no_argument, 0, 'v'},
                                           {"verbose", no_argument, 0, 'v'},
                                           {"save-params", required_argument, 0, 'S'},
                                           {"resume", optional_argument, 0, 'R'},
                                           {"inspect", required_argument, 0, 'I'},
                                           {"help", no_argument, 0, 'h'},
                                           {"version", no_argument, 0, 'V'},
                                           {0, 0, 0, 0}};
  *sets = calloc((size_t)argc, sizeof **sets);
  *nsets = 0;
  if (!*sets) return EXIT_RUN_FAILED;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":c:s:qvhV", longopts, NULL)) != -1) {
    switch (c) {
      case 'c': cli->config_path = optarg; break;
      case 's': (*sets)[(*nsets)++] = optarg; break;
      case 'P': cli->print_config = true; break;
      case 'E': cli->events_path = optarg; break;
      case 'N': cli->no_progress = true; break;
      case 'G': {
        char *end;
        cli->progress_every_s = strtod(optarg, &end);
        if (end == optarg || *end || !(cli->progress_every_s >= 0 && cli->progress_every_s < 1e9)) {
          fprintf(stderr, "dtrain-worker: --progress-every '%s': expected seconds >= 0\n", optarg);
          return EXIT_USAGE;
        }
        break;
      }
      case 'q': cli->quiet = true; break;
      case 'v': cli->all_ranks = true; break;
      case 'S': cli->save_params_path = optarg; break;
      case 'R':
        cli->resume = true;
        cli->resume_dir = optarg;
        break;
      case 'I': cli->inspect_path = optarg; break;
      case 'h': usage(stdout); exit(0);
      case 'V': printf("dtrain-worker %s\n", DT_VERSION); exit(0);
      case ':':
        fprintf(stderr, "dtrain-worker: option '%s' needs a value\n", argv[optind - 1]);
        return EXIT_USAGE;
      default:
        fprintf(stderr, "dtrain-worker: unknown option '%s' (see --help)\n", argv[optind - 1]);
        return EXIT_USAGE;
    }
  }
  /* "--resume DIR" (with a space): getopt leaves DIR as the one operand. */
  if (cli->resume && !cli->resume_dir && optind == argc - 1) cli->resume_dir = argv[optind++];
  if (optind < argc) {
    fprintf(stderr, "dtrain-worker: unexpected argument '%s' (see --help)\n", argv[optind]);
    return EXIT_USAGE;
  }
  if (!cli->config_path && !cli->events_path && !cli->inspect_path) {
    fprintf(stderr, "dtrain-worker: --config FILE is required (see --help)\n");
    return EXIT_USAGE;
  }
  return 0;
}

/* Errors in the config or its fit to the data are the user's to fix: exit 2. */
static int exit_code_for(int rc) {
  return rc == DT_ERR_CONFIG || rc == DT_ERR_SHAPE || rc == DT_ERR_ARG || rc == DT_ERR_MISMATCH
             ? EXIT_USAGE
             : EXIT_RUN_FAILED;
}

/* Writes the model's flat parameter buffer as raw little-endian float32. */
static int save_params(const char *path, dt_model_t *m, dt_error_t *err) {
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "save_params writes the host's floats as they are: little-endian hosts only"
#endif
  float *p;
  size_t n = m->num_params;
  int rc = dt_model_to_host(m, DT_MODEL_PARAMS, &p, err);
  if (rc) return rc;
  FILE *f = fopen(path, "wb");
  if (!f) return dt_error_set(err, DT_ERR_IO, "cannot create '%s' for --save-params", path);
  bool ok = fwrite(p, sizeof *p, n, f) == n;
  ok = fclose(f) == 0 && ok;
  return ok ? 0 : dt_error_set(err, DT_ERR_IO, "cannot write the parameters to '%s'", path);
}

/* --resume: from the given root or checkpoint, else from checkpoint.dir. A root given
 * on the command line also receives this run's checkpoints if checkpoint.dir is unset. */
static int resume(trainer_t *t, const cli_t *cli, dt_error_t *err) {
  if (!cli->resume) return 0;
  const char *from = cli->resume_dir ? cli->resume_dir : t->ckpt.dir;
  if (!from[0])
    return dt_error_set(err, DT_ERR_ARG, "--resume needs a directory: --resume DIR, or set "
                        "checkpoint.dir in the config");
  if (!t->ckpt.dir[0] && !inspect_is_checkpoint(from))
    snprintf(t->ckpt.dir, sizeof t->ckpt.dir, "%s", from);
  bool found;
  return trainer_resume(t, from, &found, err);
}

/* --print-config: the effective config with every default the run would use, which
 * reading it the way a run does (data and model shape included) brings out. If that
 * fails, the config as given is printed all the same and the error follows. */
static int print_config(dt_config_t *cfg, const cli_t *cli, const dt_test_hooks_t *hooks,
                        dt_log_t *log) {
  dt_comm_t comm;
  dt_comm_init_single(&comm);
  dt_error_t err = {0};
  dt_device_t *dev = NULL;
  trainer_t t;
  memset(&t, 0, sizeof t);
  trainer_flags_t flags = {.progress = PROGRESS_OFF, .config_only = true, .hooks = *hooks};
  dt_log_t quiet = *log;
  quiet.quiet = true;
  int rc = dt_device_create(&(dt_device_options_t){0}, &dev, &err);
  if (!rc && gan_is_run(cfg)) {
    gan_cli_t gcli = {cli->config_path, &flags, NULL, NULL};
    rc = gan_main(cfg, &gcli, &comm, dev, quiet, &err);
  } else if (!rc) {
    rc = trainer_setup(&t, cfg, cli->config_path, &comm, dev, quiet, &flags, &err);
  }
  size_t need = rc ? dt_config_to_string(cfg, NULL, 0) : dt_config_to_string_all(cfg, NULL, 0);
  char *text = malloc(need + 1);
  if (text) {
    if (rc) dt_config_to_string(cfg, text, need + 1);
    else dt_config_to_string_all(cfg, text, need + 1);
    fputs(text, stdout);
    free(text);
  }
  trainer_free(&t);
  dt_device_destroy(dev);
  dt_config_free(cfg);
  dt_comm_finalize(&comm);
  if (rc) {
    dt_log_error(log, "%s (the defaults are not shown)", err.msg);
    return exit_code_for(rc);
  }
  return text ? 0 : EXIT_RUN_FAILED;
}

static int train_main(int argc, char **argv);

int main(int argc, char **argv) {
  if (argc > 1)
    for (const command_t *c = commands; c->name; c++)
      if (strcmp(argv[1], c->name) == 0) {
        dt_fp_flush_denormals();
        return c->main(argc - 1, argv + 1);
      }
  return train_main(argc, argv);
}

static int train_main(int argc, char **argv) {
  /* Training runs in this thread: denormal floats (momentum of weights that never get a
   * gradient decays into them) cost microcode assists on every operation, and the loss
   * of values below FLT_MIN changes no result that matters (dtrain/fpenv.h). Threads
   * made later start with this mode; the loader's threads set it themselves too. */
  dt_fp_flush_denormals();
  cli_t cli = {.progress_every_s = PROGRESS_DEFAULT_EVERY_S};
  char **sets;
  int nsets, rc;
  dt_error_t err = {0};
  dt_config_t *cfg = dt_config_new();
  if (!cfg) return EXIT_RUN_FAILED;
  if ((rc = parse_cli(argc, argv, &cli, &sets, &nsets))) {
    free(sets);
    dt_config_free(cfg);
    return rc;
  }
  if (cli.events_path) {
    free(sets);
    dt_config_free(cfg);
    rc = dt_events_dump(stdout, cli.events_path, &err);
    if (rc) fprintf(stderr, "error: %s\n", err.msg);
    return rc ? EXIT_RUN_FAILED : 0;
  }
  if (cli.inspect_path) {
    free(sets);
    dt_config_free(cfg);
    rc = inspect_checkpoint(stdout, cli.inspect_path, &err);
    if (rc) fprintf(stderr, "error: %s\n", err.msg);
    return rc ? EXIT_RUN_FAILED : 0;
  }
  /* Test switches, read once here and handed down (test_hooks.h). */
  dt_test_hooks_t hooks = dt_test_hooks_read();
  /* The config is read before MPI starts: a rank that cannot read it exits at once,
   * and mpirun ends the job. */
  dt_log_t log = dt_log_make(0, 1);
  log.quiet = cli.quiet;
  rc = dt_config_load_file(cfg, cli.config_path, &err);
  for (int i = 0; rc == 0 && i < nsets; i++) rc = dt_config_override(cfg, sets[i], &err);
  free(sets);
  if (rc) {
    /* A config that cannot be read is a usage error, whatever the cause. */
    dt_log_error(&log, "%s", err.msg);
    dt_config_free(cfg);
    return EXIT_USAGE;
  }
  if (cli.print_config) return print_config(cfg, &cli, &hooks, &log);

  dt_comm_t comm;
  bool launched = dt_comm_mpi_launched();
  if (launched) {
    if ((rc = dt_comm_init_mpi(&comm, &argc, &argv, &err))) {
      dt_log_error(&log, "%s", err.msg);
      dt_config_free(cfg);
      return EXIT_RUN_FAILED;
    }
  } else {
    dt_comm_init_single(&comm);
  }
  log = dt_log_make(comm.rank, comm.world);
  log.quiet = cli.quiet;
  log.all_ranks = cli.all_ranks;

  /* The one device of this process, with the test switch that picks its convolution
   * path. */
  if (hooks.conv_blas)
    dt_log_warn(&log, "DT_CONV_BLAS: convolutions run on OpenBLAS only (a test switch)");
  if (hooks.no_bf16)
    dt_log_warn(&log, "DT_TEST_NO_BF16: the CPU counts as having no bf16 (a test switch)");
  dt_device_t *dev;
  if ((rc = dt_device_create(
           &(dt_device_options_t){.cpu.conv_blas = hooks.conv_blas, .cpu.no_bf16 = hooks.no_bf16},
           &dev, &err))) {
    dt_log_error(&log, "%s", err.msg);
    dt_config_free(cfg);
    if (comm.world > 1) dt_comm_abort(&comm, EXIT_RUN_FAILED);
    dt_comm_finalize(&comm);
    return EXIT_RUN_FAILED;
  }

  /* No live bar under an MPI launcher: mpirun hands each rank a pseudo-terminal even
   * when its own output goes to a file, so the bar would end up in logs; several
   * ranks drawing would garble it anyway. Plain progress lines are printed there. */
  trainer_t t;
  trainer_flags_t flags = {
      .progress = cli.no_progress ? PROGRESS_OFF : progress_auto(stdout, launched),
      .progress_every_s = cli.progress_every_s, .resume = cli.resume, .hooks = hooks};
  /* A run with a [gan] section trains two models (gan_trainer.h). */
  if (gan_is_run(cfg)) {
    gan_cli_t gcli = {cli.config_path, &flags, cli.resume_dir, cli.save_params_path};
    rc = gan_main(cfg, &gcli, &comm, dev, log, &err);
    if (rc) dt_log_error(&log, "%s", err.msg);
    dt_device_destroy(dev);
    dt_config_free(cfg);
    int code = rc ? exit_code_for(rc) : 0;
    if (rc && rc != DT_ERR_MISMATCH && comm.world > 1) dt_comm_abort(&comm, code);
    dt_comm_finalize(&comm);
    return code;
  }
  rc = trainer_setup(&t, cfg, cli.config_path, &comm, dev, log, &flags, &err);
  if (rc == 0) {
    char summary[8192];
    dt_model_summary(&t.model, summary, sizeof summary);
    dt_log_info(&log, "dtrain-worker %s: %s, %d rank(s), %zu training / %zu validation / %zu "
                "test samples; %ld compute thread%s; denormals %s in the training thread",
                DT_VERSION, cli.config_path, comm.world, t.data.train.n, t.data.val.n,
                t.data.test.n, t.opt.threads, t.opt.threads == 1 ? "" : "s",
                dt_fp_denormals_flushed() ? "flushed to zero" : "NOT flushed");
    run_data_describe(&t.data, &log);
    dt_log_info(&log, "%s", summary);
    rc = resume(&t, &cli, &err);
    if (rc == 0) {
      preempt_install();
      rc = trainer_run(&t, &err);
    }
  }
  if (rc == 0 && t.preempted && t.ckpt.dir[0])
    dt_log_info(&log, "Stopped by a signal after checkpoint step %ld; continue with --resume",
                t.run.step);
  else if (rc == 0 && t.preempted)
    dt_log_warn(&log, "Stopped by a signal at step %ld without a checkpoint (checkpoint.dir is "
                "not set): %s%s, but the run cannot be resumed", t.run.step,
                t.final_model.written[0] ? "the model so far is in " : "no model was kept",
                t.final_model.written);
  if (rc == 0 && t.final_model.failed)
    dt_log_warn(&log, "the model could not be saved (see the error above)");
  if (rc == 0 && t.ckpt_failures)
    dt_log_warn(&log, "%d checkpoint(s) could not be written (see the errors above)",
                t.ckpt_failures);
  if (rc == 0 && cli.save_params_path && comm.rank == 0 && !t.preempted)
    rc = save_params(cli.save_params_path, &t.model, &err);
  if (rc == 0) {
    /* Reported so that memory use is visible in every run's output. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    dt_log_info(&log, "Peak RSS: %.1f MB", (double)ru.ru_maxrss / 1024.0);
  } else {
    dt_log_error(&log, "%s", err.msg);
  }
  trainer_free(&t);
  dt_device_destroy(dev);
  dt_config_free(cfg);
  int code = rc ? exit_code_for(rc) : 0;
  /* Only a disagreement found by the agreement check is known to every rank; after
   * any other error the others may be waiting in a collective for this rank. */
  if (rc && rc != DT_ERR_MISMATCH && comm.world > 1) dt_comm_abort(&comm, code);
  dt_comm_finalize(&comm);
  return code;
}
