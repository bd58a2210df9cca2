"""Checks dtrain's PNG/JPEG decoding and image-folder datasets against Pillow.

usage: check_images.py IMAGES_DUMP WORKDIR SRC_DIR

Pillow writes the files; tests/tools/images_dump (IMAGES_DUMP) decodes them with
dtrain (Debian's libpng and libjpeg-turbo). Checked:
- PNG (gray, gray 1-bit, gray + alpha, RGB, RGBA, palette, palette with transparency,
  16-bit gray, a 1x1 and an odd-sized image): dtrain's bytes equal Pillow's decoded
  array exactly (alpha dropped, palettes expanded, 16-bit cut to the high byte);
- JPEG (gray, RGB 4:2:0, RGB 4:4:4, progressive): within 1 of Pillow's array (Pillow's
  wheel bundles libjpeg-turbo 3.x, Debian has libjpeg62-turbo 2.1; they may round
  differently);
- a folder dataset: class names and ids in sorted order, files in name order, the
  skipped count, meta_json, channel conversion (gray -> RGB repeats, RGB -> gray equals
  Pillow's convert("L")), resizing against a float64 reference of TensorFlow's
  half-pixel bilinear arithmetic, the shuffled order a permutation of the sorted one
  that keeps each file with its label;
- scripts/fmnist-to-png.py: its PNGs decode to exactly the IDX bytes, labels too, and
  Pillow reads them as the same 8-bit grayscale images; four threads decoding them all
  at once get exactly what one thread got.
Prints one line per failure and exits 1 if there was any.
"""
import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np
from PIL import Image, features

DUMP, WORK, SRC = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []
checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def decode_file(path):
    out = os.path.join(WORK, "decoded.bin")
    r = subprocess.run([DUMP, "file", path, out], capture_output=True, text=True)
    if r.returncode != 0:
        check(False, f"{path}: images_dump failed: {r.stderr.strip()}")
        return None, None
    fmt, h, w, c = r.stdout.split()
    data = np.fromfile(out, dtype=np.uint8).reshape(int(h), int(w), int(c))
    return fmt, data


def load_folder(path, *opts):
    out = os.path.join(WORK, "folder.bin")
    r = subprocess.run([DUMP, "folder", path, out, *map(str, opts)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        check(False, f"{path}: images_dump folder failed: {r.stderr.strip()}")
        return None
    lines = r.stdout.splitlines()
    n, h, w, c, k, skipped = map(int, lines[0].split())
    classes = [ln[len("class "):] for ln in lines if ln.startswith("class ")]
    meta = json.loads([ln[len("meta "):] for ln in lines if ln.startswith("meta ")][0])
    labels = [int(v) for v in [ln for ln in lines if ln.startswith("labels")][0].split()[1:]]
    x = np.fromfile(out, dtype=np.float32).reshape(n, h, w, c)
    return dict(n=n, shape=(h, w, c), k=k, skipped=skipped, classes=classes, meta=meta,
                labels=labels, x=x)


rng = np.random.default_rng(15)


def rand(h, w, c=None):
    shape = (h, w) if c is None else (h, w, c)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


# --- single files: PNG exactly, JPEG within 1 ---------------------------------------
files = os.path.join(WORK, "files")
os.makedirs(files, exist_ok=True)
cases = []  # (name, Pillow image to save, save kwargs, expected array (h, w, c), tolerance)

gray = Image.fromarray(rand(13, 17), "L")
cases.append(("gray.png", gray, {}, np.asarray(gray)[..., None], 0))
bits = Image.fromarray(rand(9, 21) > 127).convert("1")
cases.append(("gray1.png", bits, {}, np.asarray(bits.convert("L"))[..., None], 0))
la = Image.fromarray(rand(8, 8, 2), "LA")
cases.append(("gray_alpha.png", la, {}, np.asarray(la)[..., :1], 0))
rgb = Image.fromarray(rand(11, 7, 3), "RGB")
cases.append(("rgb.png", rgb, {}, np.asarray(rgb), 0))
rgba = Image.fromarray(rand(6, 10, 4), "RGBA")
cases.append(("rgba.png", rgba, {}, np.asarray(rgba)[..., :3], 0))
pal = Image.fromarray(rand(12, 12, 3), "RGB").quantize(colors=16)
cases.append(("palette.png", pal, {}, np.asarray(pal.convert("RGB")), 0))
cases.append(("palette_trns.png", pal, {"transparency": 3}, np.asarray(pal.convert("RGB")), 0))
g16 = rng.integers(0, 65536, size=(5, 9), dtype=np.uint16)
img16 = Image.fromarray(g16)  # mode "I;16"
cases.append(("gray16.png", img16, {}, (g16 >> 8).astype(np.uint8)[..., None], 0))
one = Image.fromarray(rand(1, 1, 3), "RGB")
cases.append(("one.png", one, {}, np.asarray(one), 0))
# Smooth content, so that JPEG's loss is small and the comparison is about decoding.
yy, xx = np.mgrid[0:32, 0:40]
smooth = np.stack([(yy * 7 + xx * 3) % 256, (xx * 6) % 256, 255 - yy * 5], -1).astype(np.uint8)
for name, img, kw in [
        ("gray.jpg", Image.fromarray(smooth[..., 0], "L"), {"quality": 90}),
        ("rgb420.jpg", Image.fromarray(smooth, "RGB"), {"quality": 90}),
        ("rgb444.jpeg", Image.fromarray(smooth, "RGB"), {"quality": 95, "subsampling": 0}),
        ("progressive.JPG", Image.fromarray(smooth, "RGB"), {"quality": 90, "progressive": True}),
]:
    cases.append((name, img, kw, None, 1))

for name, img, kw, expected, tol in cases:
    path = os.path.join(files, name)
    img.save(path, **kw)
    if expected is None:  # JPEG: what Pillow decodes from the file it wrote
        with Image.open(path) as back:
            expected = np.asarray(back)
            if expected.ndim == 2:
                expected = expected[..., None]
    fmt, got = decode_file(path)
    if got is None:
        continue
    check(fmt == ("png" if name.endswith(".png") else "jpeg"), f"{name}: format {fmt}")
    check(got.shape == expected.shape, f"{name}: shape {got.shape}, Pillow {expected.shape}")
    if got.shape == expected.shape:
        diff = int(np.abs(got.astype(int) - expected.astype(int)).max())
        check(diff <= tol, f"{name}: differs from Pillow by up to {diff} (allowed {tol})")

# --- a folder dataset ----------------------------------------------------------------
folder = os.path.join(WORK, "folder")
for cls in ["b_rgb", "a_gray", "c_mixed"]:
    os.makedirs(os.path.join(folder, cls), exist_ok=True)
imgs = {
    "a_gray/2.png": Image.fromarray(rand(6, 8), "L"),
    "a_gray/10.png": Image.fromarray(rand(6, 8), "L"),
    "b_rgb/x.jpg": Image.fromarray(smooth[:6, :8], "RGB"),
    "b_rgb/y.PNG": Image.fromarray(rand(6, 8, 3), "RGB"),
    "c_mixed/big.png": Image.fromarray(rand(12, 5, 3), "RGB"),
    "c_mixed/small.png": Image.fromarray(rand(3, 3), "L"),
}
for rel, img in imgs.items():
    img.save(os.path.join(folder, rel))
with open(os.path.join(folder, "b_rgb", "notes.txt"), "w") as f:
    f.write("not an image\n")
with open(os.path.join(folder, "README"), "w") as f:
    f.write("not an image either\n")
with open(os.path.join(folder, "c_mixed", ".hidden.png"), "w") as f:
    f.write("ignored: a hidden file\n")
order = ["a_gray/10.png", "a_gray/2.png", "b_rgb/x.jpg", "b_rgb/y.PNG", "c_mixed/big.png",
         "c_mixed/small.png"]
classes = ["a_gray", "b_rgb", "c_mixed"]


def pillow_array(rel, channels):
    with Image.open(os.path.join(folder, rel)) as img:
        img = img.convert("L" if channels == 1 else "RGB")
        a = np.asarray(img).astype(np.float64)
    return a[..., None] if channels == 1 else a


def bilinear(a, h, w):
    """TensorFlow's resize_bilinear with half_pixel_centers, in float64."""
    sh, sw = a.shape[:2]

    def weights(n_out, n_in):
        scale = n_in / n_out
        src = (np.arange(n_out) + 0.5) * scale - 0.5
        lo = np.floor(src)
        lerp = src - lo
        lower = np.maximum(lo, 0).astype(int)
        upper = np.minimum(np.ceil(src), n_in - 1).astype(int)
        return lower, upper, lerp

    yl, yu, ya = weights(h, sh)
    xl, xu, xa = weights(w, sw)
    top = a[yl][:, xl] + (a[yl][:, xu] - a[yl][:, xl]) * xa[None, :, None]
    bot = a[yu][:, xl] + (a[yu][:, xu] - a[yu][:, xl]) * xa[None, :, None]
    return top + (bot - top) * ya[:, None, None]


for channels, size in [(3, (6, 8)), (1, (6, 8)), (3, (9, 4)), (1, (4, 11))]:
    ds = load_folder(folder, "--channels", channels, "--size", *size)
    if ds is None:
        continue
    tag = f"folder channels={channels} size={size}"
    check(ds["classes"] == classes, f"{tag}: classes {ds['classes']}")
    check(ds["labels"] == [classes.index(r.split("/")[0]) for r in order],
          f"{tag}: labels {ds['labels']}")
    check(ds["skipped"] == 2, f"{tag}: skipped {ds['skipped']}, expected 2 (notes.txt, README)")
    check(ds["meta"] == {"class_names": classes, "image_size": list(size), "channels": channels},
          f"{tag}: meta {ds['meta']}")
    for i, rel in enumerate(order):
        ref = bilinear(pillow_array(rel, channels), *size)
        # JPEG (b_rgb/x.jpg) may differ by 1 between the two libjpeg-turbo versions, and
        # converting it to gray by 1 more; everything else is exact up to float rounding.
        tol = 2.01 if rel.endswith(".jpg") else 1e-3
        diff = float(np.abs(ds["x"][i] - ref).max())
        check(diff <= tol, f"{tag}: {rel} differs from the reference by {diff}")

# channels 0: the first image (a_gray/10.png) is gray, so an RGB image is an error
r = subprocess.run([DUMP, "folder", folder, os.path.join(WORK, "x.bin")], capture_output=True,
                   text=True)
check(r.returncode == 1 and "b_rgb/x.jpg': 3 channels, but the first image" in r.stderr and
      "a_gray/10.png' has 1" in r.stderr, f"channels 0, mixed folder: {r.returncode} {r.stderr}")

# Shuffled: a permutation of the sorted order, each file keeping its label; the same seed
# gives the same order, another seed (almost surely) another one.
plain = load_folder(folder, "--channels", 3, "--size", 6, 8)
shuf = load_folder(folder, "--channels", 3, "--size", 6, 8, "--shuffle", 7)
again = load_folder(folder, "--channels", 3, "--size", 6, 8, "--shuffle", 7)
other = load_folder(folder, "--channels", 3, "--size", 6, 8, "--shuffle", 8)
if plain and shuf and again and other:
    perm = []
    for i in range(shuf["n"]):
        match = [j for j in range(plain["n"]) if np.array_equal(plain["x"][j], shuf["x"][i])]
        perm.append(match[0] if match else -1)
    check(sorted(perm) == list(range(plain["n"])), f"shuffle: not a permutation: {perm}")
    check(all(shuf["labels"][i] == plain["labels"][p] for i, p in enumerate(perm)),
          "shuffle: a file lost its label")
    check(perm != list(range(plain["n"])), "shuffle: the order did not change")
    check(np.array_equal(shuf["x"], again["x"]) and shuf["labels"] == again["labels"],
          "shuffle: the same seed gave another order")
    check(not np.array_equal(shuf["x"], other["x"]), "shuffle: seeds 7 and 8 gave one order")

# --- scripts/fmnist-to-png.py ----------------------------------------------------------
fm = os.path.join(WORK, "fmnist")
limit = 300
r = subprocess.run([sys.executable, os.path.join(SRC, "scripts", "fmnist-to-png.py"), fm,
                    "--limit", str(limit)], capture_output=True, text=True)
check(r.returncode == 0, f"fmnist-to-png.py failed: {r.stderr}")
src = "/usr/share/datasets/fashion-mnist"
for split, prefix in [("train", "train"), ("test", "t10k")]:
    with gzip.open(os.path.join(src, f"{prefix}-images-idx3-ubyte.gz")) as f:
        raw = f.read(16 + 784 * limit)
    with gzip.open(os.path.join(src, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        raw_labels = f.read(8 + limit)
    images = np.frombuffer(raw[16:], np.uint8).reshape(limit, 28, 28)
    labels = np.frombuffer(raw_labels[8:], np.uint8)
    # Four threads decoding every sample at once get what one thread got.
    ds = load_folder(os.path.join(fm, split), "--threads", 4)
    if ds is None:
        continue
    present = sorted(set(labels.tolist()))
    check(ds["shape"] == (28, 28, 1) and ds["n"] == limit, f"fmnist {split}: {ds['shape']}")
    check([int(c[0]) for c in ds["classes"]] == present, f"fmnist {split}: {ds['classes']}")
    # Sorted by class, then by index within each class (indices are zero-padded).
    order = sorted(range(limit), key=lambda i: (labels[i], i))
    check([ds["classes"][v] for v in ds["labels"]] ==
          [ds["classes"][present.index(labels[i])] for i in order], f"fmnist {split}: labels")
    check(np.array_equal(ds["x"][..., 0], images[order].astype(np.float32)),
          f"fmnist {split}: pixels differ from the IDX bytes")
    name = os.path.join(fm, split, ds["classes"][0], f"{order[0]:03d}.png")
    with Image.open(name) as img:
        check(img.mode == "L" and np.array_equal(np.asarray(img), images[order[0]]),
              f"fmnist {split}: Pillow reads {name} differently")

print(f"check_images: {checks - len(failures)} passed, {len(failures)} failed "
      f"(Pillow {Image.__version__}, its libjpeg-turbo "
      f"{features.version('libjpeg_turbo')})")
sys.exit(1 if failures else 0)
