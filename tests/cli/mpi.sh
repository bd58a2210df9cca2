# Shared setup for the MPI script tests (tests/cli/test_mpi_*.sh), sourced after
# lib.sh: what mpiexec needs here, so that the user's command line never does.
#  - Open MPI refuses to run as root unless told twice; test containers run as root.
#  - --oversubscribe: two ranks may be more than the cores Open MPI counts as slots.
#  - btl self,vader: the ranks share one host; leaving out the TCP transport skips
#    its probing of network interfaces (slow or noisy in containers).
#  - Sanitizer builds: Open MPI does not free what MPI_Init allocates; tests/lsan.supp
#    suppresses leaks whose stacks run through Open MPI's libraries, which needs whole
#    stacks (fast_unwind_on_malloc=0). Harmless in other builds.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader
export LSAN_OPTIONS="suppressions=$SRC/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
CMP_PARAMS="$BUILD/tests/cmp_params"
command -v mpiexec >/dev/null || { echo "FAIL: mpiexec not found (package openmpi-bin)" >&2; exit 1; }

# Every MPI run is bounded: a hang fails the test instead of stalling ctest.
MPIEXEC=(timeout 60 mpiexec --oversubscribe)
