# The CSV and text (TSV) dataset formats (src/io/csv.c, src/io/text.c), driven through
# tests/tools/csvtext_dump:
#  - CSVs written by Python's csv module (CRLF and LF, a byte order mark, quoted names,
#    QUOTE_ALL, spaces around numbers, a skipped text column) load to exactly the float32
#    values NumPy gives for float(text) of what Python's csv reader parsed, with the
#    features and targets chosen by name in the order listed;
#  - TSVs with known tokenizations (words and characters, non-ASCII letters lowercased,
#    punctuation stripped, padding and truncation, out-of-vocabulary ids, the vocabulary's
#    order and ties, the held-out tail, class ids of a test file loaded with the training
#    set's vocabulary after that training set was freed);
#  - every bad input, with the exit status and a message naming the file, line and column.
source "$(dirname "$0")/lib.sh"

DUMP="$BUILD/tests/csvtext_dump"
python="${DT_PYTHON:-$SRC/.venv/bin/python}"
"$python" -c 'import numpy' 2>/dev/null ||
  { echo "FAIL: no Python with numpy at $python: run scripts/setup-python-venv.sh" >&2; exit 1; }
cd "$TMP" || exit 1

# ---- CSV: values as Python parsed them ----

"$python" - <<'EOF'
import csv
import numpy as np

rng = np.random.default_rng(15)
special = ["-0", "0", "1e-45", "1.4e-45", "7e-46", "1e-50", "3.4028235e38",
           "3.4028234663852886e38", "-3.4e38", "1E5", "+3", ".5", "5.", "-.25e-3",
           "0.1000000000000000055511151231257827", "123456789012345678901234567890",
           "9007199254740993", "9007199254740992", "1e22", "1e23", "4.35e-23", "00012.50",
           "1.00000005960464477539062500000001", "0.000000000000000000000000000001",
           "16777217", "0.30000000000000004", "2.5e-308", "4.9e-324", "1e-400"]

def midpoint():
    # Halfway between two float32s: a double rounding in the wrong direction (a parser
    # off by one double ulp) shows after the cast to float32.
    k = int(rng.integers(2**22, 2**24))
    if k >= 2**23:
        return ("%d.5" % k) if k % 2 else ("%d5e-1" % k)
    return "%d.%s" % (k, "25" if k % 2 else "75")

def value(i, j):
    k = (i * 7 + j) % 6
    if k == 5:
        return midpoint()
    if k == 0:
        return repr(float(rng.normal() * 10.0 ** int(rng.integers(-38, 38))))
    if k == 1:
        return repr(float(np.float32(rng.normal())))
    if k == 2:
        return str(int(rng.integers(-10**6, 10**6)))
    if k == 3:
        return special[(i + j) % len(special)]
    return "%.3f" % rng.uniform(-100, 100)

names = ["plain", "with space", "comma,name", 'quote"name', "ünï", "y1", "y2"]
rows = [[value(i, j) for j in range(len(names))] for i in range(300)]
# The default dialect: CRLF line ends, names with a comma or a quote quoted.
with open("crlf.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(names)
    w.writerows(rows)
# LF, a byte order mark, every cell quoted, no final newline.
with open("bom.csv", "w", newline="", encoding="utf-8-sig") as f:
    w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(names)
    w.writerows(rows)
with open("bom.csv", "rb+") as f:
    f.seek(-1, 2)
    f.truncate()
# A text column that is not used (quotes, commas), spaces around numbers, and a quoted
# header name holding a line break (so data starts on line 3).
with open("skip.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["id", "name", "x\nnew", "t"])
    for i in range(50):
        w.writerow([str(i), 'say "hi", %d' % i, " %s " % value(i, 0), "  %d" % (i % 3)])
EOF

# check_csv FILE DUMP TARGETS FEATURES FIRST_LINE: the dump matches Python's csv reader.
check_csv() {
  "$python" - "$@" <<'EOF'
import csv, json, sys
import numpy as np
path, dump, targets, features, first_line = sys.argv[1:6]
with open(path, newline="", encoding="utf-8-sig") as f:
    rows = list(csv.reader(f))
header, data = rows[0], rows[1:]
tl = [t.strip() for t in targets.split(",") if t.strip()]
fl = [t.strip() for t in features.split(",") if t.strip()] or [h for h in header if h not in tl]
def f32(cells):
    return np.array([float(c) for c in cells], dtype=np.float64).astype(np.float32)
want_x = [f32([r[header.index(n)] for n in fl]) for r in data]
want_y = [f32([r[header.index(n)] for n in tl]) for r in data]
got = {}
xs, ys = [], []
for line in open(dump, encoding="utf-8"):
    key, _, rest = line.rstrip("\n").partition(" ")
    if key == "x": xs.append(np.array(rest.split()[1:], dtype=np.float32))
    elif key == "y": ys.append(np.array(rest.split()[1:], dtype=np.float32))
    else: got[key] = rest
bad = []
if int(got["n"]) != len(data): bad.append("n %s, Python read %d rows" % (got["n"], len(data)))
if int(got["dim"]) != len(fl) or got["shape"] != str(len(fl)): bad.append("dim/shape %s/%s" % (got["dim"], got["shape"]))
if int(got["first_line"]) != int(first_line): bad.append("first_line %s" % got["first_line"])
if got["ykind"] != ("values" if tl else "none"): bad.append("ykind " + got["ykind"])
meta = json.loads("{" + got["meta"] + "}")
if meta != {"features": fl, "targets": tl}: bad.append("meta %r" % meta)
if len(xs) != len(data) or len(ys) != (len(data) if tl else 0): bad.append("%d x rows, %d y rows" % (len(xs), len(ys)))
for i in range(min(len(xs), len(data))):
    if xs[i].tobytes() != want_x[i].tobytes(): bad.append("row %d x %s, Python %s" % (i, xs[i], want_x[i]))
    if tl and ys[i].tobytes() != want_y[i].tobytes(): bad.append("row %d y %s, Python %s" % (i, ys[i], want_y[i]))
if bad:
    print("\n".join(bad[:10]), file=sys.stderr)
    sys.exit(1)
print("%s: %d rows x %d features, %d targets, all bit-identical to Python's" % (path, len(data), len(fl), len(tl)))
EOF
}

# csv_case NAME FILE TARGETS FEATURES FIRST_LINE
csv_case() {
  local name=$1 file=$2 targets=$3 features=$4 first=$5
  if "$DUMP" csv "$file" -t "$targets" -f "$features" >"$name.dump" 2>"$name.err"; then
    if check_csv "$file" "$name.dump" "$targets" "$features" "$first"; then pass; else fail "$name: values differ from Python's"; fi
  else
    fail "$name: load failed: $(cat "$name.err")"
  fi
}
csv_case crlf_default crlf.csv "y2,y1" "" 2
csv_case crlf_listed crlf.csv " y1 " "ünï, with space,plain,quote\"name" 2
csv_case bom_quoted bom.csv "y1" "" 2
csv_case bom_no_targets bom.csv "" "" 2
csv_case skip_text skip.csv "t" "x
new" 3

# Integer targets become classes (as the lead's loader does for a loss that wants labels).
printf 'a,y\n1,0\n2,2\n3,1\n' >cls.csv
out=$("$DUMP" csv cls.csv -t y -c 2>&1)
grep -qx "ykind classes" <<<"$out" && grep -qx "num_classes 3" <<<"$out" && pass ||
  fail "class targets: $out"

# ---- CSV: bad input ----

# bad_csv NAME CONTENT NEEDLE [dump options...]: a file with CONTENT (printf format) fails
# with a message that contains NEEDLE.
bad_csv() {
  local name=$1 content=$2 needle=$3
  shift 3
  printf "$content" >"$name.csv"
  expect_exit 1 "$needle" "$name" -- "$DUMP" csv "$name.csv" "$@"
}
bad_csv too_many 'a,b,y\n1,2,3\n4,5,6,7\n' "too_many.csv:3:4: too many fields: the header has 3 columns" -t y
bad_csv too_few 'a,b,y\n1,2,3\n4,5\n' "too_few.csv:3:3: too few fields: 2 of 3 (column 'y' is missing)" -t y
bad_csv too_few_crlf 'a,b,y\r\n1,2,3\r\n4\r\n' "too_few_crlf.csv:3:2: too few fields: 1 of 3 (column 'b' is missing)" -t y
bad_csv empty_cell 'a,b,y\n1,2,3\n4,,6\n' "empty_cell.csv:3:2: column 'b': empty cell" -t y
bad_csv empty_quoted 'a,b,y\n1,"",3\n' "empty_quoted.csv:2:2: column 'b': empty cell" -t y
bad_csv empty_last 'a,b,y\n1,2,3\n4,5,\n' "empty_last.csv:3:3: column 'y': empty cell" -t y
bad_csv blank_cell 'a,b,y\n1,  ,3\n' "blank_cell.csv:2:2: column 'b': empty cell" -t y
bad_csv not_number 'a,b,y\n1,2,3\n4,5x,6\n' "not_number.csv:3:2: column 'b': not a number: '5x'" -t y
bad_csv word 'a,b,y\n1,cat,3\n' "word.csv:2:2: column 'b': not a number: 'cat'" -t y
bad_csv hex 'a,b,y\n1,0x1A,3\n' "hex.csv:2:2: column 'b': not a number: '0x1A'" -t y
bad_csv two_numbers 'a,b,y\n1,2 3,3\n' "two_numbers.csv:2:2: column 'b': not a number: '2 3'" -t y
bad_csv nan 'a,b,y\n1,2,3\nnan,5,6\n' "nan.csv:3:1: column 'a': not a finite number: 'nan'" -t y
bad_csv inf 'a,b,y\n1,-inf,3\n' "inf.csv:2:2: column 'b': not a finite number: '-inf'" -t y
bad_csv infinity 'a,b,y\n1,2,Infinity\n' "infinity.csv:2:3: column 'y': not a finite number: 'Infinity'" -t y
bad_csv overflow64 'a,b,y\n1,1e999,3\n' "overflow64.csv:2:2: column 'b': not a finite number: '1e999'" -t y
bad_csv overflow32 'a,b,y\n1,2,3.5e38\n' "overflow32.csv:2:3: column 'y': not a finite number: '3.5e38' (NaN, infinities and values beyond float32's range" -t y
bad_csv unknown_target 'a,b,y\n1,2,3\n' "'unknown_target.csv': no column named 'z' (in targets); the header (line 1) has: 'a', 'b', 'y'" -t z
bad_csv unknown_feature 'a,b,y\n1,2,3\n' "'unknown_feature.csv': no column named 'c' (in features); the header (line 1) has: 'a', 'b', 'y'" -t y -f a,c
bad_csv duplicate 'a,b,a\n1,2,3\n' "duplicate.csv:1:3: column name 'a' appears twice (columns 1 and 3)"
bad_csv both 'a,b,y\n1,2,3\n' "'both.csv': column 'y' is listed both as a target and as a feature" -t y -f a,y
bad_csv listed_twice 'a,b,y\n1,2,3\n' "'listed_twice.csv': column 'a' is listed twice in features" -t y -f a,a
bad_csv all_targets 'a,y\n1,2\n' "'all_targets.csv': no feature columns" -t a,y
bad_csv no_rows 'a,b,y\n' "'no_rows.csv': no data rows after the header (line 1)" -t y
bad_csv no_rows_blank 'a,b,y\r\n\r\n\n' "'no_rows_blank.csv': no data rows after the header (line 1)" -t y
bad_csv empty_file '' "'empty_file.csv': empty file (expected a header row of column names)" -t y
bad_csv bom_only '\xef\xbb\xbf' "'bom_only.csv': empty file" -t y
bad_csv no_header '\n1,2\n' "no_header.csv:1: empty first line (expected a header row of column names)" -t y
bad_csv empty_line 'a,y\n1,2\n\n3,4\n' "empty_line.csv:3: empty line (every row needs 2 fields)" -t y
bad_csv unclosed_name 'a,"b\n1,2\n' "unclosed_name.csv:1:2: the quoted name of column 2 has no closing quote" -t a
bad_csv skipped_break 'a,s,y\n1,"x\ny",3\n' "skipped_break.csv:2:2: column 's': a quoted cell without its closing quote on the same line" -t y -f a
bad_csv class_label 'a,y\n1,0\n2,1.5\n' "'class_label.csv': sample 1 (line 3): class label 1.5 is not a non-negative integer" -t y -c
bad_csv class_negative 'a,y\n1,0\n2,1\n3,-1\n' "(line 4): class label -1 is not a non-negative integer" -t y -c
expect_exit 1 "cannot open 'missing.csv'" missing_file -- "$DUMP" csv missing.csv -t y

# ---- Text ----

# text_case NAME EXPECTED DUMP_ARGS...: the dump's lines other than what/types equal
# EXPECTED (a printf format).
text_case() {
  local name=$1 expected=$2
  shift 2
  local out
  if ! out=$("$DUMP" text "$@" 2>&1); then
    fail "$name: load failed: $out"
    return
  fi
  out=$(grep -vE '^(what|xtype|ytype|dim|ydim|integer_ids|first_line) ' <<<"$out")
  if [ "$out" == "$(printf "$expected")" ]; then pass; else
    fail "$name: got
$out
expected
$(printf "$expected")"
  fi
  # The fixed facts of every text dataset.
  out=$("$DUMP" text "$@" 2>&1)
  grep -qx "integer_ids 1" <<<"$out" && grep -qx "first_line 1" <<<"$out" &&
    grep -qx "xtype int32" <<<"$out" && grep -qx "ytype int32" <<<"$out" && pass ||
    fail "$name: not int32 ids with integer_ids and first_line 1"
}

# Words: lowercased, punctuation stripped (… is Unicode), counts the(3) der(2), then ties
# by bytes (cat dog end hund kater); max_tokens 6 keeps 4; sequences of 3 truncate/pad.
printf 'en\tThe cat. The DOG!\nde\tDer Hund; der Kater…\nen\tthe end\n' >train.tsv
text_case words_train 'n 3\nshape 3\nykind classes\nnum_classes 2\nclass 0 de\nclass 1 en
meta "tokens": "words", "max_tokens": 6, "sequence_length": 3, "vocabulary": ["", "[UNK]", "the", "der", "cat", "dog"]
x 0 2 4 2\ny 0 1\nx 1 3 1 3\ny 1 0\nx 2 2 1 0\ny 2 1' train.tsv -k words -m 6 -l 3

# A test file with the training set's vocabulary and classes (the training set is freed
# before this one is printed): unknown words are [UNK], classes keep their ids.
printf 'de\tDER Kater schläft\r\nen\tA dog, the cat\r\n' >test.tsv
text_case words_test 'n 2\nshape 3\nykind classes\nnum_classes 2\nclass 0 de\nclass 1 en
meta "tokens": "words", "max_tokens": 6, "sequence_length": 3, "vocabulary": ["", "[UNK]", "the", "der", "cat", "dog"]
x 0 3 1 1\ny 0 0\nx 1 1 5 2\ny 1 1' test.tsv -k words -m 6 -l 3 -v train.tsv

# Non-ASCII words: Latin Extended-A and Latin-1 capitals lowercased, Unicode punctuation
# (— « ¿ ») stripped; ties ordered by UTF-8 bytes (k < q < ą < ž).
printf 'pl\tŁÓDŹ, łódź — ĄĘ\ncs\tŽLUŤOUČKÝ kůň «¿Qué?»\n' >latin.tsv
text_case words_latin 'n 2\nshape 4\nykind classes\nnum_classes 2\nclass 0 cs\nclass 1 pl
meta "tokens": "words", "max_tokens": 100, "sequence_length": 4, "vocabulary": ["", "[UNK]", "łódź", "kůň", "qué", "ąę", "žluťoučký"]
x 0 2 2 5 0\ny 0 1\nx 1 6 3 4 0\ny 1 0' latin.tsv -k words -m 100 -l 4

# Characters: code points lowercased, spaces and punctuation kept, é(3) ä(2) ö(2) by
# bytes, then " " before "!"; a byte order mark, CRLF and empty lines at the end.
printf '\xef\xbb\xbfa\tÄä Öö\r\nb\tÉÉé!\r\n\r\n\n' >chars.tsv
text_case chars 'n 2\nshape 4\nykind classes\nnum_classes 2\nclass 0 a\nclass 1 b
meta "tokens": "chars", "max_tokens": 10, "sequence_length": 4, "vocabulary": ["", "[UNK]", "é", "ä", "ö", " ", "!"]
x 0 3 3 5 4\ny 0 0\nx 1 2 2 2 6\ny 1 1' chars.tsv -k chars -m 10 -l 4
printf 'b\tÖ?é\n' >chars_test.tsv
text_case chars_test 'n 1\nshape 4\nykind classes\nnum_classes 2\nclass 0 a\nclass 1 b
meta "tokens": "chars", "max_tokens": 10, "sequence_length": 4, "vocabulary": ["", "[UNK]", "é", "ä", "ö", " ", "!"]
x 0 4 1 2 0\ny 0 1' chars_test.tsv -k chars -m 10 -l 4 -v chars.tsv

# Ties between a token and its prefix (ab before abc), and max_tokens 3 keeping one.
printf 'k\tabc ab b abc ab\n' >ties.tsv
text_case ties 'n 1\nshape 5\nykind classes\nnum_classes 1\nclass 0 k
meta "tokens": "words", "max_tokens": 5, "sequence_length": 5, "vocabulary": ["", "[UNK]", "ab", "abc", "b"]
x 0 3 2 4 3 2\ny 0 0' ties.tsv -k words -m 5 -l 5
text_case ties_cut 'n 1\nshape 5\nykind classes\nnum_classes 1\nclass 0 k
meta "tokens": "words", "max_tokens": 3, "sequence_length": 5, "vocabulary": ["", "[UNK]", "ab"]
x 0 1 2 1 1 2\ny 0 0' ties.tsv -k words -m 3 -l 5

# The held-out tail (2 of 4 lines) adds nothing to the vocabulary: zz is [UNK].
printf 'x\taa bb\ny\taa\nx\tzz zz zz\ny\tbb qq\n' >holdout.tsv
text_case holdout 'n 4\nshape 3\nykind classes\nnum_classes 2\nclass 0 x\nclass 1 y
meta "tokens": "words", "max_tokens": 10, "sequence_length": 3, "vocabulary": ["", "[UNK]", "aa", "bb"]
x 0 2 3 0\ny 0 0\nx 1 2 0 0\ny 1 1\nx 2 1 1 1\ny 2 0\nx 3 3 1 0\ny 3 1' holdout.tsv -k words -m 10 -l 3 -H 0.5

# Special characters in tokens come out as valid JSON.
printf 'q\t"\\\\\x01\n' >json.tsv
out=$("$DUMP" text json.tsv -k chars -m 10 -l 3 2>&1)
meta=$(sed -n 's/^meta //p' <<<"$out")
if "$python" -c 'import json, sys; v = json.loads("{" + sys.argv[1] + "}")["vocabulary"]; sys.exit(sorted(v[2:]) != sorted(["\"", "\\", "\x01"]))' "$meta"; then
  pass
else
  fail "json escaping: $meta"
fi

# ---- Text: bad input ----

# bad_text NAME CONTENT NEEDLE [dump options...]
bad_text() {
  local name=$1 content=$2 needle=$3
  shift 3
  printf "$content" >"$name.tsv"
  expect_exit 1 "$needle" "$name" -- "$DUMP" text "$name.tsv" -k words -m 10 -l 4 "$@"
}
bad_text empty_text 'a\tb\nc\t\n' "empty_text.tsv:2: empty text (after the tab)"
bad_text empty_text_crlf 'a\tb\r\nc\t\r\n' "empty_text_crlf.tsv:2: empty text (after the tab)"
bad_text missing_tab 'a\tb\nc d\n' "missing_tab.tsv:2: missing tab (expected a label, a tab and a text)"
bad_text empty_label 'a\tb\n\tb\n' "empty_label.tsv:2: empty label (before the tab)"
bad_text empty_line 'a\tb\n\nc\td\n' "empty_line.tsv:2: empty line"
bad_text bad_utf8 'a\tb\nc\tx\xff\n' "bad_utf8.tsv:2:4: invalid UTF-8 (byte 0xFF)"
bad_text overlong 'a\t\xc0\xaf\n' "overlong.tsv:1:3: invalid UTF-8 (byte 0xC0)"
bad_text surrogate 'a\tb\nb\tok\nc\tzz\xed\xa0\x80\n' "surrogate.tsv:3:5: invalid UTF-8 (byte 0xED)"
bad_text cut_utf8 'a\tb\xc3' "cut_utf8.tsv:1:4: invalid UTF-8 (byte 0xC3)"
bad_text bad_label_utf8 '\xe9t\tb\n' "bad_label_utf8.tsv:1:1: invalid UTF-8 (byte 0xE9)"
bad_text nul 'a\tb\0c\n' "nul.tsv:1:4: a NUL byte in a text file"
bad_text no_lines '' "'no_lines.tsv': no lines"
bad_text only_blank '\r\n\n' "'only_blank.tsv': no lines"
bad_text max_tokens 'a\tb\n' "'max_tokens.tsv': max_tokens must be from 3" -m 2
bad_text seq_len 'a\tb\n' "'seq_len.tsv': sequence_length must be from 1" -l 0
bad_text holdout_label 'a\tb\na\tc\nz\td\n' "holdout_label.tsv:3: label 'z' is only in the validation part (the last 1 lines)" -H 0.3
bad_text holdout_all 'a\tb\n' "'holdout_all.tsv': holdout_fraction 1 leaves none of its 1 lines" -H 1
printf 'en\tsome text\n' >voc.tsv
bad_text unknown_label 'en\tfine\nfr\tbonjour\n' "unknown_label.tsv:2: label 'fr' is not a class of the training set (its classes: 'en')" -v voc.tsv
expect_exit 1 "cannot open 'missing.tsv'" missing_tsv -- "$DUMP" text missing.tsv -k words -m 10 -l 4

finish
