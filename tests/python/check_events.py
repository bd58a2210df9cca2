"""Loads a dtrain event log with the real TensorBoard and checks what it sees.

Usage: check_events.py LOGDIR

LOGDIR holds the sample run written by `test_events LOGDIR` (tests/unit/test_events.c);
the formulas below mirror that program's. TensorBoard's own reader checks both CRCs
of every record, so a framing mistake fails here too. We check it through
  - event_accumulator.EventAccumulator: scalars, histograms, images, text tensors;
  - plugin_event_accumulator.EventAccumulator, the path the TensorBoard server uses:
    every tag shows up under the right plugin;
  - the text plugin's markdown rendering: configs come out as preformatted blocks.
Exits non-zero with a message naming the first mismatch.
"""

import struct
import sys
import zlib

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.plugins.text import text_plugin
from tensorboard.util import tensor_util

HIST_N = 1000
GRAY_H, GRAY_W = 28, 20
RGB_H, RGB_W = 8, 12
IMAGE_STEP = 3
CONFIG_BLOCK = "    model: mlp\n    layers: [256, 128]\n    # not a *heading*\n"
NOTES_MD = "**bold** run notes"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def items(getter, tag):
    """getter(tag), or [] (reported) when TensorBoard has no such tag."""
    try:
        return getter(tag)
    except KeyError:
        check(False, "TensorBoard has no tag %r" % tag)
        return []


def hist_values(step):
    i = np.arange(HIST_N)
    return ((i % 400).astype(np.float32) - np.float32(200)) / np.float32(64) * np.float32(step + 1)


def tf_bucket_limits():
    """TensorFlow's default histogram bucket edges, computed as the C code does."""
    pos = []
    v = 1e-12
    while v < 1e20:
        pos.append(v)
        v *= 1.1
    pos.append(sys.float_info.max)
    return [-x for x in reversed(pos)] + [0.0] + pos


def gray_pixels():
    y, x = np.mgrid[0:GRAY_H, 0:GRAY_W]
    return ((y * GRAY_W + x) * 3 % 256).astype(np.uint8)


def rgb_pixels():
    y, x = np.mgrid[0:RGB_H, 0:RGB_W]
    return np.stack([x * 20 % 256, y * 30 % 256, (x + y) * 10 % 256], axis=-1).astype(np.uint8)


def decode_png(data):
    """Decodes the PNGs our encoder writes (8-bit, filter 0 rows), checking chunk CRCs."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        ctype, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(ctype + body), "bad CRC in %r chunk" % ctype
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat += body
        pos += 12 + n
        if ctype == b"IEND":
            break
    assert pos == len(data), "bytes after IEND"
    width, height, depth, color, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    raw = zlib.decompress(idat)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * channels)
    assert (rows[:, 0] == 0).all(), "a row filter other than None"
    return rows[:, 1:].reshape(height, width, channels)


def check_accumulator(logdir):
    acc = event_accumulator.EventAccumulator(
        logdir,
        size_guidance={
            event_accumulator.SCALARS: 0,
            event_accumulator.HISTOGRAMS: 0,
            event_accumulator.COMPRESSED_HISTOGRAMS: 0,
            event_accumulator.IMAGES: 0,
            event_accumulator.TENSORS: 0,
        },
    )
    acc.Reload()
    tags = acc.Tags()
    check(sorted(tags["scalars"]) == ["train/accuracy", "train/loss"], "scalar tags %r" % tags["scalars"])
    check(tags["histograms"] == ["weights/dense1"], "histogram tags %r" % tags["histograms"])
    check(sorted(tags["images"]) == ["samples/gray", "samples/rgb"], "image tags %r" % tags["images"])
    check(sorted(tags["tensors"]) == ["config", "notes"], "tensor tags %r" % tags["tensors"])
    check(acc.file_version == 2.0, "file_version %r" % acc.file_version)

    for tag, f in [("train/loss", lambda s: 1.0 / (s + 1)), ("train/accuracy", lambda s: s * 0.125)]:
        events = items(acc.Scalars, tag)
        check([e.step for e in events] == list(range(10)), "%s steps %r" % (tag, [e.step for e in events]))
        for e in events:
            want = float(np.float32(f(e.step)))
            check(e.value == want, "%s step %d: %r, expected %r" % (tag, e.step, e.value, want))

    limits_all = set(tf_bucket_limits())
    hists = items(acc.Histograms, "weights/dense1")
    check([h.step for h in hists] == [0, 5], "histogram steps %r" % [h.step for h in hists])
    for h in hists:
        hv, vals = h.histogram_value, hist_values(h.step)
        d = vals.astype(np.float64)
        check(hv.num == HIST_N, "histogram step %d: num %r" % (h.step, hv.num))
        check(hv.min == d.min() and hv.max == d.max(), "histogram step %d: min/max %r/%r" % (h.step, hv.min, hv.max))
        check(abs(hv.sum - d.sum()) < 1e-9, "histogram step %d: sum %r vs %r" % (h.step, hv.sum, d.sum()))
        check(abs(hv.sum_squares - (d * d).sum()) < 1e-6, "histogram step %d: sum_squares" % h.step)
        limits, counts = list(hv.bucket_limit), list(hv.bucket)
        check(len(limits) == len(counts), "histogram step %d: %d limits, %d counts" % (h.step, len(limits), len(counts)))
        check(all(l in limits_all for l in limits), "histogram step %d: a limit is not a TensorFlow edge" % h.step)
        check(all(a < b for a, b in zip(limits, limits[1:])), "histogram step %d: limits not ascending" % h.step)
        check(sum(counts) == HIST_N, "histogram step %d: counts sum to %r" % (h.step, sum(counts)))
        lo = -np.inf
        for hi, c in zip(limits, counts):
            n = int(((d >= lo) & (d < hi)).sum())
            check(n == c, "histogram step %d: bucket [%r, %r) holds %d, file says %r" % (h.step, lo, hi, n, c))
            lo = hi
    # The distributions tab works from compressed histograms built from the buckets.
    compressed = items(acc.CompressedHistograms, "weights/dense1")
    check(len(compressed) == 2, "compressed histograms: %d" % len(compressed))
    if compressed:
        last = compressed[-1].compressed_histogram_values
        # (basis points, value) pairs from the minimum (0) to the maximum (10000).
        check(tuple(map(float, last[0])) == (0.0, -18.75) and tuple(map(float, last[-1])) == (10000.0, 18.65625),
              "compressed histogram ends %r, %r" % (last[0], last[-1]))

    for tag, want in [("samples/gray", gray_pixels()[..., None]), ("samples/rgb", rgb_pixels())]:
        images = items(acc.Images, tag)
        check(len(images) == 1, "%s: %d images" % (tag, len(images)))
        for im in images:
            check(im.step == IMAGE_STEP, "%s step %d" % (tag, im.step))
            check((im.height, im.width) == want.shape[:2], "%s: %dx%d, expected %dx%d" % (tag, im.width, im.height, want.shape[1], want.shape[0]))
            try:
                got = decode_png(im.encoded_image_string)
                check(got.shape == want.shape and (got == want).all(), "%s: pixels differ" % tag)
            except AssertionError as e:
                check(False, "%s: bad PNG: %s" % (tag, e))

    for tag, want, html in [
        ("config", CONFIG_BLOCK, "<pre><code>model: mlp\nlayers: [256, 128]\n# not a *heading*\n</code></pre>"),
        ("notes", NOTES_MD, "<p><strong>bold</strong> run notes</p>"),
    ]:
        tensors = items(acc.Tensors, tag)
        check(len(tensors) == 1, "%s: %d text events" % (tag, len(tensors)))
        if not tensors:
            continue
        proto = tensors[0].tensor_proto
        check(proto.string_val[0].decode("utf-8") == want, "%s: text %r" % (tag, proto.string_val[0]))
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        check(plugin == "text", "%s: plugin %r" % (tag, plugin))
        rendered = text_plugin.text_array_to_html(tensor_util.make_ndarray(proto), True)
        check(rendered == html, "%s: rendered as %r" % (tag, rendered))


def check_plugin_accumulator(logdir):
    acc = plugin_event_accumulator.EventAccumulator(logdir, size_guidance={plugin_event_accumulator.TENSORS: 0})
    acc.Reload()
    want = {
        "scalars": ["train/accuracy", "train/loss"],
        "histograms": ["weights/dense1"],
        "images": ["samples/gray", "samples/rgb"],
        "text": ["config", "notes"],
    }
    for plugin, tags in want.items():
        got = sorted(acc.PluginTagToContent(plugin).keys())
        check(got == tags, "plugin %s: tags %r, expected %r" % (plugin, got, tags))
    loss = items(acc.Tensors, "train/loss")
    values = [float(tensor_util.make_ndarray(t.tensor_proto)) for t in loss]
    check(values == [float(np.float32(1.0 / (s + 1))) for s in range(10)], "plugin scalars: %r" % values)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    logdir = sys.argv[1]
    check_accumulator(logdir)
    check_plugin_accumulator(logdir)
    if failures:
        print("check_events: %d problems with %s" % (len(failures), logdir), file=sys.stderr)
        return 1
    print("check_events: TensorBoard read %s as written" % logdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
