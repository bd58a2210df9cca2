"""Checks an ONNX file that dtrain wrote against dtrain's own outputs, with the real
clients: onnx.checker (full check, with shape inference) and ONNX Runtime on the CPU.

usage: check_onnx.py NAME DIR TOL
  DIR holds model.onnx, x.npy (inputs) and y.npy (dtrain's outputs for them).
Prints "NAME: max abs diff D (N outputs, opset O, ops A B ...)"; exits 1 when the
check fails or some difference is above TOL (or not finite)."""
import sys

import numpy as np
import onnx
import onnxruntime as ort

name, d, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
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
    print(f"{name}: ONNX Runtime gives shape {got.shape}, dtrain {want.shape}")
    sys.exit(1)
diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
ops = sorted({n.op_type for n in model.graph.node})
opset = model.opset_import[0].version
print(f"{name}: max abs diff {diff:.3g} ({want.size} outputs, opset {opset}, "
      f"ops {' '.join(ops)})")
if not np.isfinite(got).all() or not diff <= tol:
    i = np.unravel_index(np.argmax(np.abs(got - want)), want.shape)
    print(f"{name}: above {tol}: at {i} ONNX Runtime {got[i]!r}, dtrain {want[i]!r}")
    sys.exit(1)
