# Image folders (src/io/images.c, png_decode.c, jpeg_decode.c, image_resize.c) and
# scripts/fmnist-to-png.py:
#  - tests/python/check_images.py: Pillow writes PNGs (gray, 1-bit, gray + alpha, RGB,
#    RGBA, palette, 16-bit) and JPEGs (gray, RGB, progressive); dtrain's decoded bytes
#    equal Pillow's exactly (PNG) or within 1 (JPEG); a folder dataset's classes, labels,
#    order, skipped files, meta_json, channel conversion, resizing and shuffling; the
#    fmnist-to-png script's PNGs decode to exactly the IDX bytes;
#  - every bad input: the exit status 1 and a message naming the folder or file (and
#    what is wrong with it), at load (headers) and when a sample is decoded.
source "$(dirname "$0")/lib.sh"
python="${DT_PYTHON:-$SRC/.venv/bin/python}"
DUMP="$BUILD/tests/images_dump"

if [[ -x "$python" ]] && "$python" -c "import numpy, PIL" 2>/dev/null; then
  mkdir -p "$TMP/check"
  if out=$("$python" "$SRC/tests/python/check_images.py" "$DUMP" "$TMP/check" "$SRC" 2>&1); then
    pass
  else
    fail "check_images.py: $out"
  fi
  echo "$out" | tail -1
else
  fail "no Python with numpy and Pillow at $python: run scripts/setup-python-venv.sh"
  finish
fi

# A small good folder to start each bad case from: two classes, a gray PNG and an RGB
# JPEG of 8x8 pixels each, made by Pillow.
good="$TMP/good"
mkdir -p "$good/cat" "$good/dog"
"$python" - "$good" <<'EOF'
import sys
import numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(1)
Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(f"{d}/cat/a.png")
Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(f"{d}/dog/b.png")
Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), "RGB").save(f"{d}/rgb.png")
Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), "RGB").save(f"{d}/rgb.jpg")
Image.fromarray(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8), "CMYK").save(f"{d}/cmyk.jpg")
EOF
mv "$good/rgb.png" "$good/rgb.jpg" "$good/cmyk.jpg" "$TMP/"
expect_exit 0 "" "the good folder loads" -- "$DUMP" folder "$good" "$TMP/out.bin"

# fresh NAME: a copy of the good folder, at $TMP/NAME.
fresh() {
  rm -rf "${TMP:?}/$1"
  cp -r "$good" "$TMP/$1"
}

expect_exit 1 "cannot open image folder '$TMP/missing': No such file" "missing folder" -- \
  "$DUMP" folder "$TMP/missing" "$TMP/out.bin"

mkdir -p "$TMP/no_classes"
touch "$TMP/no_classes/README"
expect_exit 1 "'$TMP/no_classes': no class folders" "no class folders" -- \
  "$DUMP" folder "$TMP/no_classes" "$TMP/out.bin"

fresh empty_class
mkdir "$TMP/empty_class/eel"
touch "$TMP/empty_class/eel/notes.txt"
expect_exit 1 "'$TMP/empty_class/eel': class folder without images" "an empty class folder" -- \
  "$DUMP" folder "$TMP/empty_class" "$TMP/out.bin"

fresh top_image
cp "$good/cat/a.png" "$TMP/top_image/stray.PNG"
expect_exit 1 "'$TMP/top_image/stray.PNG': an image directly in the image folder" \
  "an image directly in the folder" -- "$DUMP" folder "$TMP/top_image" "$TMP/out.bin"

fresh nested
mkdir "$TMP/nested/cat/kittens"
expect_exit 1 "'$TMP/nested/cat/kittens': a folder inside the class folder" "a nested folder" -- \
  "$DUMP" folder "$TMP/nested" "$TMP/out.bin"

# Corrupt headers: found at load.
fresh not_image
echo "hello" >"$TMP/not_image/dog/c.png"
expect_exit 1 "'$TMP/not_image/dog/c.png': neither a PNG nor a JPEG file (it starts with bytes 68 65" \
  "a text file named .png" -- "$DUMP" folder "$TMP/not_image" "$TMP/out.bin"

fresh empty_file
: >"$TMP/empty_file/dog/c.jpg"
expect_exit 1 "'$TMP/empty_file/dog/c.jpg': empty file" "an empty .jpg" -- \
  "$DUMP" folder "$TMP/empty_file" "$TMP/out.bin"

fresh bad_ihdr
cp "$good/dog/b.png" "$TMP/bad_ihdr/dog/c.png"
printf '\xff' | dd of="$TMP/bad_ihdr/dog/c.png" bs=1 seek=20 conv=notrunc status=none
expect_exit 1 "'$TMP/bad_ihdr/dog/c.png': corrupt PNG: IHDR: CRC error" "a PNG header with a bad CRC" -- \
  "$DUMP" folder "$TMP/bad_ihdr" "$TMP/out.bin"

fresh short_png
head -c 20 "$good/dog/b.png" >"$TMP/short_png/dog/c.png"
expect_exit 1 "'$TMP/short_png/dog/c.png': corrupt PNG: the file ends early (truncated)" \
  "a PNG cut in its header" -- "$DUMP" folder "$TMP/short_png" "$TMP/out.bin"

fresh bad_jpeg_header
printf '\xff\xd8\xff\xc0\x00\x02garbage' >"$TMP/bad_jpeg_header/dog/c.jpg"
expect_exit 1 "'$TMP/bad_jpeg_header/dog/c.jpg': corrupt JPEG" "a corrupt JPEG header" -- \
  "$DUMP" folder "$TMP/bad_jpeg_header" "$TMP/out.bin"

fresh cmyk
cp "$TMP/cmyk.jpg" "$TMP/cmyk/dog/c.jpg"
expect_exit 1 "'$TMP/cmyk/dog/c.jpg': unsupported JPEG color space CMYK" "a CMYK JPEG" -- \
  "$DUMP" folder "$TMP/cmyk" "$TMP/out.bin"

# Another channel count with channels 0 (the first image, cat/a.png, is gray); with
# --channels the same folder loads.
fresh mixed
cp "$TMP/rgb.jpg" "$TMP/mixed/dog/c.jpg"
expect_exit 1 "'$TMP/mixed/dog/c.jpg': 3 channels, but the first image '$TMP/mixed/cat/a.png' has 1" \
  "another channel count" -- "$DUMP" folder "$TMP/mixed" "$TMP/out.bin"
expect_exit 0 "" "another channel count, converted" -- \
  "$DUMP" folder "$TMP/mixed" "$TMP/out.bin" --channels 3

# Corrupt past the header: the folder loads, decoding the sample fails.
fresh cut_png
size=$(stat -c %s "$good/dog/b.png")
head -c $((size - 30)) "$good/dog/b.png" >"$TMP/cut_png/dog/c.png"
expect_exit 1 "'$TMP/cut_png/dog/c.png': corrupt PNG:" "a PNG cut in its image data" -- \
  "$DUMP" folder "$TMP/cut_png" "$TMP/out.bin"

fresh bad_idat
cp "$good/dog/b.png" "$TMP/bad_idat/dog/c.png"
printf '\x00\x00' | dd of="$TMP/bad_idat/dog/c.png" bs=1 seek=45 conv=notrunc status=none
expect_exit 1 "'$TMP/bad_idat/dog/c.png': corrupt PNG:" "a PNG with damaged image data" -- \
  "$DUMP" folder "$TMP/bad_idat" "$TMP/out.bin"

fresh cut_jpeg
size=$(stat -c %s "$TMP/rgb.jpg")
head -c $((size / 2)) "$TMP/rgb.jpg" >"$TMP/cut_jpeg/dog/c.jpg"
expect_exit 1 "'$TMP/cut_jpeg/dog/c.jpg': corrupt JPEG: Premature end of JPEG file" \
  "a JPEG cut in its image data" -- "$DUMP" folder "$TMP/cut_jpeg" "$TMP/out.bin" --channels 1

# A test folder whose classes differ from the training set's.
fresh extra_class
mkdir "$TMP/extra_class/emu"
cp "$good/cat/a.png" "$TMP/extra_class/emu/"
expect_exit 1 "'$TMP/extra_class': class folder 'emu' is not a class of the training set '$good'" \
  "a test folder with another class" -- \
  "$DUMP" folder "$TMP/extra_class" "$TMP/out.bin" --classes-from "$good"
fresh missing_class
rm -r "$TMP/missing_class/dog"
expect_exit 1 "'$TMP/missing_class': no folder for the training set's class 'dog'" \
  "a test folder without a class" -- \
  "$DUMP" folder "$TMP/missing_class" "$TMP/out.bin" --classes-from "$good"
expect_exit 0 "" "a test folder with the training set's classes" -- \
  "$DUMP" folder "$TMP/mixed" "$TMP/out.bin" --channels 1 --classes-from "$good"

finish
