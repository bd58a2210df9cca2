# Faults, on a 6,000-image subset:
#  - kill -9 one of two workers in sync mode in the middle of training: the server
#    keeps it as a member for ps.heartbeat_timeout_s (2 s; it might reconnect), then
#    drops it, and the other worker finishes alone instead of waiting forever.
#  - kill -9 the parameter server of two workers (ssp, staleness 2) and start it
#    again with --resume: it restores its newest checkpoint (taken every 100 updates),
#    whose version is at least that of the last checkpoint it logged before the kill,
#    with the workers' clocks; the workers reconnect by themselves, carry on, and
#    finish; the server then counts more updates than it restored.
#  - a sync worker preempted by SIGTERM says BYE, checkpoints and exits 0; --resume
#    brings it back into the rounds and it finishes.
#  - the server restart in sync mode: the restored server is rounds behind the
#    workers' clocks; it skips the rounds nobody pushes into any more and goes on in
#    step with them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
D="$TMP/data"
make_subset "$D" 6000
# shellcheck disable=SC2046
SUBSET=($(data_args "$D"))

# --- a worker dies, sync mode ---
ps_start sync --set ps.consistency=sync --set ps.heartbeat_timeout_s=2 || finish
for w in 0 1; do
  bg "sync_w$w" "$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_sync" \
    --set ps.worker_id=$w --set ps.num_workers=2 --set ps.heartbeat_s=0.5 --set train.epochs=40
done
if wait_log "$TMP/sync_w1.log" "^Epoch 2/40" 120; then
  kill -9 "$PID_sync_w1"
  pass
else
  fail "worker 1 did not reach epoch 2: $(tail -3 "$TMP/sync_w1.log")"
fi
wait_ok sync_w0
ps_stop sync
grep -E "^(Epoch (1|2|40)/|Test|PS)" "$TMP/sync_w0.log"
grep -vE "^stats" "$TMP/sync.log"
grep -qE "worker 1 dropped: nothing heard for [0-9.]+ s \(ps.heartbeat_timeout_s = 2\)" \
  "$TMP/sync.log" && pass || fail "the server did not drop the killed worker"
grep -q "worker 0 left (BYE)" "$TMP/sync.log" && pass || fail "worker 0 did not finish with BYE"
grep -q "^Epoch 40/40" "$TMP/sync_w0.log" && pass || fail "worker 0 did not train to the end"

# --- a worker is preempted (SIGTERM) and resumed, sync mode ---
# It finishes its exchange, says BYE (the server lets it go at once instead of after
# the heartbeat timeout), writes its checkpoint and exits 0; --resume rejoins the
# servers from the next round and finishes the run.
ps_start pre --set ps.consistency=sync || finish
PRE=("${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_pre" --set ps.num_workers=2
  --set train.epochs=20)
bg pre_w0 "$WORKER" "${PRE[@]}" --set ps.worker_id=0
bg pre_w1 "$WORKER" "${PRE[@]}" --set ps.worker_id=1 --set checkpoint.dir="$TMP/pre_ckpt"
if wait_log "$TMP/pre_w1.log" "^Epoch 2/20" 120; then
  kill -TERM "$PID_pre_w1"
  wait_ok pre_w1
else
  fail "worker 1 did not reach epoch 2: $(tail -3 "$TMP/pre_w1.log")"
fi
grep -q "^PS: leaving at clock" "$TMP/pre_w1.log" && pass || fail "the preempted worker did not leave"
grep -q "worker 1 left (BYE)" "$TMP/pre.log" && pass || fail "the preempted worker said no BYE"
bg pre_w1b "$WORKER" "${PRE[@]}" --set ps.worker_id=1 --set checkpoint.dir="$TMP/pre_ckpt" --resume
wait_ok pre_w1b
wait_ok pre_w0
ps_stop pre
grep -hE "^(Resumed|PS|Test)|SIGTERM" "$TMP/pre_w1.log" "$TMP/pre_w1b.log"
grep -vE "^stats" "$TMP/pre.log"
grep -q "^Resumed from .*/pre_ckpt/ckpt-" "$TMP/pre_w1b.log" && pass || fail "worker 1 did not resume"
grep -qE "worker 1 takes part from round [0-9]+ on" <(grep -A9 "worker 1 left (BYE)" "$TMP/pre.log") &&
  pass || fail "the resumed worker did not join the rounds again"
grep -q "^Epoch 20/20" "$TMP/pre_w1b.log" && pass || fail "the resumed worker did not finish"
expect_test_accuracy "$(cat "$TMP/pre_w1b.log")" 6000 0.75

# --- the server dies and comes back from its checkpoint ---
# restart NAME EPOCHS [server args...]: two workers; the server is killed after its
# third checkpoint (every 100 updates) and started again with --resume.
restart() {
  local name=$1 epochs=$2
  shift 2
  local ck="$TMP/ckpt_$name" args=("$@" --set ps.checkpoint_every_updates=100
    --set ps.checkpoint_every_s=0)
  args+=(--set ps.checkpoint_dir="$ck")
  ps_start "$name" "${args[@]}" || return
  local port="PORT_$name" pid="PID_$name"
  for w in 0 1; do
    bg "${name}_w$w" "$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:${!port}" \
      --set ps.worker_id=$w --set ps.num_workers=2 --set train.epochs="$epochs" \
      --set optimizer.momentum=0.5 --set train.lr=0.1
  done
  if wait_log "$TMP/$name.log" "checkpoint .*/ps-0*[3-9][0-9][0-9] written" 120; then
    kill -9 "${!pid}"
    wait "${!pid}" 2>/dev/null
    pass
  else
    fail "$name: no third checkpoint: $(tail -3 "$TMP/$name.log")"
  fi
  local saved restored final
  saved=$(sed -nE 's/^checkpoint .* written: version ([0-9]+),.*/\1/p' "$TMP/$name.log" | tail -1)
  PS_PORT=${!port} ps_start "${name}2" --resume "${args[@]}" || return
  wait_ok "${name}_w0"
  wait_ok "${name}_w1"
  ps_stop "${name}2"
  grep -vE "^checkpoint" "$TMP/${name}2.log"
  grep -hE "^(Test|PS)|parameter server" "$TMP/${name}_w0.log" "$TMP/${name}_w1.log"
  restored=$(sed -nE 's/^resumed from .*: version ([0-9]+),.*/\1/p' "$TMP/${name}2.log")
  [ -n "$saved" ] && [ -n "$restored" ] && [ "$restored" -ge "$saved" ] && pass ||
    fail "$name: restored version '$restored' < last checkpoint before the kill '$saved'"
  final=$(stat_of "${name}2" version)
  [ -n "$final" ] && [ "$final" -gt "$restored" ] && pass ||
    fail "$name: no updates after the restart (version $final, restored $restored)"
  for w in 0 1; do
    grep -q "reconnected after" "$TMP/${name}_w$w.log" && pass || fail "$name: worker $w did not reconnect"
    grep -q "^Epoch $epochs/$epochs" "$TMP/${name}_w$w.log" && pass ||
      fail "$name: worker $w did not finish"
    expect_test_accuracy "$(cat "$TMP/${name}_w$w.log")" 6000 0.75
  done
}

restart restart 30 --set ps.consistency=ssp --set ps.staleness=2
restart restart_sync 20 --set ps.consistency=sync
# The workers' clocks are past the restored round: it must have moved up to theirs.
grep -qE "worker [01] reconnected" "$TMP/restart_sync2.log" && pass ||
  fail "restart_sync: no worker reconnected to the restored server"
finish
