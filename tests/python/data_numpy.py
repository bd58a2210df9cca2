"""Writes NumPy and IDX files with the real writers and checks what dtrain read from them.

Usage:
  data_numpy.py write DIR    good files (every dtype, 1-d to 4-d, np.save, np.savez,
                             np.savez_compressed, .npy format 2.0 and 3.0; IDX of every
                             type written with struct), bad files under DIR/bad, the
                             expected float32 values under DIR/expect, and DIR/cases.txt:
                             one line "NAME LOADER SPEC [TLOADER TSPEC]" per good case
  data_numpy.py check DIR    compares DIR/out/NAME.txt (data_dump --values) with the
                             expected values bit for bit; prints "ok NAME" or
                             "FAIL NAME: why" per case
  data_numpy.py big PATH ROWS
                             a (ROWS, 1024) float32 .npy written through a memory map in
                             chunks, value k % 251 at flat index k; prints the sum
Used by tests/cli/test_data_numpy.sh. The expected values are numpy's astype(float32).
"""

import os
import struct
import sys
import zipfile

import numpy as np

DTYPES = ["|u1", "|i1", "<i2", "<i4", "<i8", "<f4", "<f8"]
NAMES = {"|u1": "uint8", "|i1": "int8", "<i2": "int16", "<i4": "int32", "<i8": "int64",
         "<f4": "float32", "<f8": "float64"}
SHAPES = [(5,), (5, 3), (4, 3, 2), (3, 2, 3, 2)]
# IDX type codes and struct's letters for them.
IDX_TYPES = {0x08: ("B", "|u1"), 0x09: ("b", "|i1"), 0x0B: ("h", "<i2"), 0x0C: ("i", "<i4"),
             0x0D: ("f", "<f4"), 0x0E: ("d", "<f8")}


def values(dtype, shape, rng):
    """Values that exercise the type: its extremes, negatives, -0.0, fractions that
    float32 must round (from float64), integers past float32's 2^24."""
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind in "ui":
        info = np.iinfo(dt)
        # int64 beyond 2^53 would be rounded twice on the way to float32 (through
        # double); numpy rounds once. Keep int64 to where both agree.
        lo, hi = (max(info.min, -(2 ** 53)), min(info.max, 2 ** 53))
        a = rng.integers(lo, hi, size=n, endpoint=True, dtype=np.int64)
        a[:2] = [lo, hi]
        return a.astype(dt).reshape(shape)
    a = rng.normal(size=n) * 1000.0
    a[0] = -0.0
    if dt.itemsize == 8:
        a[1] = 3.4e38  # finite in float32 after rounding
        a[2] = 1.0 + 2.0 ** -30  # rounds to 1.0 in float32
        a[3] = 16777217.0  # 2^24 + 1: rounds to even
    else:
        a[1] = 1e-40  # a float32 subnormal
    return a.astype(dt).reshape(shape)


def save_expect(d, name, x, y=None):
    np.save(os.path.join(d, "expect", name + ".x.npy"), x.astype(np.float32))
    with open(os.path.join(d, "expect", name + ".dtype"), "w") as f:
        f.write(x.dtype.name)
    if y is not None:
        np.save(os.path.join(d, "expect", name + ".y.npy"), y.astype(np.float32))


def write_idx(path, arr, code):
    letter, _ = IDX_TYPES[code]
    flat = arr.ravel().tolist()
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, code, arr.ndim))
        f.write(struct.pack(">%dI" % arr.ndim, *arr.shape))
        f.write(struct.pack(">%d%s" % (len(flat), letter), *flat))


def write_good(d, rng, cases):
    def case(name, loader, spec, x, tloader=None, tspec=None, y=None):
        cases.append(" ".join(s for s in [name, loader, spec, tloader, tspec] if s))
        save_expect(d, name, x, y)

    # Every dtype and rank, with np.save (format 1.0).
    for dt in DTYPES:
        for shape in SHAPES:
            name = "%s_%dd" % (NAMES[dt], len(shape))
            a = values(dt, shape, rng)
            path = os.path.join(d, name + ".npy")
            np.save(path, a)
            case(name, "npy", path, a)
    # Format versions 2.0 and 3.0, written by numpy's own writer.
    for version in [(2, 0), (3, 0)]:
        a = values("<f4", (4, 3), rng)
        name = "version%d" % version[0]
        path = os.path.join(d, name + ".npy")
        with open(path, "wb") as f:
            np.lib.format.write_array(f, a, version=version)
        case(name, "npy", path, a)
    # No samples at all.
    a = np.zeros((0, 3), np.float32)
    np.save(os.path.join(d, "empty.npy"), a)
    case("empty", "npy", os.path.join(d, "empty.npy"), a)
    # Archives: every dtype in one, stored and deflated.
    arrays = {NAMES[dt]: values(dt, SHAPES[i % 4], rng) for i, dt in enumerate(DTYPES)}
    np.savez(os.path.join(d, "stored.npz"), **arrays)
    np.savez_compressed(os.path.join(d, "deflated.npz"), **arrays)
    for kind in ["stored", "deflated"]:
        for key, a in arrays.items():
            case("%s_%s" % (kind, key), "npy", "%s:%s" % (os.path.join(d, kind + ".npz"), key), a)
    # Targets from a second file: a vector, a matrix, from an archive, from IDX.
    x = values("<f4", (6, 2, 2), rng)
    y1 = values("<i8", (6,), rng)
    y2 = values("<f8", (6, 3), rng)
    np.save(os.path.join(d, "tx.npy"), x)
    np.save(os.path.join(d, "ty1.npy"), y1)
    np.savez_compressed(os.path.join(d, "ty.npz"), y2=y2)
    write_idx(os.path.join(d, "ty1.idx"), y1.astype(np.int32), 0x0C)
    case("join_vector", "npy", os.path.join(d, "tx.npy"), x, "npy", os.path.join(d, "ty1.npy"), y1)
    case("join_matrix_npz", "npy", os.path.join(d, "tx.npy"), x, "npy",
         os.path.join(d, "ty.npz") + ":y2", y2)
    case("join_idx_targets", "npy", os.path.join(d, "tx.npy"), x, "idx",
         os.path.join(d, "ty1.idx"), y1.astype(np.int32))
    # IDX of every type and rank 1 to 4, big-endian, written with struct; two gzipped.
    for code, (_, dt) in IDX_TYPES.items():
        for shape in SHAPES:
            name = "idx_%s_%dd" % (NAMES[dt], len(shape))
            a = values(dt, shape, rng)
            if dt == "<f8":
                a[a == 3.4e38] = 3.0e38
            path = os.path.join(d, name + ".idx")
            write_idx(path, a, code)
            case(name, "idx", path, a)
    import gzip
    for code in (0x0B, 0x0E):
        a = values(IDX_TYPES[code][1], (4, 3), rng)
        name = "idx_gzip_%02x" % code
        path = os.path.join(d, name + ".idx.gz")
        write_idx(path[:-3], a, code)
        with open(path[:-3], "rb") as f, gzip.open(path, "wb") as g:
            g.write(f.read())
        case(name, "idx", path, a)
    # IDX inputs with NumPy targets.
    xi = values("|u1", (6, 4, 4), rng)
    write_idx(os.path.join(d, "xi.idx"), xi, 0x08)
    case("join_idx_inputs", "idx", os.path.join(d, "xi.idx"), xi, "npy",
         os.path.join(d, "ty1.npy"), y1)


def local_data_offset(path, entry):
    """The offset of an entry's data in a zip: after its local header."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(entry)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
    n, m = struct.unpack("<HH", head[26:30])
    return info.header_offset + 30 + n + m, info


def patch(path, out, offset, data):
    with open(path, "rb") as f:
        b = bytearray(f.read())
    b[offset:offset + len(data)] = data
    with open(out, "wb") as f:
        f.write(b)


def write_bad(d, rng):
    b = os.path.join(d, "bad")
    os.makedirs(b)
    np.save(os.path.join(b, "complex.npy"), np.zeros((3, 2), np.complex64))
    np.save(os.path.join(b, "unicode.npy"), np.array(["hello", "world"], dtype="<U5"))
    np.save(os.path.join(b, "bigendian.npy"), np.arange(6, dtype=">f4").reshape(3, 2))
    np.save(os.path.join(b, "fortran.npy"), np.asfortranarray(np.ones((3, 4), np.float32)))
    np.save(os.path.join(b, "five_d.npy"), np.zeros((2, 2, 2, 2, 2), np.float32))
    np.save(os.path.join(b, "scalar.npy"), np.float32(1.0))
    good = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(os.path.join(b, "good.npy"), good)
    raw = open(os.path.join(b, "good.npy"), "rb").read()
    open(os.path.join(b, "truncated.npy"), "wb").write(raw[:-5])
    open(os.path.join(b, "trailing.npy"), "wb").write(raw + b"\0\0\0")
    open(os.path.join(b, "header_cut.npy"), "wb").write(raw[:40])
    # A header that is not the dict numpy writes.
    bad_header = raw.replace(b"'shape': (3, 4)", b"'shape': [3, 4]")
    open(os.path.join(b, "bad_header.npy"), "wb").write(bad_header)
    version4 = bytearray(raw)
    version4[6] = 4
    open(os.path.join(b, "version4.npy"), "wb").write(version4)
    open(os.path.join(b, "text.npy"), "w").write("a,b\n1,2\n")
    # NaN and infinities.
    a = good.copy()
    a[2, 1] = np.nan
    np.save(os.path.join(b, "nan.npy"), a)
    c = np.zeros((3, 2, 3))
    c[1, 0, 2] = -np.inf
    np.save(os.path.join(b, "inf.npy"), c)
    big = np.zeros((2, 2))
    big[1, 1] = 1e300
    np.save(os.path.join(b, "f64_range.npy"), big)
    np.savez_compressed(os.path.join(b, "nan.npz"), a=a)
    # Archives: a missing entry, a corrupt deflate stream, CRC mismatches, bzip2.
    np.savez(os.path.join(b, "ab.npz"), a=good, b=good[:, :2])
    np.savez_compressed(os.path.join(b, "ab_deflated.npz"), a=good, b=good[:, :2])
    off, info = local_data_offset(os.path.join(b, "ab_deflated.npz"), "b.npy")
    # 0x07: a final block of the reserved type 3, which inflate must refuse.
    patch(os.path.join(b, "ab_deflated.npz"), os.path.join(b, "bad_deflate.npz"), off, b"\x07")
    # The central directory's CRC of b.npy changed: the data inflates but fails the check.
    raw_z = open(os.path.join(b, "ab_deflated.npz"), "rb").read()
    cd = raw_z.rfind(b"PK\x01\x02")
    assert raw_z[cd + 46:cd + 46 + 5] == b"b.npy", "the last directory entry is b.npy"
    crc = struct.unpack("<I", raw_z[cd + 16:cd + 20])[0] ^ 1
    patch(os.path.join(b, "ab_deflated.npz"), os.path.join(b, "bad_crc.npz"), cd + 16,
          struct.pack("<I", crc))
    # A stored entry whose data changed after it was written.
    off, info = local_data_offset(os.path.join(b, "ab.npz"), "a.npy")
    patch(os.path.join(b, "ab.npz"), os.path.join(b, "bad_crc_stored.npz"),
          off + info.file_size - 1, b"\x55")
    with zipfile.ZipFile(os.path.join(b, "bzip2.npz"), "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("a.npy", raw)
    raw_ab = open(os.path.join(b, "ab.npz"), "rb").read()
    open(os.path.join(b, "cut.npz"), "wb").write(raw_ab[:len(raw_ab) // 2])
    # Targets of another count.
    np.save(os.path.join(b, "y9.npy"), np.arange(9, dtype=np.int64))
    np.save(os.path.join(b, "x10.npy"), np.zeros((10, 3), np.float32))
    # IDX: NaN in floats, truncated and trailing doubles, an unknown type, 5 dimensions,
    # an absurd size, a corrupt gzip stream.
    f = np.arange(12, dtype=np.float32).reshape(4, 3)
    f[3, 2] = np.nan
    write_idx(os.path.join(b, "nan.idx"), f, 0x0D)
    write_idx(os.path.join(b, "doubles.idx"), np.ones((4, 3)), 0x0E)
    raw_d = open(os.path.join(b, "doubles.idx"), "rb").read()
    open(os.path.join(b, "doubles_truncated.idx"), "wb").write(raw_d[:-4])
    open(os.path.join(b, "doubles_trailing.idx"), "wb").write(raw_d + b"\0" * 8)
    open(os.path.join(b, "type0a.idx"), "wb").write(bytes([0, 0, 0x0A, 1]) + struct.pack(">I", 1) + b"\0")
    write_idx(os.path.join(b, "five_d.idx"), np.zeros((1, 1, 1, 1, 2), np.int16), 0x0B)
    open(os.path.join(b, "huge.idx"), "wb").write(
        bytes([0, 0, 0x0E, 3]) + struct.pack(">III", 4000000000, 60000, 60000))
    import gzip
    gz = gzip.compress(raw_d)
    gz = gz[:len(gz) // 2] + bytes(x ^ 0x5A for x in gz[len(gz) // 2:len(gz) // 2 + 8]) + \
        gz[len(gz) // 2 + 8:]
    open(os.path.join(b, "corrupt.idx.gz"), "wb").write(gz)


def write(d):
    rng = np.random.default_rng(15)
    os.makedirs(os.path.join(d, "expect"))
    cases = []
    write_good(d, rng, cases)
    write_bad(d, rng)
    with open(os.path.join(d, "cases.txt"), "w") as f:
        f.write("\n".join(cases) + "\n")


def parse_dump(text):
    head, x, y = {}, [], []
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key in ("x", "y"):
            _, _, bits = rest.partition(":")
            row = np.array([int(v, 16) for v in bits.split()], dtype=np.uint32)
            (x if key == "x" else y).append(row)
        else:
            head[key] = rest
    return head, x, y


def compare(name, what, rows, want):
    want = want.reshape(want.shape[0], -1) if want.shape[0] else want.reshape(0, 0)
    if len(rows) != want.shape[0]:
        return "%s: %d samples printed, expected %d" % (what, len(rows), want.shape[0])
    bits = want.view(np.uint32)
    for i, row in enumerate(rows):
        if row.shape != bits[i].shape or not np.array_equal(row, bits[i]):
            j = next((j for j in range(min(len(row), len(bits[i]))) if row[j] != bits[i][j]), None)
            return "%s sample %d: %d values, expected %d; first difference at %s" % (
                what, i, len(row), len(bits[i]), j)
    return None


def check(d):
    failed = 0
    for line in open(os.path.join(d, "cases.txt")):
        name = line.split()[0]
        x = np.load(os.path.join(d, "expect", name + ".x.npy"))
        ypath = os.path.join(d, "expect", name + ".y.npy")
        y = np.load(ypath) if os.path.exists(ypath) else None
        try:
            head, xr, yr = parse_dump(open(os.path.join(d, "out", name + ".txt")).read())
        except OSError as e:
            print("FAIL %s: %s" % (name, e))
            failed += 1
            continue
        dtype = open(os.path.join(d, "expect", name + ".dtype")).read()
        shape = tuple(x.shape[1:]) if x.ndim > 1 else (1,)
        why = None
        if head.get("dtype") != dtype:
            why = "dtype %s, expected %s" % (head.get("dtype"), dtype)
        elif head.get("n") != str(x.shape[0]):
            why = "n %s, expected %d" % (head.get("n"), x.shape[0])
        elif head.get("shape") != str(shape):
            why = "shape %s, expected %s" % (head.get("shape"), shape)
        else:
            why = compare(name, "x", xr, x)
        if not why and y is not None:
            ydim = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
            if head.get("ydim") != str(ydim):
                why = "ydim %s, expected %d" % (head.get("ydim"), ydim)
            else:
                why = compare(name, "y", yr, y)
        if why:
            print("FAIL %s: %s" % (name, why))
            failed += 1
        else:
            print("ok %s" % name)
    return failed


def big(path, rows):
    # One period of k % 251 over whole rows: 251 rows of 1024 values, since
    # (r * 1024) % 251 repeats every 251 rows.
    block = (np.arange(251 * 1024, dtype=np.int64) % 251).astype(np.float32).reshape(251, 1024)
    assert rows % 251 == 0
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 1024))
    for r in range(0, rows, 251 * 16):
        n = min(251 * 16, rows - r)
        a[r:r + n] = np.tile(block, (n // 251, 1))
    # No flush: the pages reach the reader through the page cache, and waiting for the
    # disk would only slow the test down (the file is deleted right after).
    del a
    total = rows * 1024
    print(total // 251 * (250 * 251 // 2))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        write(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(1 if check(sys.argv[2]) else 0)
    elif len(sys.argv) == 4 and sys.argv[1] == "big":
        big(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
