#!/usr/bin/env python3
"""Scores generated Fashion-MNIST images with a classifier's probabilities (issue 17).

Two steps, driven by bench/gen_quality.sh:
  gen_quality.py prepare SAMPLES.npy OUT.npy [--grid GRID.png]
      samples in [0, 1] (count, 28, 28[, 1]) -> the classifier's input scale 0..255
      (its preprocessing divides by 255 again), and optionally a PNG grid of the first 64
  gen_quality.py score PROBS.npy [--min-top 0.7] [--min-share 0.03]
      the classifier's probabilities (count, 10): the mean top-class probability (do they
      look like clothing?) and each class's share of the argmax (are all ten made?);
      exit status 0 when both targets are met, 3 when not.
"""
import argparse
import sys

import numpy as np

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]


def prepare(args):
    x = np.load(args.samples)
    if x.dtype != np.float32 or x.ndim < 2 or x.size % (28 * 28) != 0:
        sys.exit(f"{args.samples}: expected float32 images of 28x28, got {x.dtype} {x.shape}")
    if x.min() < 0.0 or x.max() > 1.0:
        sys.exit(f"{args.samples}: values outside [0, 1] ({x.min()}..{x.max()})")
    x = x.reshape(len(x), 28, 28)
    np.save(args.out, (x * 255.0).astype(np.float32))
    if args.grid:
        from PIL import Image
        n = min(64, len(x))
        cols = 8
        rows = (n + cols - 1) // cols
        grid = np.zeros((rows * 29 + 1, cols * 29 + 1), dtype=np.uint8)
        for k in range(n):
            r, c = divmod(k, cols)
            grid[1 + r * 29:1 + r * 29 + 28, 1 + c * 29:1 + c * 29 + 28] = \
                np.round(x[k] * 255.0).astype(np.uint8)
        Image.fromarray(grid, mode="L").save(args.grid, optimize=True)


def score(args):
    p = np.load(args.probs).astype(np.float64)
    if p.ndim != 2 or p.shape[1] != 10:
        sys.exit(f"{args.probs}: expected (count, 10) probabilities, got {p.shape}")
    top = p.max(axis=1)
    shares = np.bincount(p.argmax(axis=1), minlength=10) / len(p)
    mean_top = top.mean()
    print(f"samples: {len(p)}")
    print(f"mean top-class probability: {mean_top:.4f} (target >= {args.min_top})")
    for c in range(10):
        print(f"  class {c} {CLASSES[c]:<12} share {shares[c]:.3f}")
    print(f"smallest class share: {shares.min():.3f} (target >= {args.min_share})")
    ok = mean_top >= args.min_top and shares.min() >= args.min_share
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 3


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("samples")
    a.add_argument("out")
    a.add_argument("--grid")
    b = sub.add_parser("score")
    b.add_argument("probs")
    b.add_argument("--min-top", type=float, default=0.7)
    b.add_argument("--min-share", type=float, default=0.03)
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args)
        return 0
    return score(args)


if __name__ == "__main__":
    sys.exit(main())
