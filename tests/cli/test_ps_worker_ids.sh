# Worker ids (issue 14, defect 3). Two servers:
#  - two workers started together without ps.worker_id get ids 0 and 1 from server 0,
#    and server 1 hears the same ids; each trains on the part of the data of its id,
#    no connection replaces another, and every push is applied (before: both were
#    worker 0, replaced each other's connections, trained on the same part, and half
#    of their pushes were dropped as repeats);
#  - a second live process claiming a held id (ps.worker_id = 1 twice) is refused with
#    WORKER_ID_TAKEN and exits 2, while the first trains on to the end (before: it
#    took the id over);
#  - ps.worker_id must be a number or 'assigned'.
# A process reconnecting with its own nonce still replaces its old connection: the
# unit test (test_ps_core) and test_ps_dead_peer.sh show it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
D="$TMP/data"
make_subset "$D" 3000
# shellcheck disable=SC2046
SUBSET=($(data_args "$D"))

ps_start s0 || finish
ps_start s1 || finish
SERVERS="127.0.0.1:$PORT_s0,127.0.0.1:$PORT_s1"
W=("${MLP[@]}" "${SUBSET[@]}" --set ps.servers="$SERVERS" --set ps.num_workers=2
  --set optimizer.momentum=0.5 --set train.lr=0.1)

# --- ids assigned to two workers started together ---
for w in a b; do bg "$w" "$WORKER" "${W[@]}" --set train.epochs=3; done
wait_ok a
wait_ok b
grep -h "PS worker\|assigned\|^PS:" "$TMP/a.log" "$TMP/b.log"
ids=$(sed -nE 's/^PS worker ([0-9]+) of 2 \(id assigned by the servers\): training samples .*/\1/p' \
  "$TMP/a.log" "$TMP/b.log" | sort | tr '\n' ' ')
[ "$ids" = "0 1 " ] && pass || fail "the workers got ids '$ids', expected 0 and 1"
parts=$(sed -nE 's/^PS worker [0-9]+ of 2 .*: training samples (\[[0-9]+, [0-9]+\)) of 2700$/\1/p' \
  "$TMP/a.log" "$TMP/b.log" | sort | tr '\n' ' ')
[ "$parts" = "[0, 1350) [1350, 2700) " ] && pass || fail "the workers trained on parts '$parts'"
for k in s0 s1; do
  for id in 0 1; do
    grep -q "worker $id joined from 127.0.0.1:" "$TMP/$k.log" && pass || fail "$k has no worker $id"
  done
  grep -q "REPLACED" "$TMP/$k.log" && fail "$k: a connection replaced another: $(grep REPLACED "$TMP/$k.log")" || pass
done
grep -q "assigned worker id" "$TMP/s1.log" && fail "server 1 assigned an id itself" || pass
pushes=$(($(pushes_of a) + $(pushes_of b)))

# --- a second live process with the same id ---
DT_TEST_PS_DELAY_MS=20 bg c "$WORKER" "${W[@]}" --set ps.worker_id=1 --set train.epochs=2
wait_log "$TMP/c.log" "^parameter servers: 2" 60 || fail "worker c did not connect: $(cat "$TMP/c.log")"
expect_exit 2 "answered ERROR WORKER_ID_TAKEN: worker id 1 is held by another live process" \
  "a second process with worker id 1" -- "$WORKER" "${W[@]}" --set ps.worker_id=1
wait_ok c
grep -q "^Epoch 2/2" "$TMP/c.log" && pass || fail "the first holder of id 1 did not finish"
ps_stop s0
ps_stop s1
for k in s0 s1; do
  grep -vE "^stats" "$TMP/$k.log"
  v=$(stat_of "$k" version)
  [ "$v" = $((pushes + $(pushes_of c))) ] && pass ||
    fail "$k applied $v updates, expected every push: $pushes + $(pushes_of c)"
done

expect_exit 2 "[ps] worker_id = 'first': a number from 0" "a bad worker id" -- \
  "$WORKER" "${W[@]}" --set ps.worker_id=first
finish
