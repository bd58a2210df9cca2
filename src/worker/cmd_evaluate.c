/* `dtrain-worker evaluate`: a saved model's loss and metrics on a dataset, computed as
 * the trainer computes them for its test set (model_eval.h; see cmd_evaluate.h). */
#define _POSIX_C_SOURCE 200809L
#include "cmd_evaluate.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_common.h"
#include "dtrain/comm.h"
#include "model_eval.h"

static const char PROG[] = "evaluate";

static void usage(FILE *out) {
  fputs(
      "Usage: dtrain-worker evaluate --model DIR [--input PATH [--targets FILE]] [options]\n"
      "\n"
      "Prints a trained model's loss and metrics (accuracy for classifiers, mae for\n"
      "regression, all bits right for the binary-addition task) on a dataset, computed as\n"
      "training computes them for its test set. Without --input: the test split of the\n"
      "model's own config (data.test..., with data.test_limit), so the line printed is the\n"
      "\"Test:\" line of the run that trained it.\n"
      "\n"
      "Options:\n"
      "  -m, --model DIR           a saved model (<run folder>/model), a checkpoint, or a\n"
      "                            checkpoint root (its newest good checkpoint)\n"
      "  -i, --input PATH          the samples with their targets, in any data format (see\n"
      "                            predict --help; a CSV file needs the target columns)\n"
      "  -t, --targets FILE        idx and numpy: the targets' file\n"
      "  -f, --format FORMAT       idx, csv, numpy, images or text (default: from PATH)\n"
      "  -s, --set SEC.KEY=VALUE   override a value of the model's config (repeatable), e.g.\n"
      "                            --set data.dir=/data to find its test files elsewhere\n"
      "      --limit N             only the first N samples\n"
      "      --batch-size N        samples per forward pass (default: train.batch_size)\n"
      "      --threads N           compute threads (default: train.threads, else all cores)\n"
      "  -q, --quiet               print only the result line\n"
      "  -h, --help                show this help and exit\n"
      "\n"
      "Exit status: 0 success, 1 a corrupt model or data file, 2 bad usage, a path that is\n"
      "not a model, or data that do not fit the model.\n",
      out);
}

static void print_result(const char *label, const eval_result_t *r) {
  if (!isnan(r->neg_elbo))
    printf("%s: loss: %.4f - reconstruction_loss: %.4f - kl_loss: %.4f - negative ELBO: %.2f "
           "nats per sample (%zu samples)\n", label, r->loss, r->reconstruction, r->kl,
           r->neg_elbo, r->samples);
  else if (!isnan(r->reconstruction))
    printf("%s: loss: %.4f - reconstruction_loss: %.4f - kl_loss: %.4f (%zu samples)\n", label,
           r->loss, r->reconstruction, r->kl, r->samples);
  else if (!isnan(r->mae))
    printf("%s: loss: %.4f - mae: %.4f (%zu samples)\n", label, r->loss, r->mae, r->samples);
  else if (isnan(r->accuracy))
    printf("%s: loss: %.4f (%zu samples)\n", label, r->loss, r->samples);
  else if (!isnan(r->exact))
    printf("%s: loss: %.4f - accuracy: %.4f - all bits right: %.4f (%zu samples)\n", label,
           r->loss, r->accuracy, r->exact, r->samples);
  else
    printf("%s: loss: %.4f - accuracy: %.4f (%zu samples)\n", label, r->loss, r->accuracy,
           r->samples);
}

static int evaluate(const cmd_opts_t *o, dt_error_t *err) {
  dt_device_t *dev = NULL;
  saved_model_t sm;
  memset(&sm, 0, sizeof sm);
  dt_dataset_t ds = {0};
  dt_scaling_t scaling = {0};
  int32_t *labels = NULL;
  float *targets = NULL;
  int rc = cmd_open_model(o, &dev, &sm, err);
  if (!rc) {
    model_input_t in = o->input;
    in.targets = true;
    if (in.x) {
      rc = model_data_load(&sm, &in, &ds, &scaling, NULL, err);
    } else {
      rc = model_data_load_test(&sm, &ds, &scaling, err);
      if (!rc && o->input.limit > 0) dt_dataset_truncate(&ds, (size_t)o->input.limit);
    }
  }
  if (rc) goto out;
  dt_model_t *m = &sm.model;
  labels = malloc(sizeof *labels * (size_t)m->capacity);
  targets = malloc(sizeof *targets * (size_t)m->capacity * dt_model_output_size(m));
  if (!labels || !targets) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    goto out;
  }
  dt_comm_t comm;
  dt_comm_init_single(&comm);
  dt_rng_t rng;
  dt_rng_seed(&rng, 1);
  model_eval_env_t env = {m, sm.target, &scaling, &comm, labels,
                          sm.target == TARGET_LABELS ? NULL : targets, &rng, NULL};
  eval_result_t r = {0};
  rc = model_evaluate(&env, &ds, &r, err);
  dt_comm_finalize(&comm);
  if (rc) goto out;
  if (!o->quiet)
    printf("Evaluating the model in %s (%s weights, step %ld) on %s (%zu samples)\n", sm.dir,
           sm.weights, sm.step, ds.what ? ds.what : "the generated test set", ds.n);
  print_result(o->input.x ? "Evaluation" : "Test", &r);
out:
  free(labels);
  free(targets);
  dt_dataset_free(&ds);
  dt_scaling_free(&scaling);
  saved_model_free(&sm);
  dt_device_destroy(dev);
  return rc;
}

int cmd_evaluate_main(int argc, char **argv) {
  static const struct option longopts[] = {{"model", required_argument, 0, 'm'},
                                           {"input", required_argument, 0, 'i'},
                                           {"targets", required_argument, 0, 't'},
                                           {"format", required_argument, 0, 'f'},
                                           {"set", required_argument, 0, 's'},
                                           {"limit", required_argument, 0, 'L'},
                                           {"batch-size", required_argument, 0, 'B'},
                                           {"threads", required_argument, 0, 'T'},
                                           {"quiet", no_argument, 0, 'q'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  cmd_opts_t o = {0};
  const char **sets = calloc((size_t)argc + 1, sizeof *sets);
  if (!sets) return CMD_EXIT_FAILED;
  o.sets = sets;
  opterr = 0;
  optind = 1;
  int code = -1, c;
  while (code < 0 && (c = getopt_long(argc, argv, ":m:i:t:f:s:qh", longopts, NULL)) != -1) {
    switch (c) {
      case 'm': o.model = optarg; break;
      case 'i': o.input.x = optarg; break;
      case 't': o.input.y = optarg; break;
      case 'f': o.input.format = optarg; break;
      case 's': sets[o.nsets++] = optarg; break;
      case 'q': o.quiet = true; break;
      case 'L': if (!cmd_parse_count(PROG, "--limit", optarg, &o.input.limit)) code = 2; break;
      case 'B': if (!cmd_parse_count(PROG, "--batch-size", optarg, &o.batch_size)) code = 2; break;
      case 'T': if (!cmd_parse_count(PROG, "--threads", optarg, &o.threads)) code = 2; break;
      case 'h': usage(stdout); code = 0; break;
      case ':':
        fprintf(stderr, "dtrain-worker evaluate: option '%s' needs a value\n", argv[optind - 1]);
        code = CMD_EXIT_USAGE;
        break;
      default:
        fprintf(stderr, "dtrain-worker evaluate: unknown option '%s' (see evaluate --help)\n",
                argv[optind - 1]);
        code = CMD_EXIT_USAGE;
    }
  }
  if (code < 0 && optind < argc) {
    fprintf(stderr, "dtrain-worker evaluate: unexpected argument '%s' (see evaluate --help)\n",
            argv[optind]);
    code = CMD_EXIT_USAGE;
  }
  if (code < 0 && !o.model) {
    fprintf(stderr, "dtrain-worker evaluate: --model DIR is required (see evaluate --help)\n");
    code = CMD_EXIT_USAGE;
  }
  if (code < 0 && o.input.y && !o.input.x) {
    fprintf(stderr, "dtrain-worker evaluate: --targets needs --input\n");
    code = CMD_EXIT_USAGE;
  }
  if (code < 0) {
    dt_error_t err = {0};
    int rc = evaluate(&o, &err);
    if (rc) fprintf(stderr, "dtrain-worker evaluate: error: %s\n", err.msg);
    code = rc ? cmd_exit_code(rc) : 0;
  }
  free(sets);
  return code;
}
