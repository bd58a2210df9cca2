"""Runs a PyTorch anchor script (../shared/anchors/torch_fmnist.py) unchanged, optionally
with torch.set_flush_denormal(True) in force first, so that bench/bench_anchors.sh can
report PyTorch both as installed and with its denormals flushed (issue 16) without
editing the shared anchor. Both variants go through this wrapper, so they pay the same
start-up cost.

The flag sets flush-to-zero and denormals-are-zero in the calling thread's MXCSR only;
with --threads 1 PyTorch runs every forward, backward and optimizer kernel in that
thread, so it covers the whole training loop.

With --bf16 the anchor's training and evaluation run under PyTorch's CPU autocast to
bfloat16 (torch.autocast("cpu", dtype=torch.bfloat16), entered here for the whole script:
convolutions and linear layers take bf16 inputs, the weights and the optimizer stay
float32), what a PyTorch user would write to train in bf16 on a CPU with AMX.

usage: VENV/bin/python bench/torch_anchor.py [--flush-denormal] [--bf16] ANCHOR.py [ANCHOR ARGS...]
"""
import runpy
import sys


def main():
    args = sys.argv[1:]
    flush = bf16 = False
    while args and args[0] in ("--flush-denormal", "--bf16"):
        flush |= args[0] == "--flush-denormal"
        bf16 |= args[0] == "--bf16"
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    import torch

    if flush and not torch.set_flush_denormal(True):
        sys.exit("torch_anchor: torch.set_flush_denormal(True) is not supported on this CPU")
    print(f"torch_anchor: torch {torch.__version__}, flush_denormal {'on' if flush else 'off (as installed)'}",
          file=sys.stderr, flush=True)
    sys.argv = args
    if bf16:
        print("torch_anchor: autocast to bfloat16 on the CPU", file=sys.stderr, flush=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            runpy.run_path(args[0], run_name="__main__")
    else:
        runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()
