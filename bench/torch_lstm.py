"""PyTorch anchor for the LSTM bench: the model of examples/fmnist-lstm.ini (an LSTM of
128 units over the 28 image rows of Fashion-MNIST, its last hidden state into a dense
layer of 10) trained on CPU with Adam, the same batch and thread count as dtrain.
Prints training samples/s per epoch (the forward, backward and optimizer steps only)
and the test accuracy.

usage: /usr/bin/python3 bench/torch_lstm.py [--epochs N] [--batch B] [--threads T]
                                            [--limit N] [--lr LR] [--cell lstm|gru]
"""
import argparse
import gzip
import os
import struct
import time

DATA = "/usr/share/datasets/fashion-mnist"


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=0, help="use the first N training samples")
    p.add_argument("--lr", type=float, default=0.004)
    p.add_argument("--units", type=int, default=128)
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru"])
    return p.parse_args()


# Debian's torch does its matrix products in OpenBLAS, whose thread pool
# torch.set_num_threads does not size: without this a "1 thread" run multiplies on
# every core (measured: user + sys time well above wall time). The variable has to be
# set before torch loads OpenBLAS.
ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 2051:  # images: n x rows x cols bytes
        rows, cols = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)
    return np.frombuffer(raw, np.uint8, offset=8)


class RowRNN(nn.Module):
    def __init__(self, cell, units):
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(28, units, batch_first=True)
        self.out = nn.Linear(units, 10)

    def forward(self, x):  # x: (batch, 28 steps, 28 features)
        h, _ = self.rnn(x)
        return self.out(h[:, -1])


def main(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    xtr = torch.from_numpy(read_idx(f"{DATA}/train-images-idx3-ubyte.gz").astype(np.float32) / 255)
    ytr = torch.from_numpy(read_idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255)
    yte = torch.from_numpy(read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    if a.limit > 0:
        xtr, ytr = xtr[: a.limit], ytr[: a.limit]

    model = RowRNN(a.cell, a.units)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    gen = torch.Generator().manual_seed(1)
    for epoch in range(a.epochs):
        perm = torch.randperm(len(xtr), generator=gen)
        model.train()
        n = 0
        t0 = time.perf_counter()
        for i in range(0, len(xtr) - a.batch + 1, a.batch):
            idx = perm[i : i + a.batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            n += len(idx)
        dt = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch + 1} samples/s {n / dt:.0f} time {dt:.2f}s loss {loss.item():.4f} "
              f"test_acc {acc:.4f}", flush=True)


if __name__ == "__main__":
    main(ARGS)
