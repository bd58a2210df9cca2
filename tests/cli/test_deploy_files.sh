# The deployment files of deploy/, checked without a container engine or a cluster:
#  - every compose file passes `docker-compose config` (Debian's docker-compose), and
#    the resolved services have the topology, restart policies, healthchecks and
#    volumes docs/deploy.md describes;
#  - the Kubernetes manifests parse as YAML and agree with each other (server names,
#    worker count, MPI ranks); every DTRAIN_* variable the compose files and
#    manifests set is one the entrypoint reads, and every one it reads is documented;
#  - the Dockerfile copies what exists, and its runtime stage's packages provide every
#    shared library the built programs load;
#  - the entrypoint turns DTRAIN_* variables into the expected command lines (dry
#    run), hands out distinct worker ids to replicas and the same one to a restarted
#    one, rejects bad settings, and its healthchecks see real servers and workers;
#  - deploy/slurm/train.sbatch (with stand-ins for srun, scancel and scontrol) turns
#    the time-limit signal into a checkpoint and a requeue, and the requeued job resumes;
#  - the entrypoint's mpirun wrapper turns SIGTERM into a checkpoint of every rank.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"
D="$SRC/deploy"
E="$D/entrypoint.sh"
PS="$BUILD/src/paramserver/dtrain-ps"
PY=/usr/bin/python3
BG_LIMIT=120

cleanup() {
  bg_kill_all
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# expect_line NAME OUTPUT LINE: OUTPUT has LINE as one of its lines.
expect_line() {
  if grep -qxF -- "$3" <<<"$2"; then pass; else fail "$1: no line '$3' in: $2"; fi
}

# --- compose files ---
if ! command -v docker-compose >/dev/null; then
  fail "docker-compose is not installed (scripts/install-deps.sh installs it)"
else
  for f in "$D"/docker-compose*.yml; do
    if out=$(DTRAIN_NUM_WORKERS=3 docker-compose -f "$f" config 2>&1); then
      pass
      printf '%s\n' "$out" >"$TMP/$(basename "$f").resolved"
    else
      fail "docker-compose config $(basename "$f"): $out"
    fi
  done
fi
[ -f "$TMP/docker-compose.yml.resolved" ] && [ -f "$TMP/docker-compose.mpi.yml.resolved" ] &&
  pass || fail "deploy/ lacks docker-compose.yml or docker-compose.mpi.yml (or they failed)"

# Structural checks of what compose resolved and of the manifests. The program
# prints one line per problem and "ok N" with the number of checks that held.
out=$("$PY" - "$TMP" "$D" "$SRC/docs/deploy.md" <<'EOF' 2>&1
import glob, os, re, sys
import yaml

tmp, deploy, docs = sys.argv[1:4]
problems, ok = [], 0

def check(cond, what):
    global ok
    if cond:
        ok += 1
    else:
        problems.append(what)

entry = open(os.path.join(deploy, "entrypoint.sh")).read()
known = set(re.findall(r"\bDTRAIN_[A-Z0-9_]+", entry))
doc = open(docs).read() if os.path.exists(docs) else ""
for v in sorted(known):
    check(v in doc, f"docs/deploy.md does not document {v}, which the entrypoint reads")

def env_of(svc):
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}

# docker-compose.yml: ps0, ps1, a scalable worker, TensorBoard.
c = yaml.safe_load(open(os.path.join(tmp, "docker-compose.yml.resolved")))
s = c["services"]
check(sorted(s) == ["ps0", "ps1", "tensorboard", "worker"], f"compose services: {sorted(s)}")
w = s["worker"]
we = env_of(w)
check(we.get("DTRAIN_SERVERS") == "ps0:7070,ps1:7070", f"worker DTRAIN_SERVERS {we.get('DTRAIN_SERVERS')}")
check(we.get("DTRAIN_NUM_WORKERS") == "3", "worker DTRAIN_NUM_WORKERS does not follow the environment")
check(we.get("DTRAIN_WORKER_ID") == "auto" and we.get("DTRAIN_ID_DIR", "").startswith("/shared/"),
      "workers must claim ids on the shared volume")
check("container_name" not in w, "a container_name would stop --scale")
check(str(w.get("restart", "")).startswith("on-failure"), f"worker restart: {w.get('restart')}")
for name in ("ps0", "ps1"):
    p = s[name]
    pe = env_of(p)
    check(p.get("restart") in ("unless-stopped", "always"), f"{name} restart: {p.get('restart')}")
    check(pe.get("DTRAIN_CHECKPOINT_DIR") == f"/shared/{name}", f"{name} checkpoint dir {pe.get('DTRAIN_CHECKPOINT_DIR')}")
    check("healthcheck" in p, f"{name} has no healthcheck")
    check(w.get("depends_on", {}).get(name, {}).get("condition") == "service_healthy",
          f"the workers do not wait for {name} to be healthy")
    check(not p.get("ports"), f"{name} publishes its port on the host")
for name in ("ps0", "ps1", "worker"):
    check(any(str(v).startswith("shared:/shared") for v in s[name].get("volumes", [])),
          f"{name} does not mount the shared volume")
tb = s["tensorboard"]
check("/shared/runs" in tb.get("command", []) and "healthcheck" in tb, "tensorboard: logdir or healthcheck")
check(we.get("DTRAIN_LOGDIR") == "/shared/runs", "workers do not log where TensorBoard reads")

# docker-compose.mpi.yml: sshd workers and a launcher over them.
m = yaml.safe_load(open(os.path.join(tmp, "docker-compose.mpi.yml.resolved")))["services"]
check({"mpiworker", "launcher"} <= set(m), f"mpi compose services: {sorted(m)}")
le = env_of(m["launcher"])
check(le.get("DTRAIN_MPI_HOSTS") == "mpiworker", "the launcher does not look up the mpiworker service")
check(env_of(m["mpiworker"]).get("DTRAIN_SSH_DIR") == le.get("DTRAIN_SSH_DIR") == "/ssh",
      "launcher and workers must share the ssh directory")
check("healthcheck" in m["mpiworker"], "mpiworker has no healthcheck")

# Variables set by compose files and manifests are ones the entrypoint reads.
raw = {}
for f in glob.glob(os.path.join(deploy, "docker-compose*.yml")):
    for k, svc in yaml.safe_load(open(f))["services"].items():
        for v in env_of(svc):
            if v.startswith("DTRAIN_"):
                check(v in known, f"{os.path.basename(f)}: {k} sets {v}, which the entrypoint does not read")
    for v in re.findall(r"\$\{(DTRAIN_[A-Z0-9_]+)", open(f).read()):
        check(v in doc, f"docs/deploy.md does not document {v} ({os.path.basename(f)})")

def containers(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "containers":
                yield from v
            else:
                yield from containers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from containers(v)

k8s = {}
for f in sorted(glob.glob(os.path.join(deploy, "k8s", "*.yaml"))):
    docs_ = [d for d in yaml.safe_load_all(open(f)) if d]
    check(len(docs_) > 0, f"{f} is empty")
    for d in docs_:
        check("apiVersion" in d and "kind" in d and d.get("metadata", {}).get("name"),
              f"{os.path.basename(f)}: a document without apiVersion/kind/name")
        k8s[(d["kind"], d["metadata"]["name"])] = d
        for ctr in containers(d):
            check(ctr.get("image", "").split(":")[0] in ("dtrain", "dtrain-mpi"), f"image {ctr.get('image')}")
            for e in ctr.get("env", []):
                if e["name"].startswith("DTRAIN_"):
                    check(e["name"] in known, f"{os.path.basename(f)} sets {e['name']}, which the entrypoint does not read")

def env_k8s(ctr):
    return {e["name"]: e.get("value") for e in ctr.get("env", [])}

sts = k8s.get(("StatefulSet", "dtrain-ps"))
job = k8s.get(("Job", "dtrain-ps-workers"))
check(sts is not None and ("Service", "dtrain-ps") in k8s, "no StatefulSet/Service dtrain-ps")
check(job is not None, "no Job dtrain-ps-workers")
if sts and job:
    n = sts["spec"]["replicas"]
    check(sts["spec"]["serviceName"] == "dtrain-ps", "the StatefulSet's serviceName")
    we = env_k8s(job["spec"]["template"]["spec"]["containers"][0])
    want = ",".join(f"dtrain-ps-{i}.dtrain-ps:7070" for i in range(n))
    check(we.get("DTRAIN_SERVERS") == want, f"workers' DTRAIN_SERVERS {we.get('DTRAIN_SERVERS')} != {want}")
    check(job["spec"].get("completionMode") == "Indexed", "the workers' Job is not Indexed")
    check(str(job["spec"]["completions"]) == str(job["spec"]["parallelism"]) == we.get("DTRAIN_NUM_WORKERS"),
          "completions, parallelism and DTRAIN_NUM_WORKERS differ")
    se = env_k8s(sts["spec"]["template"]["spec"]["containers"][0])
    check(se.get("DTRAIN_CONSISTENCY") == we.get("DTRAIN_CONSISTENCY"), "servers and workers differ in consistency")
mpi = k8s.get(("MPIJob", "dtrain-fmnist"))
check(mpi is not None and mpi["apiVersion"] == "kubeflow.org/v2beta1", "no kubeflow.org/v2beta1 MPIJob")
if mpi:
    specs = mpi["spec"]["mpiReplicaSpecs"]
    args = specs["Launcher"]["template"]["spec"]["containers"][0]["args"]
    np_ = int(args[args.index("-np") + 1])
    check(np_ == specs["Worker"]["replicas"] * mpi["spec"].get("slotsPerWorker", 1),
          f"mpirun -np {np_} is not Worker replicas x slotsPerWorker")
    check("--resume" in args and any(a.startswith("checkpoint.dir=/shared") for a in args),
          "the MPIJob does not checkpoint to the shared volume and resume")
    check(mpi["spec"]["sshAuthMountPath"].startswith("/home/dtrain"), "sshAuthMountPath is not the user's home")

for p in problems:
    print("PROBLEM:", p)
print("ok", ok)
EOF
)
echo "$out" | grep -v '^ok'
ok=$(sed -nE 's/^ok ([0-9]+)$/\1/p' <<<"$out")
if [ -n "$ok" ] && ! grep -q "^PROBLEM" <<<"$out" && [ "$ok" -ge 40 ]; then pass; else
  fail "structural checks of compose files and manifests: $out"; fi

# --- shell scripts parse ---
for f in "$E" "$D/netns-cluster.sh" "$D/slurm/train.sbatch"; do
  bash -n "$f" && pass || fail "bash -n $f"
done
if command -v shellcheck >/dev/null; then
  out=$(shellcheck -S warning "$E" "$D/netns-cluster.sh" "$D/slurm/train.sbatch" 2>&1) && pass ||
    fail "shellcheck: $out"
fi

# --- Dockerfile ---
DF="$D/Dockerfile"
grep -qE '^FROM debian:\$\{DEBIAN_RELEASE\} AS build' "$DF" && grep -q '^ARG DEBIAN_RELEASE=bookworm' "$DF" &&
  grep -qE '^FROM debian:\$\{DEBIAN_RELEASE\}-slim AS runtime' "$DF" && pass ||
  fail "the Dockerfile is not a bookworm build stage + slim runtime stage"
# Every COPY source from the build context exists.
while read -r src; do
  [ -e "$SRC/$src" ] && pass || fail "Dockerfile copies $src, which does not exist"
done < <(grep -E '^COPY [^-]' "$DF" | awk '{for (i = 2; i < NF; i++) print $i}')
grep -q '^COPY deploy/entrypoint.sh /usr/local/bin/dtrain-entrypoint' "$DF" &&
  grep -q '^ENTRYPOINT \["dtrain-entrypoint"\]' "$DF" && pass || fail "entrypoint not installed as dtrain-entrypoint"
[ "$(grep -c '^USER dtrain' "$DF")" -ge 3 ] && pass || fail "a runtime stage runs as root"
# The runtime stage's packages (and what they depend on, and what Debian always has)
# provide every shared library the two programs load. Checked against this
# machine's installed packages: the same Debian release.
runtime_pkgs=$(awk '/AS runtime/ {r = 1} r && /apt-get install/ {i = 1} i {print} i && !/\\$/ {exit}' "$DF" |
  tr ' \\' '\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm)$')
closure() {
  local -A seen=()
  local queue=("$@") p deps
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    [ -n "${seen[$p]:-}" ] && continue
    seen[$p]=1
    deps=$(dpkg-query -W -f='${Depends},${Pre-Depends}' "$p" 2>/dev/null | tr ',|' '\n\n' |
      sed -E 's/\(.*\)//; s/:any//; s/^ +//; s/ +$//' | grep -v '^$')
    for d in $deps; do queue+=("${d%%:*}"); done
  done
  printf '%s\n' "${!seen[@]}"
}
have=$(closure $runtime_pkgs)
for bin in "$WORKER" "$PS"; do
  while read -r lib path; do
    # Debian 12 merged /lib into /usr/lib, but dpkg may know the file by either name.
    real=$(readlink -f "$path")
    pkg=$( (dpkg -S "$real" || dpkg -S "${real#/usr}") 2>/dev/null | head -1 | cut -d: -f1)
    prio=$(dpkg-query -W -f='${Priority}' "$pkg" 2>/dev/null)
    if [ -z "$pkg" ]; then
      fail "$(basename "$bin") loads $lib ($path), which no Debian package owns"
    elif grep -qxF "$pkg" <<<"$have" || [ "$prio" = required ]; then
      pass
    else
      fail "$(basename "$bin") loads $lib from $pkg, which the runtime stage does not install ($runtime_pkgs)"
    fi
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// && $1 !~ /^lib(asan|ubsan)/ {print $1, $3}')
done
grep -qx dataset-fashion-mnist <<<"$runtime_pkgs" && pass || fail "no dataset-fashion-mnist in the runtime stage"

# --- entrypoint: environment to command line ---
out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 DTRAIN_CHECKPOINT_DIR=/shared/ps0 DTRAIN_CONSISTENCY=ssp \
  DTRAIN_STALENESS=3 DTRAIN_HEARTBEAT_TIMEOUT_S=4 DTRAIN_TOKEN=s3cret DTRAIN_CHECKPOINT_EVERY_S=15 \
  bash "$E" server --set ps.max_connections=9 2>&1)
expect_line "server" "$out" "exec: dtrain-ps --config /usr/share/dtrain/examples/fmnist-mlp.ini --listen 0.0.0.0:7070 --set ps.consistency=ssp --set ps.staleness=3 --set ps.heartbeat_timeout_s=4 --set ps.checkpoint_dir=/shared/ps0 --set ps.checkpoint_every_s=15 --resume --set ps.max_connections=9"
expect_line "server token" "$out" "env: DTRAIN_PS_TOKEN=<set>"
grep -q s3cret <<<"$out" && fail "the dry run printed the token" || pass
out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 DTRAIN_ROLE=worker DTRAIN_SERVERS=ps0:7070,ps1:7070 DTRAIN_WORKER_ID=1 \
  DTRAIN_NUM_WORKERS=2 DTRAIN_EPOCHS=3 DTRAIN_LR=0.1 DTRAIN_MOMENTUM=0.5 DTRAIN_LOGDIR=/shared/runs \
  DTRAIN_CHECKPOINT_DIR=/shared/workers DTRAIN_CHECKPOINT_EVERY_STEPS=200 DTRAIN_CONFIG=/job.ini \
  DTRAIN_SET="train.seed=7 data.validation_split=0.2" bash "$E" --set "tensorboard.run=a b" 2>&1)
expect_line "worker" "$out" "exec: dtrain-worker --config /job.ini --no-progress --set sync.mode=ps --set ps.servers=ps0:7070,ps1:7070 --set ps.worker_id=1 --set ps.num_workers=2 --set train.epochs=3 --set train.lr=0.1 --set optimizer.momentum=0.5 --set tensorboard.logdir=/shared/runs --set tensorboard.run=worker-1 --set checkpoint.dir=/shared/workers/worker-1 --set checkpoint.every_steps=200 --resume --set train.seed=7 --set data.validation_split=0.2 --set 'tensorboard.run=a b'"
# Worker ids: StatefulSet ordinal, Indexed Job index, claims.
out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 HOSTNAME=dtrain-worker-4 DTRAIN_SERVERS=a:1 DTRAIN_NUM_WORKERS=5 bash "$E" worker 2>&1)
grep -q -- "--set ps.worker_id=4 " <<<"$out" && pass || fail "StatefulSet ordinal: $out"
out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 JOB_COMPLETION_INDEX=2 DTRAIN_SERVERS=a:1 DTRAIN_NUM_WORKERS=3 bash "$E" worker 2>&1)
grep -q -- "--set ps.worker_id=2 " <<<"$out" && pass || fail "Indexed Job: $out"
claim() { env -i PATH="$PATH" DTRAIN_DRY_RUN=1 DTRAIN_SERVERS=a:1 DTRAIN_NUM_WORKERS=3 DTRAIN_ID_DIR="$TMP/ids" \
  HOSTNAME="$1" bash "$E" worker 2>&1 | sed -nE 's/.*--set ps.worker_id=([0-9]+) .*/\1/p'; }
# Six containers at once claim three ids: three get one each, three get none.
for h in c1 c2 c3 c4 c5 c6; do (claim "$h" >"$TMP/claim-$h") & done
wait
ids=$(cat "$TMP"/claim-c* | sort | tr '\n' ' ')
[ "$ids" = "0 1 2 " ] && pass || fail "concurrent claims gave ids '$ids', expected '0 1 2 '"
for h in c1 c2 c3 c4 c5 c6; do
  if [ -s "$TMP/claim-$h" ]; then
    [ "$(claim "$h")" = "$(cat "$TMP/claim-$h")" ] && pass || fail "restarted $h did not get its id again"
  fi
done
out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 DTRAIN_SERVERS=a:1 DTRAIN_NUM_WORKERS=3 DTRAIN_ID_DIR="$TMP/ids" \
  HOSTNAME=late bash "$E" worker 2>&1)
[ $? -eq 2 ] && grep -q "all 3 worker ids are claimed" <<<"$out" && pass || fail "a 4th claimant: $out"
# Bad settings: exit 2 and a message that names the variable.
for bad in "DTRAIN_WORKER_ID=x|must be a number" "DTRAIN_WORKER_ID=3|is not below DTRAIN_NUM_WORKERS" \
  "DTRAIN_WORKER_ID=0 DTRAIN_SET=nokey|is not SECTION.KEY=VALUE" "HOSTNAME=nohost|no worker id"; do
  read -ra assign <<<"${bad%%|*}"
  out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 DTRAIN_SERVERS=a:1 DTRAIN_NUM_WORKERS=3 "${assign[@]}" bash "$E" worker 2>&1)
  rc=$?
  [ "$rc" -eq 2 ] && grep -q "${bad#*|}" <<<"$out" && pass || fail "${bad%%|*}: exit $rc, $out"
done
out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 DTRAIN_WORKER_ID=0 bash "$E" worker 2>&1)
[ $? -eq 2 ] && grep -q "needs DTRAIN_SERVERS" <<<"$out" && pass || fail "worker without servers: $out"
out=$(env -i PATH="$PATH" bash "$E" juggler 2>&1)
[ $? -eq 2 ] && grep -q "role 'juggler'" <<<"$out" && pass || fail "unknown role: $out"
# MPI launcher: a hostfile from the workers' addresses, mpirun over ssh.
out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 HOME="$TMP/home" DTRAIN_MPI_HOSTS=10.9.0.7,10.9.0.5 \
  DTRAIN_NUM_WORKERS=2 DTRAIN_SLOTS=2 DTRAIN_HOSTFILE="$TMP/hostfile" DTRAIN_SSH_DIR=/ssh \
  DTRAIN_CHECKPOINT_DIR=/shared/ck DTRAIN_EPOCHS=5 bash "$E" mpi-launcher 2>&1)
expect_line "hostfile 1" "$out" "hostfile: 10.9.0.5 slots=2"
expect_line "hostfile 2" "$out" "hostfile: 10.9.0.7 slots=2"
expect_line "mpirun" "$out" "exec: mpirun --hostfile $TMP/hostfile -np 4 --mca plm_rsh_args '-p 2222 -i /ssh/id_ed25519 -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$TMP/home/.ssh/known_hosts' dtrain-worker --config /usr/share/dtrain/examples/fmnist-mlp.ini --no-progress --set train.epochs=5 --set checkpoint.dir=/shared/ck --resume"
out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 DTRAIN_WAIT_S=1 DTRAIN_MPI_HOSTS=10.9.0.7 DTRAIN_NUM_WORKERS=2 \
  HOME="$TMP/home" bash "$E" mpi-launcher 2>&1)
[ $? -eq 2 ] && grep -q "resolves to 1 address(es) after 1 s, expected 2" <<<"$out" && pass ||
  fail "launcher with too few workers: $out"
out=$(env -i PATH="$PATH" DTRAIN_DRY_RUN=1 HOME="$TMP/home" DTRAIN_SSH_DIR=/ssh bash "$E" mpi-worker 2>&1)
expect_line "sshd" "$out" "exec: /usr/sbin/sshd -D -e -f $TMP/home/.sshd/sshd_config"
grep -qx "AuthorizedKeysFile $TMP/home/.sshd/authorized_keys" "$TMP/home/.sshd/sshd_config" &&
  grep -qx "PasswordAuthentication no" "$TMP/home/.sshd/sshd_config" &&
  grep -qx "Port 2222" "$TMP/home/.sshd/sshd_config" && pass || fail "sshd_config: $(cat "$TMP/home/.sshd/sshd_config")"

# --- healthchecks against real processes ---
D6="$TMP/data"
make_subset "$D6" 6000
# shellcheck disable=SC2046
SUBSET_SET=$(data_args "$D6" | sed 's/--set //g')
bg ps "$PS" --listen 127.0.0.1:0 --port-file "$TMP/ps.port"
wait_log "$TMP/ps.port" "^[0-9]+$" 20 || fail "the server did not start: $(cat "$TMP/ps.log")"
port=$(cat "$TMP/ps.port")
DTRAIN_ROLE=server DTRAIN_PORT="$port" bash "$E" health && pass || fail "server health on port $port"
out=$(DTRAIN_ROLE=server DTRAIN_PORT=1 bash "$E" health 2>&1)
[ $? -ne 0 ] && grep -q "nothing listens on port 1" <<<"$out" && pass || fail "health of no server: $out"
DT_TEST_PS_DELAY_MS=20 bg w env DTRAIN_WORKER_BIN="$WORKER" DTRAIN_CONFIG="$SRC/examples/fmnist-mlp.ini" \
  DTRAIN_SERVERS="127.0.0.1:$port" DTRAIN_WORKER_ID=0 DTRAIN_NUM_WORKERS=1 DTRAIN_EPOCHS=50 \
  DTRAIN_SET="tensorboard.enabled=false $SUBSET_SET" bash "$E" worker
if wait_log "$TMP/w.log" "^parameter servers: 1" 60; then
  DTRAIN_ROLE=worker DTRAIN_SERVERS="127.0.0.1:$port" bash "$E" health && pass || fail "worker health"
  out=$(DTRAIN_ROLE=worker DTRAIN_SERVERS="127.0.0.1:$port,127.0.0.2:$port" bash "$E" health 2>&1)
  [ $? -ne 0 ] && grep -q "1 of 2 connection(s)" <<<"$out" && pass || fail "health with a missing server: $out"
else
  fail "the worker did not connect: $(cat "$TMP/w.log")"
fi
kill -9 "$PID_w"
wait "$PID_w" 2>/dev/null
kill -TERM "$PID_ps"
wait "$PID_ps" && pass || fail "the server did not stop cleanly: $(tail -3 "$TMP/ps.log")"

# --- Slurm: the time-limit signal ends in a checkpoint and a requeue ---
FAKE="$TMP/fake-slurm"
mkdir -p "$FAKE"
cat >"$FAKE/srun" <<EOF
#!/bin/bash
# srun's stand-in: one task, the command after the options.
while [[ \${1:-} == -* ]]; do shift; done
echo \$\$ >"$FAKE/task.pid"
exec "\$@"
EOF
cat >"$FAKE/scancel" <<EOF
#!/bin/bash
echo "scancel \$*" >>"$FAKE/calls"
kill -TERM "\$(cat "$FAKE/task.pid")"
EOF
cat >"$FAKE/scontrol" <<EOF
#!/bin/bash
echo "scontrol \$*" >>"$FAKE/calls"
EOF
chmod +x "$FAKE"/*
slurm_env=(env PATH="$FAKE:$PATH" SLURM_SUBMIT_DIR="$TMP" SLURM_JOB_ID=4242 SLURM_JOB_NAME=dtrain
  SLURM_JOB_NODELIST=node[1-2] SLURM_NTASKS=1 SLURM_CPUS_PER_TASK=1 DTRAIN_WORKER_BIN="$WORKER"
  DTRAIN_CONFIG="$SRC/examples/fmnist-mlp.ini" DTRAIN_EPOCHS=8
  DTRAIN_SET="tensorboard.enabled=false $SUBSET_SET")
bg slurm1 "${slurm_env[@]}" bash "$D/slurm/train.sbatch"
if wait_log "$TMP/slurm1.log" "^Epoch 1/8" 60; then
  kill -USR1 "$PID_slurm1"
else
  fail "the Slurm job did not train: $(cat "$TMP/slurm1.log")"
fi
wait "$PID_slurm1" && pass || fail "the Slurm job script failed: $(tail -5 "$TMP/slurm1.log")"
cat "$TMP/slurm1.log" "$FAKE/calls"
grep -qE "^Checkpoint .*/checkpoints/dtrain-4242/ckpt-[0-9]+ written \(preempted\)" "$TMP/slurm1.log" &&
  pass || fail "no preemption checkpoint in the Slurm job"
grep -qx "scancel --signal=TERM 4242" "$FAKE/calls" && grep -qx "scontrol requeue 4242" "$FAKE/calls" &&
  pass || fail "the Slurm job did not signal its tasks and requeue: $(cat "$FAKE/calls")"
bg slurm2 "${slurm_env[@]}" SLURM_RESTART_COUNT=1 bash "$D/slurm/train.sbatch"
wait "$PID_slurm2" && pass || fail "the requeued Slurm job failed: $(tail -5 "$TMP/slurm2.log")"
grep -q "^Resumed from .*/checkpoints/dtrain-4242/ckpt-" "$TMP/slurm2.log" && grep -q "^Epoch 8/8" "$TMP/slurm2.log" &&
  pass || fail "the requeued job did not resume and finish: $(cat "$TMP/slurm2.log")"
[ "$(grep -c requeue "$FAKE/calls")" = 1 ] && pass || fail "a finished job requeued itself"

# --- the mpirun wrapper: SIGTERM becomes a checkpoint on every rank ---
bg mpi bash "$E" mpirun -n 2 --oversubscribe "$WORKER" \
  --config "$SRC/examples/fmnist-mlp.ini" --no-progress --set train.epochs=50 \
  --set tensorboard.enabled=false $(data_args "$D6") --set checkpoint.dir="$TMP/mpi-ckpt"
if wait_log "$TMP/mpi.log" "^Epoch 1/50" 60; then
  kill -TERM "$PID_mpi"
else
  fail "mpirun did not train: $(cat "$TMP/mpi.log")"
fi
wait "$PID_mpi" && pass || fail "mpirun under the entrypoint did not exit 0 after SIGTERM: $(tail -5 "$TMP/mpi.log")"
grep -q "SIGUSR1 to mpirun" "$TMP/mpi.log" && grep -q "SIGUSR1 received: stopping after step" "$TMP/mpi.log" &&
  grep -q "written (preempted)" "$TMP/mpi.log" && pass ||
  fail "no checkpoint after SIGTERM under mpirun: $(cat "$TMP/mpi.log")"
"$WORKER" --inspect "$TMP/mpi-ckpt" >"$TMP/inspect.log" 2>&1 && pass ||
  fail "the checkpoint does not verify: $(cat "$TMP/inspect.log")"
finish
