"""Checks ONNX files that dtrain wrote against dtrain's own outputs, with the real
clients: onnx.checker (full check, with shape inference) and ONNX Runtime on the CPU
(one thread). One process for every model: importing onnxruntime costs more than
checking a small model.

usage: check_onnx.py TOL NAME DIR [NAME DIR]...
  each DIR holds model.onnx, x.npy (inputs) and y.npy (dtrain's outputs for them).
Prints one line per model, "ok NAME: max abs diff D (N outputs, opset O, ops A B ...)"
or "FAIL NAME: why"; exits 1 when some check fails or some difference is above TOL (or
not finite)."""
import sys

import numpy as np
import onnx
import onnxruntime as ort


def check(name, d, tol):
    """The line for one model and whether it passed."""
    path = f"{d}/model.onnx"
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    x = np.load(f"{d}/x.npy")
    want = np.load(f"{d}/y.npy")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    (got,) = sess.run(["output"], {"input": x})
    if got.shape != want.shape:
        return f"{name}: ONNX Runtime gives shape {got.shape}, dtrain {want.shape}", False
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
    ops = sorted({n.op_type for n in model.graph.node})
    opset = model.opset_import[0].version
    line = (f"{name}: max abs diff {diff:.3g} ({want.size} outputs, opset {opset}, "
            f"ops {' '.join(ops)})")
    if not np.isfinite(got).all() or not diff <= tol:
        i = np.unravel_index(np.argmax(np.abs(got - want)), want.shape)
        return f"{line}; above {tol}: at {i} ONNX Runtime {got[i]!r}, dtrain {want[i]!r}", False
    return line, True


def main():
    tol, pairs = float(sys.argv[1]), sys.argv[2:]
    if not pairs or len(pairs) % 2:
        sys.exit("usage: check_onnx.py TOL NAME DIR [NAME DIR]...")
    ok = True
    for name, d in zip(pairs[::2], pairs[1::2]):
        try:
            line, good = check(name, d, tol)
        except Exception as e:  # the checker's or the runtime's complaint, for this model
            line, good = f"{name}: {type(e).__name__}: {e}", False
        print(("ok " if good else "FAIL ") + line, flush=True)
        ok = ok and good
    sys.exit(0 if ok else 1)


main()
