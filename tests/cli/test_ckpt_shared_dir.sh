# A checkpoint directory the user shares with folders of their own (issue 14, defects
# 1 and 2): the worker's keep_last and the server's keep_checkpoints prune only
# checkpoints dtrain wrote, and the user's folders and files are still there, byte for
# byte; --resume on a fresh volume's root (lost+found only) starts from scratch.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"

# add_user_folders DIR: the folders of the issue's report, plus one named like a
# checkpoint (ckpt-/ps- and digits) that holds no manifest of ours.
add_user_folders() {
  mkdir -p "$1/archive" "$1/backup_2024" "$1/ckpt-0000000001" "$1/ps-000000000000001"
  echo "important" >"$1/archive/important.txt"
  head -c 4096 /dev/urandom >"$1/backup_2024/model.bin"
  echo "mine" >"$1/ckpt-0000000001/notes.txt"
  echo "mine" >"$1/ps-000000000000001/notes.txt"
  (cd "$1" && find . -type f -exec sha256sum {} + | sort) >"$TMP/user-files.sha"
}

# expect_user_folders DIR WHO: every user file is there with the same contents.
expect_user_folders() {
  local now
  now=$(cd "$1" && sha256sum -c "$TMP/user-files.sha" 2>&1) && pass ||
    fail "$2: the user's files were touched: $now"
}

# The worker: a checkpoint every 5 steps, keep the last 2.
D="$TMP/data"
make_subset "$D" 640
W="$TMP/worker-ckpt"
add_user_folders "$W"
# shellcheck disable=SC2046
out=$("$WORKER" --config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --no-progress \
  --set tensorboard.enabled=false --set train.epochs=2 --set checkpoint.dir="$W" \
  --set checkpoint.every_steps=5 --set checkpoint.keep_last=2 2>&1) ||
  fail "worker run: exit status $?: $out"
expect_user_folders "$W" "worker keep_last"
# Ours still count among themselves: the newest two stay, and the one `best` names.
ours=$(cd "$W" && ls -d ckpt-* | grep -vxF -e ckpt-0000000001 -e "$(cat best 2>/dev/null)" | wc -l)
[ "$ours" -eq 2 ] && pass || fail "worker: $ours of its own checkpoints kept besides best, expected 2: $(ls "$W")"

# --resume where there is only lost+found (a fresh ext4 volume) and the user's folders:
# nothing to resume, so both programs start from scratch.
V="$TMP/volume"
mkdir -p "$V/lost+found"
add_user_folders "$V"
# shellcheck disable=SC2046
out=$("$WORKER" --config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --no-progress \
  --set tensorboard.enabled=false --set train.epochs=1 --set checkpoint.dir="$V" --resume 2>&1) &&
  grep -q "^--resume: no checkpoint in $V; starting from scratch" <<<"$out" && pass ||
  fail "worker --resume on a fresh volume: $out"
V="$TMP/server-volume"
mkdir -p "$V/lost+found"
add_user_folders "$V"
ps_start v --resume --set ps.checkpoint_dir="$V" || finish
wait_log "$TMP/v.log" "--resume: no checkpoint in .*; starting empty" 10 && pass ||
  fail "server --resume on a fresh volume: $(cat "$TMP/v.log")"
ps_stop v

# The server: a checkpoint every 5 updates, keep the last 2.
S="$TMP/server-ckpt"
add_user_folders "$S"
ps_start s --set ps.checkpoint_dir="$S" --set ps.checkpoint_every_updates=5 \
  --set ps.checkpoint_every_s=0 --set ps.keep_checkpoints=2 || finish
# shellcheck disable=SC2046
"$WORKER" "${MLP[@]}" $(data_args "$D") --set ps.servers="127.0.0.1:$PORT_s" \
  --set train.epochs=2 >"$TMP/w.log" 2>&1 || fail "PS worker: exit status $?: $(tail -5 "$TMP/w.log")"
ps_stop s
expect_user_folders "$S" "server keep_checkpoints"
ours=$(cd "$S" && ls -d ps-* | grep -v '^ps-000000000000001$' | wc -l)
[ "$ours" -eq 2 ] && pass || fail "server: $ours of its own checkpoints kept, expected 2: $(ls "$S")"
finish
