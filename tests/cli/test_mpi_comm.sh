# The MPI communicator on 1 to 4 ranks (tests/tools/comm_check.c): averages of ranges
# of many lengths with several in flight, for our ring and for MPI_Iallreduce, equal
# on every rank to the bit; broadcast, sums, all-gather, barrier. More ranks than
# cores is fine here: the messages are small.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"

for n in 1 2 3 4; do
  if out=$("${MPIEXEC[@]}" -n "$n" "$BUILD/tests/comm_check" 2>&1); then
    pass
  else
    fail "$n ranks: $out"
  fi
  echo "$out"
done
finish
