"""Makes the small NumPy data of examples/multi-io.ini (issue 17): images (8, 8, 1) and a
vector of 4 values per sample as two model inputs; two targets: a class (0..2, from the
image's brightest quadrant) and a value (the mean of the vector plus the image's mean).

    python3 examples/make-multi-io-data.py OUTDIR [N]
"""
import sys

import numpy as np

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
rng = np.random.default_rng(7)
img = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.5
cls = rng.integers(0, 3, n)
for i, c in enumerate(cls):
    r, q = divmod(int(c), 2)
    img[i, r * 4:(r + 1) * 4, q * 4:(q + 1) * 4, 0] += 0.5
meta = rng.standard_normal((n, 4)).astype(np.float32)
value = (meta.mean(axis=1) + img.reshape(n, -1).mean(axis=1)).astype(np.float32)
split = n * 5 // 6
np.savez(f"{out}/x.npz", img=img[:split], meta=meta[:split])
np.savez(f"{out}/y.npz", cls=cls[:split].astype(np.int32), value=value[:split].reshape(-1, 1))
np.savez(f"{out}/x_test.npz", img=img[split:], meta=meta[split:])
np.savez(f"{out}/y_test.npz", cls=cls[split:].astype(np.int32),
         value=value[split:].reshape(-1, 1))
