"""Checks a dtrain checkpoint's safetensors files with real readers.

usage: check_safetensors.py CKPT_DIR FILE PARAMS.bin NAME:SHAPE...

Loads CKPT_DIR/FILE (model.safetensors, or best_weights.safetensors) twice: with the safetensors package (its numpy
API) and with the minimal reader below, which only uses the format's definition
(8-byte little-endian header length, JSON header, raw data). Both must list exactly
the expected tensors (NAME:d0,d1,... in buffer order) as float32 with those shapes,
agree with each other bit for bit, and, concatenated in data order, equal PARAMS.bin
(what dtrain-worker --save-params wrote: the flat parameter buffer). The optimizer
file must load as well, with one moment tensor per parameter tensor.
"""
import json
import struct
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def read_minimal(path):
    """Tensors (in data order) and metadata of a safetensors file, numpy only."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    meta = header.pop("__metadata__", {})
    data = blob[8 + hlen:]
    tensors = []
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        assert info["dtype"] == "F32", f"{name}: dtype {info['dtype']}"
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"])
        tensors.append((name, arr))
    return tensors, meta


def main():
    ckpt, file, params_path = sys.argv[1], sys.argv[2], sys.argv[3]
    expected = []
    for spec in sys.argv[4:]:
        name, shape = spec.split(":")
        expected.append((name, tuple(int(d) for d in shape.split(","))))

    model = f"{ckpt}/{file}"
    official = load_file(model)
    with safe_open(model, framework="numpy") as f:
        meta = f.metadata()
    mine, my_meta = read_minimal(model)

    names = [n for n, _ in mine]
    assert names == [n for n, _ in expected], f"tensors {names}, expected {[n for n, _ in expected]}"
    assert sorted(official) == sorted(names), f"safetensors package sees {sorted(official)}"
    for (name, shape), (_, arr) in zip(expected, mine):
        assert arr.shape == shape, f"{name}: shape {arr.shape}, expected {shape}"
        assert official[name].dtype == np.float32, f"{name}: {official[name].dtype}"
        assert official[name].shape == shape, f"{name}: package shape {official[name].shape}"
        assert np.array_equal(official[name], arr), f"{name}: the two readers disagree"

    flat = np.concatenate([arr.ravel() for _, arr in mine])
    want = np.fromfile(params_path, dtype="<f4")
    assert flat.shape == want.shape, f"{flat.size} values, --save-params has {want.size}"
    assert np.array_equal(flat.view(np.uint32), want.view(np.uint32)), (
        f"values differ from --save-params at {np.flatnonzero(flat != want)[:5]}")

    assert meta == my_meta, "metadata differs between the readers"
    assert meta["format"] == "dtrain" and int(meta["step"]) > 0, f"metadata {meta}"
    assert "[layer.1]" in meta["config"], "the run config is not in the metadata"

    opt = load_file(f"{ckpt}/optimizer.safetensors")
    moments = sorted(k for k in opt if k.startswith(names[0] + ".moment"))
    assert moments, f"no moments of {names[0]} in the optimizer file: {sorted(opt)}"
    for k in opt:
        base = k.rsplit(".moment", 1)[0]
        assert opt[k].shape == official[base].shape, f"{k}: shape {opt[k].shape}"

    print(f"safetensors: {len(names)} tensors, {flat.size} values, step {meta['step']}, "
          f"{len(opt)} optimizer tensors: the package, the numpy-only reader and "
          f"--save-params agree")


if __name__ == "__main__":
    main()
