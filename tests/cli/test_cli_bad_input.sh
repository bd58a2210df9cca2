# Every bad input gets one clear message naming the file/section/key and a non-zero
# exit status: 1 for bad data, 2 for a bad command line or config.
source "$(dirname "$0")/lib.sh"

CFG="$SRC/examples/fmnist-mlp.ini"
D="$TMP/data"
make_subset "$D" 300
# shellcheck disable=SC2046
run() { "$WORKER" --config "$CFG" --no-progress $(data_args "$D") --set train.epochs=1 "$@"; }

# Sanity: the small dataset itself trains, so the failures below are the bad input's.
if run >/dev/null 2>&1; then pass; else fail "the valid 300-sample subset does not train"; fi

# --- data files
expect_exit 1 "cannot open '$D/nope'" "missing data file" -- run --set data.train_images=nope
head -c 5000 "$D/train-images" >"$TMP/truncated"
expect_exit 1 "truncated" "truncated data file" -- run --set data.train_images="$TMP/truncated"
expect_exit 1 "'$D/train-labels'" "wrong IDX magic" -- run --set data.train_images=train-labels
cp "$D/train-labels" "$TMP/labels-299"
write_be32 "$TMP/labels-299" 4 299
head -c $((8 + 299)) "$TMP/labels-299" >"$TMP/labels-short"
expect_exit 1 "count mismatch" "label/image count mismatch" -- run --set data.train_labels="$TMP/labels-short"
gzip -c "$D/train-images" >"$TMP/images.gz"
size=$(stat -c %s "$TMP/images.gz")
printf '\xde\xad\xbe\xef\xde\xad\xbe\xef' | dd of="$TMP/images.gz" bs=1 seek=$((size / 2)) conv=notrunc status=none
expect_exit 1 "$TMP/images.gz" "corrupt gzip stream" -- run --set data.train_images="$TMP/images.gz"
# A test label the model has no output for (issue 14, defect 9): refused at start, not
# a test loss read from past the sample's outputs.
cp "$D/test-labels" "$TMP/test-label-255"
printf '\xff' | dd of="$TMP/test-label-255" bs=1 seek=20 conv=notrunc status=none
expect_exit 1 "'$TMP/test-label-255': test label 255, but the model has 10 outputs" \
  "test label beyond the outputs" -- run --set data.test_labels="$TMP/test-label-255"
# Empty sets (issue 14, defect 12): said as such, not as "units = 0" or a nan test loss.
printf '\x00\x00\x08\x03\x00\x00\x00\x00\x00\x00\x00\x1c\x00\x00\x00\x1c' >"$TMP/no-images"
printf '\x00\x00\x08\x01\x00\x00\x00\x00' >"$TMP/no-labels"
expect_exit 1 "no training samples: '$TMP/no-images' holds none" "empty training set" -- \
  run --set data.train_images="$TMP/no-images" --set data.train_labels="$TMP/no-labels"
expect_exit 1 "no test samples: '$TMP/no-images' holds none" "empty test set" -- \
  run --set data.test_images="$TMP/no-images" --set data.test_labels="$TMP/no-labels"

# --- config
expect_exit 2 "unknown layer type 'dense2'" "unknown layer type" -- run --set layer.2.type=dense2
expect_exit 2 "[train] batch_size" "negative batch size" -- run --set train.batch_size=-5
expect_exit 2 "--set layer.3.units: [layer.3] the last layer has 7 outputs but the labels of '$D/train-labels' have 10 classes" \
  "last layer does not fit the labels" -- run --set layer.3.units=7
expect_exit 2 "[model] input" "input shape does not fit the data" -- run --set model.input=100
expect_exit 2 "unknown key 'unit'" "misspelled key" -- run --set layer.1.unit=5
expect_exit 2 "--set train.epochs" "not an integer" -- run --set train.epochs=ten
expect_exit 2 "expected one of" "unknown optimizer" -- run --set optimizer.type=adamw
expect_exit 2 "expected section.key=value" "bad --set syntax" -- run --set epochs
expect_exit 2 "momentum" "key of another optimizer" -- run --set optimizer.type=adam
expect_exit 2 "larger than the" "batch larger than the data" -- run --set train.batch_size=100000
# A checkpoint directory that is a file: said at start (issue 14, defect 12), not at
# the first checkpoint.
touch "$TMP/a-file"
expect_exit 2 "--set checkpoint.dir: [checkpoint] dir = $TMP/a-file is not a directory" \
  "checkpoint.dir is a file" -- run --set checkpoint.dir="$TMP/a-file" --set train.epochs=3
printf '[train]\nepochs = 1\nbogus line\n' >"$TMP/bad.ini"
expect_exit 2 "$TMP/bad.ini:3" "malformed config line" -- "$WORKER" --config "$TMP/bad.ini"
expect_exit 2 "cannot open config" "missing config file" -- "$WORKER" --config "$TMP/none.ini"

# --- command line
expect_exit 2 "--config FILE is required" "no --config" -- "$WORKER"
expect_exit 2 "unknown option '--bogus'" "unknown option" -- "$WORKER" --bogus
finish
