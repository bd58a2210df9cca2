"""Checks a training run's logdir through a live TensorBoard server's HTTP data API.

usage: check_tb_http.py TENSORBOARD_BIN LOGDIR TRAINER_OUTPUT

Starts `tensorboard --logdir LOGDIR` on a free loopback port, waits (bounded) until the
scalars of both runs are loaded, and checks that the train and validation runs list the
epoch_loss/epoch_accuracy tags and that their last values match the last epoch line the
trainer printed (4 decimals). The server is always stopped before exiting.
"""
import json
import re
import subprocess
import sys
import time
import urllib.request

TIMEOUT_S = 90


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def last_epoch_values(output_path):
    lines = [l for l in open(output_path) if l.startswith("Epoch ")]
    if not lines:
        fail(f"no epoch line in {output_path}")
    vals = dict(re.findall(r"(\w+): ([0-9.]+)", lines[-1]))
    return {k: float(v) for k, v in vals.items()}


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.loads(r.read().decode())


def main():
    tb, logdir, output = sys.argv[1:4]
    expected = last_epoch_values(output)
    proc = subprocess.Popen(
        [tb, "--logdir", logdir, "--host", "127.0.0.1", "--port", "0", "--load_fast=false",
         "--reload_interval", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base, deadline = None, time.time() + TIMEOUT_S
        # TensorBoard prints the address it bound, e.g. "TensorBoard 2.21.0 at http://127.0.0.1:41235/".
        while base is None and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                fail(f"tensorboard exited early with status {proc.wait()}")
            m = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if m:
                base = m.group(1)
        if base is None:
            fail("tensorboard did not print its address in time")
        tags = {}
        while time.time() < deadline:
            tags = get(base, "/data/plugin/scalars/tags")
            if all("epoch_accuracy" in tags.get(run, {}) for run in ("train", "validation")):
                break
            time.sleep(0.5)
        else:
            fail(f"scalar tags not loaded in {TIMEOUT_S}s: {tags}")
        print("runs and scalar tags:", {run: sorted(t) for run, t in tags.items()})
        for tag in ("batch_loss", "learning_rate", "samples_per_sec", "step_time_ms/compute"):
            if tag not in tags["train"]:
                fail(f"train run lacks scalar tag {tag}: {sorted(tags['train'])}")
        checks = [("train", "epoch_loss", "loss"), ("train", "epoch_accuracy", "accuracy"),
                  ("validation", "epoch_loss", "val_loss"),
                  ("validation", "epoch_accuracy", "val_accuracy")]
        for run, tag, key in checks:
            series = get(base, f"/data/plugin/scalars/scalars?run={run}&tag={tag}")
            wall, step, value = series[-1]
            want = expected[key]
            print(f"{run}/{tag}: last step {step} value {value:.6f}, trainer printed {key}: {want}")
            if abs(value - want) > 0.5e-4 + 1e-7:
                fail(f"{run}/{tag} = {value}, trainer printed {want}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print("check_tb_http: ok")


if __name__ == "__main__":
    main()
