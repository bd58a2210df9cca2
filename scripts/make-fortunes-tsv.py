#!/usr/bin/env python3
"""Make the text TSVs of examples/fortunes-language.ini ("which language is this fortune
cookie in?") from Debian's fortune packages, with Python's standard library only.

  OUT/fortunes-train.tsv, OUT/fortunes-test.tsv   one fortune per line: LANG<TAB>text

Languages and the packages they come from (the files each package installs, as dpkg -L
lists them; symlinks are skipped, since fortunes-it links its files into the top level
and fortunes-cs links cs/ into cz/):
  en  fortunes-min, fortunes      /usr/share/games/fortunes/*      (top level)
  de  fortunes-de                 /usr/share/games/fortunes/de/
  es  fortunes-es                 /usr/share/games/fortunes/es/    (not es/off/)
  it  fortunes-it                 /usr/share/games/fortunes/it/
  pt  fortunes-br                 /usr/share/games/fortunes/brasil (Brazilian Portuguese)
  cs  fortunes-cs                 /usr/share/games/fortunes/cs/    (not klasik-sk: Slovak)
  pl  fortunes-pl                 /usr/share/games/fortunes/pl/
The .dat (strfile index) and .u8 files are skipped, and so are the offensive sections
(off/ folders; the -off packages are not installed).

A fortune file holds fortunes separated by lines of a single '%'. Each file is decoded as
UTF-8 (what Debian 12 ships for all of them); a file that is not valid UTF-8 is decoded
with its language's legacy ISO-8859 charset instead, and the script says so. Then:
backspace overstriking (x BS x, _ BS x) and terminal escape sequences are removed, every
run of whitespace becomes one space, fortunes shorter than --min-chars characters or
with fewer than half their characters letters (ASCII art) are dropped, and a text that
occurs twice is kept once (its first language), so that no test line is also a training
line. Each language is then capped at the smallest language's count (or --cap), shuffled
with --seed, and split 80/20 per language, so that train and test are both balanced.

usage: python3 scripts/make-fortunes-tsv.py [OUT]   (default data/fortunes)
       [--cap N] [--min-chars N] [--seed N] [--test-fraction F]
Missing packages are installed with apt-get when run as root; otherwise the script
names them and stops.
"""
import argparse
import os
import random
import re
import subprocess
import sys
import unicodedata

ROOT = "/usr/share/games/fortunes"

# language -> (packages, folder under ROOT or a file, files to skip, legacy charset)
LANGUAGES = {
    "en": (("fortunes-min", "fortunes"), "", (), "iso-8859-1"),
    "de": (("fortunes-de",), "de", (), "iso-8859-1"),
    "es": (("fortunes-es",), "es", (), "iso-8859-1"),
    "it": (("fortunes-it",), "it", (), "iso-8859-1"),
    "pt": (("fortunes-br",), "brasil", (), "iso-8859-1"),
    "cs": (("fortunes-cs",), "cs", ("klasik-sk",), "iso-8859-2"),
    "pl": (("fortunes-pl",), "pl", (), "iso-8859-2"),
}

OVERSTRIKE = re.compile(r".\x08")
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.endswith(" installed")


def ensure_packages():
    want = [p for pkgs, _, _, _ in LANGUAGES.values() for p in pkgs]
    missing = [p for p in want if not installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit("make-fortunes-tsv: missing Debian packages; install them with\n"
                 f"  sudo apt-get install -y --no-install-recommends {' '.join(missing)}")
    print(f"installing {' '.join(missing)}", flush=True)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
                   check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def package_files(lang):
    """The fortune text files of one language: regular files its packages installed."""
    pkgs, where, skip, _ = LANGUAGES[lang]
    top = os.path.join(ROOT, where) if where else ROOT
    out = []
    for pkg in pkgs:
        listing = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True,
                                 check=True).stdout.split("\n")
        for path in listing:
            if not path.startswith(ROOT + "/") or os.path.islink(path) or not os.path.isfile(path):
                continue
            if path.endswith((".dat", ".u8")) or "/off/" in path:
                continue
            if os.path.basename(path) in skip:
                continue
            if where == "":
                if os.path.dirname(path) != ROOT:  # English: the top level only
                    continue
            elif path != top and not path.startswith(top + "/"):
                continue
            out.append(path)
    return sorted(set(out))


def decode(path, legacy):
    data = open(path, "rb").read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        print(f"{path}: not UTF-8, decoded as {legacy}")
        return data.decode(legacy)


def clean(text):
    text = ESCAPE.sub("", OVERSTRIKE.sub("", text))
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return " ".join(text.split())


def is_prose(text):
    chars = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in chars) >= 0.5 * len(chars)


def fortunes(path, legacy):
    block = []
    for line in decode(path, legacy).split("\n"):
        if line.rstrip("\r") == "%":
            yield clean("\n".join(block))
            block = []
        else:
            block.append(line)
    yield clean("\n".join(block))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?", default="data/fortunes")
    p.add_argument("--cap", type=int, default=0,
                   help="fortunes per language (default: the smallest language's count)")
    p.add_argument("--min-chars", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--test-fraction", type=float, default=0.2)
    a = p.parse_args()

    ensure_packages()
    seen = set()
    by_lang = {}
    for lang, (_, _, _, legacy) in LANGUAGES.items():
        texts = []
        files = package_files(lang)
        for path in files:
            for t in fortunes(path, legacy):
                if len(t) >= a.min_chars and is_prose(t) and t not in seen:
                    seen.add(t)
                    texts.append(t)
        by_lang[lang] = texts
        print(f"{lang}: {len(texts)} fortunes from {len(files)} files")
        if not texts:
            sys.exit(f"make-fortunes-tsv: no {lang} fortunes found")

    cap = a.cap or min(len(t) for t in by_lang.values())
    rng = random.Random(a.seed)
    train, test = [], []
    for lang, texts in by_lang.items():
        texts = list(texts)
        rng.shuffle(texts)
        texts = texts[:cap]
        n_test = round(len(texts) * a.test_fraction)
        test += [(lang, t) for t in texts[:n_test]]
        train += [(lang, t) for t in texts[n_test:]]
    rng.shuffle(train)
    rng.shuffle(test)

    os.makedirs(a.out, exist_ok=True)
    for name, rows in (("fortunes-train.tsv", train), ("fortunes-test.tsv", test)):
        path = os.path.join(a.out, name)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for lang, t in rows:
                f.write(f"{lang}\t{t}\n")
        counts = {lang: sum(1 for l, _ in rows if l == lang) for lang in LANGUAGES}
        print(f"{path}: {len(rows)} lines, " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
