#!/usr/bin/env python3
"""Writes Fashion-MNIST's training set in the formats bench/bench_data.sh measures, from
the IDX files with numpy (the project's ./.venv):

    OUT/train.csv      a header row (label, p0..p783), then one row per sample: label
                       and 784 pixel values 0..255, written as Python's csv module would
    OUT/x_u8.npy       (60000, 28, 28, 1) uint8 pixels
    OUT/x_f32.npy      (60000, 28, 28, 1) float32 pixels / 255
    OUT/y.npy          (60000,) int64 labels

usage: bench/fmnist_formats.py OUT [--src DIR]
"""
import argparse
import gzip
import os

import numpy as np


def read_idx(path, ndims):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = np.frombuffer(data, ">u4", ndims, 4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndims).reshape([int(d) for d in dims])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--src", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    x = read_idx(os.path.join(a.src, "train-images-idx3-ubyte.gz"), 3)
    y = read_idx(os.path.join(a.src, "train-labels-idx1-ubyte.gz"), 1)
    # The text of every byte value once, then one join per row: np.savetxt takes minutes.
    text = [str(v) for v in range(256)]
    with open(os.path.join(a.out, "train.csv"), "w", newline="") as f:
        f.write(",".join(["label"] + [f"p{i}" for i in range(28 * 28)]) + "\n")
        for label, row in zip(y.tolist(), x.reshape(len(x), -1).tolist()):
            f.write(text[label] + "," + ",".join(text[v] for v in row) + "\n")
    np.save(os.path.join(a.out, "x_u8.npy"), x.reshape(-1, 28, 28, 1))
    np.save(os.path.join(a.out, "x_f32.npy"), x.reshape(-1, 28, 28, 1).astype(np.float32) / 255)
    np.save(os.path.join(a.out, "y.npy"), y.astype(np.int64))


if __name__ == "__main__":
    main()
