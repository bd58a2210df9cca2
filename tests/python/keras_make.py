#!/usr/bin/env python3
"""Saves the Keras models of keras_models.py for the import test (test_keras_import.sh).

usage: keras_make.py OUTDIR
For each model NAME: OUTDIR/NAME.keras (random weights, biases and batch norm's moving
statistics included), OUTDIR/NAME.json (model.to_json()), OUTDIR/NAME_x.npy (random
inputs) and OUTDIR/NAME_y.npy (Keras' outputs on them, inference mode).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_models import functional, graph, inputs, models, randomize  # noqa: E402
import numpy as np  # noqa: E402

out = sys.argv[1]
for name, (m, shape, kind) in models().items():
    if m is None:
        m = functional() if name == "functional" else graph()
    randomize(m, 3)
    x = inputs(shape, kind, 4)
    m.save(f"{out}/{name}.keras")
    with open(f"{out}/{name}.json", "w") as f:
        f.write(m.to_json())
    np.save(f"{out}/{name}_x.npy", x)
    np.save(f"{out}/{name}_y.npy", np.asarray(m.predict(x, verbose=0)))
    print(name, ", ".join(sorted({type(l).__name__ for l in m.layers})))
