# The parameter-server topology of deploy/docker-compose.yml as real separate hosts:
# 2 servers and 3 workers, each in a network namespace of its own with its own address
# on a private bridge (deploy/netns-cluster.sh), started through the containers'
# entrypoint (deploy/entrypoint.sh) with the same DTRAIN_* variables, the workers
# claiming their ids the way docker-compose --scale replicas do. They train the MLP
# example on all of Fashion-MNIST (ssp, staleness 2) through these faults:
#  1. worker w1's cable is pulled for 4 s (ip link set down), longer than
#     ps.heartbeat_timeout_s = 2 s: both servers drop it, SSP stops waiting for it, and
#     once the cable is back it reconnects by itself and rejoins. Meanwhile w2's link
#     is slowed: tbf rate limiting (20 Mbit/s) towards it, and netem delay and loss
#     from it where the kernel has netem (else a SKIP line says so);
#  1b. server ps0's cable is pulled for 5 s: a host gone silent, no reset. Every worker
#     notices within 5 s (WELCOME's heartbeat timeout, 2 s: a live server answers each
#     HEARTBEAT), not after sync.timeout_s, and reconnects once the cable is back;
#  2. server ps1 is killed (kill -9) and started again; it resumes its newest
#     checkpoint and every worker reconnects;
#  3. worker w0 is killed (kill -9) and started again, as a container restart policy
#     would: it claims the same id, resumes its own checkpoint and finishes.
# Every worker then reaches > 0.87 test accuracy on the 10,000 test images.
# Then docker-compose.mpi.yml's launcher runs on host mpl over hosts m0 and m1: it
# writes the hostfile from their addresses and runs mpirun, whose ranks average
# gradients over TCP across the hosts. sshd is replaced by a stand-in that runs the
# command on the host with that address (ip netns exec; a host name of its own), and
# a listener stands for sshd's port. SIGTERM to the launcher makes every rank
# checkpoint; the launcher started again resumes and finishes.
# Needs root and ip netns; skips (exit 0, "SKIP: ...") without them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"
source "$SRC/deploy/netns-cluster.sh"
why=$(nc_unavailable)
if [ -n "$why" ]; then
  echo "SKIP: $why"
  exit 0
fi
trap 'nc_down; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

EPOCHS=12
E="$SRC/deploy/entrypoint.sh"
nc_up ps0 ps1 w0 w1 w2 mpl m0 m1 || { fail "could not make the namespaces"; finish; }
SERVERS="$(nc_addr ps0):7070,$(nc_addr ps1):7070"
export DTRAIN_PS_BIN="$BUILD/src/paramserver/dtrain-ps" DTRAIN_WORKER_BIN="$WORKER"
export DTRAIN_CONFIG="$SRC/examples/fmnist-mlp.ini" DTRAIN_TOKEN="netns-test-$NC_ID"
export DTRAIN_CONSISTENCY=ssp DTRAIN_STALENESS=2 DTRAIN_HEARTBEAT_S=0.5 DTRAIN_HEARTBEAT_TIMEOUT_S=2

# start_server K LOG: server K through the entrypoint, checkpointing every 300 updates.
start_server() {
  DTRAIN_CHECKPOINT_DIR="$TMP/ps$1" DTRAIN_CHECKPOINT_EVERY_UPDATES=300 DTRAIN_CHECKPOINT_EVERY_S=0 \
    nc_start "ps$1" "ps$1" "$2" "$E" server
  nc_wait_log "$2" "listening on" 30 || fail "server ps$1 did not start: $(cat "$2")"
}

# start_worker NODE LOG: a worker whose id is claimed under the node's name.
start_worker() {
  DTRAIN_SERVERS="$SERVERS" DTRAIN_NUM_WORKERS=3 DTRAIN_ID_DIR="$TMP/ids" DTRAIN_CLAIM_KEY="$1" \
    DTRAIN_EPOCHS=$EPOCHS DTRAIN_MOMENTUM=0.5 DTRAIN_LR=0.1 DTRAIN_CHECKPOINT_DIR="$TMP/workers" \
    DTRAIN_CHECKPOINT_EVERY_STEPS=100 DTRAIN_SET="tensorboard.enabled=false" \
    nc_start "$1" "$1" "$2" "$E" worker
}

# exits_ok NAME LOG: the process NAME exits 0.
exits_ok() {
  local pid=NC_PID_$1 rc
  wait "${!pid}"
  rc=$?
  [ "$rc" -eq 0 ] && pass || fail "$1 exited with $rc: $(grep -iE 'error|warning' "$2" | tail -5)"
}

start_server 0 "$TMP/ps0.log"
start_server 1 "$TMP/ps1.log"
for w in w0 w1 w2; do start_worker "$w" "$TMP/$w.log"; done
declare -A ID
for w in w0 w1 w2; do
  nc_wait_log "$TMP/$w.log" "worker id [0-9]+ of 3" 30 || fail "$w: no worker id: $(cat "$TMP/$w.log")"
  ID[$w]=$(sed -nE 's/.*worker id ([0-9]+) of 3$/\1/p' "$TMP/$w.log" | head -1)
done
echo "worker ids: w0=${ID[w0]} w1=${ID[w1]} w2=${ID[w2]}"
[ "$(printf '%s\n' "${ID[@]}" | sort -u | tr '\n' ' ')" = "0 1 2 " ] && pass ||
  fail "the claimed worker ids are not 0, 1, 2: ${ID[*]}"

# --- 1. w1's cable out for 4 s; w2's link slowed meanwhile ---
nc_wait_log "$TMP/w1.log" "^Epoch 1/$EPOCHS" 300 || fail "w1 did not finish epoch 1: $(tail -3 "$TMP/w1.log")"
nc_tc w2 qdisc add dev @DEV@ root tbf rate 20mbit burst 32kbit latency 400ms ||
  fail "tbf on the link to w2"
netem=""
if out=$(nc_exec w2 tc qdisc add dev eth0 root netem delay 20ms 5ms loss 1% 2>&1); then
  netem=yes
else
  echo "SKIP: netem delay/loss on w2's link: tc says '$out' (this kernel has no sch_netem);" \
    "the tbf rate limit still runs"
fi
nc_link w1 down
sleep 4
nc_link w1 up
sleep 2
tbf=$(nc_tc w2 -s qdisc show dev @DEV@)
nc_tc w2 qdisc del dev @DEV@ root
echo "$tbf"
overlimits=$(sed -nE 's/.*overlimits ([0-9]+).*/\1/p' <<<"$tbf" | head -1)
[ "${overlimits:-0}" -gt 0 ] && pass || fail "tbf held back no packet to w2: $tbf"
if [ -n "$netem" ]; then
  nq=$(nc_exec w2 tc -s qdisc show dev eth0)
  nc_exec w2 tc qdisc del dev eth0 root
  echo "$nq"
  sent=$(sed -nE 's/.*Sent ([0-9]+) bytes.*/\1/p' <<<"$nq" | head -1)
  [ "${sent:-0}" -gt 0 ] && pass || fail "netem on w2 saw no traffic: $nq"
fi
for k in 0 1; do
  nc_wait_log "$TMP/ps$k.log" "worker ${ID[w1]} dropped: nothing heard for" 30 && pass ||
    fail "ps$k did not drop w1 (worker ${ID[w1]}) while its cable was out"
done
nc_wait_log "$TMP/w1.log" "reconnected after" 60 && pass ||
  fail "w1 did not reconnect after its cable came back: $(tail -3 "$TMP/w1.log")"
# Dropped members come back as new ones: a second "joined" from w1's address.
for k in 0 1; do
  for ((i = 0; i < 300; i++)); do
    [ "$(grep -c "worker ${ID[w1]} joined from $(nc_addr w1):" "$TMP/ps$k.log")" -ge 2 ] && break
    sleep 0.1
  done
  [ "$i" -lt 300 ] && pass || fail "w1 did not rejoin ps$k: $(grep "worker ${ID[w1]} " "$TMP/ps$k.log")"
done

# --- 1b. ps0's cable out for 5 s: the workers notice the silence themselves ---
A0="$(nc_addr ps0):7070"
nc_link ps0 down
for w in w0 w1 w2; do
  nc_wait_log "$TMP/$w.log" "parameter server $A0: silent for [0-9.]+ s \(longer than its ps.heartbeat_timeout_s = 2\); reconnecting" 5 &&
    pass || fail "$w did not notice within 5 s that ps0 went silent: $(tail -3 "$TMP/$w.log")"
done
sleep 1
nc_link ps0 up
for w in w0 w1 w2; do
  back=""
  for ((i = 0; i < 300; i++)); do
    s=$(grep -n "parameter server $A0: silent for" "$TMP/$w.log" | tail -1 | cut -d: -f1)
    r=$(grep -n "parameter server $A0: reconnected after" "$TMP/$w.log" | tail -1 | cut -d: -f1)
    if [ -n "$s" ] && [ -n "$r" ] && [ "$r" -gt "$s" ]; then back=1; break; fi
    sleep 0.1
  done
  [ -n "$back" ] && pass || fail "$w did not reconnect to ps0 after its cable came back"
done

# --- 2. ps1 killed and started again from its checkpoint ---
kill -9 "$NC_PID_ps1"
wait "$NC_PID_ps1" 2>/dev/null
start_server 1 "$TMP/ps1-again.log"
nc_wait_log "$TMP/ps1-again.log" "^resumed from .*/ps-[0-9]+: version [0-9]+" 30 && pass ||
  fail "ps1 did not resume its checkpoint: $(cat "$TMP/ps1-again.log")"
for w in w0 w1 w2; do
  nc_wait_log "$TMP/ps1-again.log" "worker ${ID[$w]} (reconnected|joined) from $(nc_addr "$w")" 60 &&
    pass || fail "$w (worker ${ID[$w]}) did not come back to the restarted ps1"
done

# --- 3. w0 killed and started again: same id, its own checkpoint ---
nc_wait_log "$TMP/w0.log" "^Checkpoint .*/worker-${ID[w0]}/ckpt-" 120 ||
  fail "w0 wrote no checkpoint: $(tail -3 "$TMP/w0.log")"
if grep -q "^Test:" "$TMP/w0.log"; then
  fail "w0 finished before it could be killed: the faults took longer than the training"
fi
kill -9 "$NC_PID_w0"
wait "$NC_PID_w0" 2>/dev/null
start_worker w0 "$TMP/w0-again.log"
nc_wait_log "$TMP/w0-again.log" "^Resumed from .*/worker-${ID[w0]}/ckpt-" 60 && pass ||
  fail "the restarted w0 did not resume its checkpoint: $(head -5 "$TMP/w0-again.log")"
grep -q "worker id ${ID[w0]} of 3" "$TMP/w0-again.log" && pass ||
  fail "the restarted w0 did not claim its id ${ID[w0]} again: $(head -2 "$TMP/w0-again.log")"

# --- every worker finishes with the accuracy of a clean run ---
exits_ok w0 "$TMP/w0-again.log"
exits_ok w1 "$TMP/w1.log"
exits_ok w2 "$TMP/w2.log"
for k in 0 1; do
  pid=NC_PID_ps$k
  kill -TERM "${!pid}"
done
exits_ok ps0 "$TMP/ps0.log"
exits_ok ps1 "$TMP/ps1-again.log"
for f in ps0 ps1 ps1-again w1 w2 w0 w0-again; do
  echo "--- $f"
  grep -vE "^(Epoch|checkpoint|Checkpoint|stats \(membership)|^(input|dense|relu|Layer|Total)" "$TMP/$f.log"
done
for f in w0-again w1 w2; do
  grep -q "^Epoch $EPOCHS/$EPOCHS" "$TMP/$f.log" && pass || fail "$f did not train to the end"
  expect_test_accuracy "$(cat "$TMP/$f.log")" 10000 0.87
done
for w in w0 w1 w2; do
  grep -q "worker ${ID[$w]} left (BYE)" "$TMP/ps0.log" && pass || fail "$w did not say BYE to ps0"
done

# --- MPI: the compose launcher over two hosts ---
mkdir -p "$TMP/hosts" "$TMP/ssh" "$TMP/home"
cat >"$TMP/agent" <<EOF
#!/bin/bash
# ssh's stand-in: skips ssh's options, runs the command on the host with that address.
echo "agent: \$*" >>"$TMP/agent.log"
while [[ \${1:-} == -* ]]; do
  case \$1 in -p | -i | -o | -l | -F) shift 2 ;; *) shift ;; esac
done
ns=\$(cat "$TMP/hosts/\$1")
shift
exec ip netns exec "\$ns" unshare --uts /bin/sh -c 'hostname "\$1"; exec /bin/sh -c "\$2"' sh "\$ns" "\$*"
EOF
chmod +x "$TMP/agent"
for m in m0 m1; do
  nc_ns "$m" >"$TMP/hosts/$(nc_addr "$m")"
  nc_start "sshd_$m" "$m" "$TMP/sshd_$m.log" "${PY:-/usr/bin/python3}" -c \
    'import socket, time; s = socket.socket(); s.bind(("0.0.0.0", 2222)); s.listen(); time.sleep(600)'
done
make_subset "$TMP/data" 6000
# launcher LOG: the launcher on host mpl, the job's settings as docker-compose.mpi.yml's.
launcher() {
  DTRAIN_MPI_HOSTS="$(nc_addr m0),$(nc_addr m1)" DTRAIN_NUM_WORKERS=2 DTRAIN_SLOTS=1 \
    DTRAIN_SSH_DIR="$TMP/ssh" HOME="$TMP/home" DTRAIN_HOSTFILE="$TMP/hostfile" DTRAIN_WAIT_S=30 \
    DTRAIN_EPOCHS=10 DTRAIN_CHECKPOINT_DIR="$TMP/mpi-ckpt" \
    DTRAIN_SET="tensorboard.enabled=false $(data_args "$TMP/data" | sed 's/--set //g')" \
    OMPI_MCA_plm_rsh_agent="$TMP/agent" OMPI_MCA_btl=self,vader,tcp \
    OMPI_MCA_btl_vader_single_copy_mechanism=none \
    nc_start mpl mpl "$1" "$E" mpi-launcher --all-ranks
}
launcher "$TMP/mpi1.log"
if nc_wait_log "$TMP/mpi1.log" "^Epoch 1/10" 120; then
  kill -TERM "$NC_PID_mpl"
else
  fail "the MPI job did not train: $(cat "$TMP/mpi1.log")"
fi
exits_ok mpl "$TMP/mpi1.log"
printf '%s slots=1\n%s slots=1\n' "$(nc_addr m0)" "$(nc_addr m1)" | cmp -s - "$TMP/hostfile" && pass ||
  fail "hostfile: $(cat "$TMP/hostfile")"
[ -s "$TMP/ssh/id_ed25519" ] && [ -s "$TMP/ssh/id_ed25519.pub" ] && pass || fail "the launcher made no key pair"
for m in m0 m1; do
  grep -q -- "-p 2222 -i $TMP/ssh/id_ed25519 .* $(nc_addr "$m") .*orted" "$TMP/agent.log" && pass ||
    fail "mpirun did not start a daemon on $m over ssh: $(cat "$TMP/agent.log")"
done
grep -c "SIGUSR1 received: stopping after step" "$TMP/mpi1.log" | grep -qx 2 &&
  grep -q "^Checkpoint .*/mpi-ckpt/ckpt-[0-9]* written (preempted)" "$TMP/mpi1.log" && pass ||
  fail "SIGTERM to the launcher did not checkpoint both ranks: $(cat "$TMP/mpi1.log")"
launcher "$TMP/mpi2.log"
exits_ok mpl "$TMP/mpi2.log"
grep -E "^(\[rank 1\] )?(Resumed|Test|Sync)" "$TMP/mpi2.log"
grep -q "^Resumed from .*/mpi-ckpt/ckpt-" "$TMP/mpi2.log" && grep -q "^Epoch 10/10" "$TMP/mpi2.log" &&
  grep -q "^\[rank 1\] Epoch 10/10" "$TMP/mpi2.log" && pass ||
  fail "the restarted MPI job did not resume and finish on both ranks: $(cat "$TMP/mpi2.log")"
grep -q "^Sync: 2 ranks" "$TMP/mpi2.log" && pass || fail "the MPI job did not run 2 ranks"
expect_test_accuracy "$(cat "$TMP/mpi2.log")" 6000 0.75
finish
