#!/usr/bin/env python3
"""Compares outputs for the Keras parity tests.

usage: keras_check.py predict TOL MODEL.keras X.npy WANT.npy [MODEL X WANT]...
         loads each MODEL.keras with keras.models.load_model, predicts on X (inference
         mode) and compares with WANT (one process for all: Keras starts slowly)
       keras_check.py compare TOL GOT.npy WANT.npy
Prints, per model, the shapes, the largest absolute difference and the largest |WANT|;
exits 0 if for every one the shapes agree and every difference is at most TOL, else 1.
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402

mode, tol, args = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
ok = True
if mode == "predict":
    import keras  # noqa: E402

    cases = [args[i:i + 3] for i in range(0, len(args), 3)]
else:
    cases = [(args[0], None, args[1])]
for what, x, want_path in cases:
    if x is None:
        got = np.load(what)
    else:
        got = np.asarray(keras.models.load_model(what).predict(np.load(x), verbose=0))
    want = np.load(want_path)
    d = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    print(f"{os.path.basename(what)}: shape {got.shape} vs {want.shape}, max |diff| {d:.3g} "
          f"(tolerance {tol:g}), max |y| {float(np.abs(want).max()):.3g}")
    ok = ok and d <= tol
sys.exit(0 if ok else 1)
