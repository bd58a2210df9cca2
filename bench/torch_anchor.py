"""Runs a PyTorch anchor script (../shared/anchors/torch_fmnist.py) unchanged, optionally
with torch.set_flush_denormal(True) in force first, so that bench/bench_anchors.sh can
report PyTorch both as installed and with its denormals flushed (issue 16) without
editing the shared anchor. Both variants go through this wrapper, so they pay the same
start-up cost.

The flag sets flush-to-zero and denormals-are-zero in the calling thread's MXCSR only;
with --threads 1 PyTorch runs every forward, backward and optimizer kernel in that
thread, so it covers the whole training loop.

usage: VENV/bin/python bench/torch_anchor.py [--flush-denormal] ANCHOR.py [ANCHOR ARGS...]
"""
import runpy
import sys


def main():
    args = sys.argv[1:]
    flush = bool(args) and args[0] == "--flush-denormal"
    if flush:
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    import torch

    if flush and not torch.set_flush_denormal(True):
        sys.exit("torch_anchor: torch.set_flush_denormal(True) is not supported on this CPU")
    print(f"torch_anchor: torch {torch.__version__}, flush_denormal {'on' if flush else 'off (as installed)'}",
          file=sys.stderr, flush=True)
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()
