#!/usr/bin/env python3
"""Writes Fashion-MNIST as an image folder tree of 8-bit grayscale PNGs, the layout of
Keras' image_dataset_from_directory and dtrain's `format = images`:

    OUT/train/<class>/<index>.png    OUT/test/<class>/<index>.png

<class> is the label digit and the class name (0-tshirt_top, 1-trouser, ...), so that
sorted folder names keep the label order; <index> is the sample's position in its IDX
file, zero-padded, so that sorted file names keep the file's order within a class.

Only Python's standard library: the IDX files are read with gzip and struct, and the
PNGs are written by hand (signature, IHDR, one zlib-compressed IDAT, IEND).

usage: scripts/fmnist-to-png.py OUT [--src DIR] [--limit N]
"""
import argparse
import gzip
import os
import struct
import sys
import zlib

CLASSES = ["0-tshirt_top", "1-trouser", "2-pullover", "3-dress", "4-coat", "5-sandal",
           "6-shirt", "7-sneaker", "8-bag", "9-ankle_boot"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_idx(path, ndims, limit):
    """(dims, payload bytes) of an unsigned-byte IDX file, cut to `limit` samples."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    if magic != 0x800 + ndims:
        sys.exit(f"{path}: not an unsigned-byte IDX file of {ndims} dimensions "
                 f"(magic 0x{magic:08X})")
    dims = list(struct.unpack(">" + "I" * ndims, data[4:4 + 4 * ndims]))
    payload = data[4 + 4 * ndims:]
    per_sample = 1
    for d in dims[1:]:
        per_sample *= d
    if len(payload) != dims[0] * per_sample:
        sys.exit(f"{path}: {len(payload)} data bytes, the header says {dims[0] * per_sample}")
    if limit is not None and limit < dims[0]:
        dims[0] = limit
        payload = payload[:limit * per_sample]
    return dims, payload


def chunk(kind, body):
    return (struct.pack(">I", len(body)) + kind + body +
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png_gray8(pixels, height, width):
    """An 8-bit grayscale, non-interlaced PNG; every row uses filter 0 (none)."""
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) +
            chunk(b"IEND", b""))


def write_split(src, out, images_name, labels_name, limit):
    (n, h, w), images = read_idx(os.path.join(src, images_name), 3, limit)
    (n_labels,), labels = read_idx(os.path.join(src, labels_name), 1, limit)
    if n != n_labels:
        sys.exit(f"{src}: {n} images but {n_labels} labels")
    # Folders only for the classes present: an empty class folder is an error for the
    # reader, and --limit may leave a class out.
    for label in sorted(set(labels)):
        if label >= len(CLASSES):
            sys.exit(f"{labels_name}: label {label} is not a Fashion-MNIST class")
        os.makedirs(os.path.join(out, CLASSES[label]), exist_ok=True)
    digits = len(str(max(n - 1, 0)))
    size = h * w
    for i in range(n):
        path = os.path.join(out, CLASSES[labels[i]], f"{i:0{digits}d}.png")
        with open(path, "wb") as f:
            f.write(png_gray8(images[i * size:(i + 1) * size], h, w))
    return n


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the folder to write train/ and test/ into")
    p.add_argument("--src", default="/usr/share/datasets/fashion-mnist",
                   help="the folder of the gzipped IDX files (Debian's dataset-fashion-mnist)")
    p.add_argument("--limit", type=int, default=None,
                   help="write only the first N samples of each split (for tests)")
    a = p.parse_args()
    if a.limit is not None and a.limit < 0:
        sys.exit("--limit must be >= 0")
    n_train = write_split(a.src, os.path.join(a.out, "train"), "train-images-idx3-ubyte.gz",
                          "train-labels-idx1-ubyte.gz", a.limit)
    n_test = write_split(a.src, os.path.join(a.out, "test"), "t10k-images-idx3-ubyte.gz",
                         "t10k-labels-idx1-ubyte.gz", a.limit)
    print(f"{a.out}: {n_train} training and {n_test} test images in {len(CLASSES)} classes")


if __name__ == "__main__":
    main()
