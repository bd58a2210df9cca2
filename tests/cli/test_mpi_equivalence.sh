# Synchronous data parallelism computes what one process computes: 2 ranks with batch
# B per rank end with the same parameters as 1 rank with batch 2B (same seed, same
# samples per step), within fp32 rounding; the bucketed exchange (many buckets
# started during backward), the unbucketed one (one all-reduce) and Open MPI's own
# MPI_Iallreduce give bit-identical results; train.scale_lr with lr/2 equals lr.
#
# Tolerance: the two runs differ only in how the gradient sums are rounded (one GEMM
# over 2B samples vs two over B, then an average), about 1e-7 per step on parameters
# of magnitude < 1; after 2 epochs of 1,800 training samples (56 steps) we allow 1e-5.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"

D="$TMP/data"
make_subset "$D" 2000
# shellcheck disable=SC2046
args=(--config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --no-progress
  --set train.epochs=2 --set tensorboard.enabled=false)

run1() { # NAME ARGS...: one process
  local name=$1
  shift
  "$WORKER" "${args[@]}" --save-params "$TMP/$name.bin" "$@" >"$TMP/$name.log" 2>&1 ||
    fail "$name: exit status $?: $(cat "$TMP/$name.log")"
}
run2() { # NAME ARGS...: two ranks
  local name=$1
  shift
  "${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" --save-params "$TMP/$name.bin" "$@" \
    >"$TMP/$name.log" 2>&1 || fail "$name: exit status $?: $(cat "$TMP/$name.log")"
}
compare() { # NAME A B TOL
  local out
  if out=$("$CMP_PARAMS" "$TMP/$2.bin" "$TMP/$3.bin" "$4" 2>&1); then
    pass
  else
    fail "$1: $out"
  fi
  echo "$1: $out"
}

run1 one --set train.batch_size=64
run2 unbucketed --set train.batch_size=32 --set sync.bucket_mb=0
# 0.05 MB = 13107 floats: 18 buckets over the 235,146 parameters, most of them
# started before backward reaches the first layer.
run2 bucketed --set train.batch_size=32 --set sync.bucket_mb=0.05
run2 mpi_iallreduce --set train.batch_size=32 --set sync.bucket_mb=0.05 --set sync.allreduce=mpi
run2 scaled --set train.batch_size=32 --set train.lr=0.025 --set train.scale_lr=true

grep -q "Sync: 2 ranks, 18 gradient bucket(s)" "$TMP/bucketed.log" && pass ||
  fail "bucketed run does not report 18 buckets: $(cat "$TMP/bucketed.log")"
grep -q "train.scale_lr: lr 0.025 x 2 ranks = 0.05" "$TMP/scaled.log" && pass ||
  fail "scaled run does not report the scaled lr: $(cat "$TMP/scaled.log")"
grep -q "2 rank(s)" "$TMP/unbucketed.log" && pass || fail "not 2 ranks: $(cat "$TMP/unbucketed.log")"

compare "2 ranks x 32 vs 1 rank x 64" one unbucketed 1e-5
compare "bucketed vs unbucketed" bucketed unbucketed 0
compare "MPI_Iallreduce vs ring" mpi_iallreduce bucketed 0
compare "scale_lr with lr/2 vs lr" scaled unbucketed 0
finish
