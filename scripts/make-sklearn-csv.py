#!/usr/bin/env python3
"""Write the CSV files of the digits and diabetes examples (examples/data/) from the
copies of the two datasets that scikit-learn ships inside its package, so that the
committed CSVs can be remade and checked:

  digits-train.csv, digits-test.csv      header pixel_0..pixel_63,label (integers 0..16,
                                         label 0..9); 1,437 + 360 rows
  diabetes-train.csv, diabetes-test.csv  header age,sex,bmi,bp,s1..s6,target (raw,
                                         unscaled values); 353 + 89 rows

Both are split with sklearn.model_selection.train_test_split(test_size=0.2,
random_state=0), the digits stratified by label, so that the Keras comparison
(bench/keras_own_data.py) and dtrain see exactly the same rows.

Where the data come from (cite them if you use them):
- digits: sklearn.datasets.load_digits, scikit-learn's copy of the test part of the UCI
  "Optical Recognition of Handwritten Digits" dataset, E. Alpaydin and C. Kaynak (1998),
  UCI Machine Learning Repository, https://doi.org/10.24432/C50P49, licensed by UCI
  under CC BY 4.0.
- diabetes: sklearn.datasets.load_diabetes(scaled=False), the data of B. Efron,
  T. Hastie, I. Johnstone and R. Tibshirani, "Least Angle Regression", Annals of
  Statistics 32(2), 2004, 407-499 (https://www4.stat.ncsu.edu/~boos/var.select/diabetes.html).
  The original page states no licence; scikit-learn redistributes the file as part of
  its BSD-3-Clause package.

usage: python3 scripts/make-sklearn-csv.py [OUT_DIR]   (default examples/data)
needs scikit-learn, e.g. the anchors venv of ../shared/anchors/setup-anchors.sh.
"""
import csv
import os
import sys

from sklearn.datasets import load_diabetes, load_digits
from sklearn.model_selection import train_test_split


def fmt(v):
    # Shortest text that reads back as the same double: "16" rather than "16.0", and
    # the diabetes values exactly as scikit-learn's file gives them (4.8598, 93.2).
    r = repr(float(v))
    return r[:-2] if r.endswith(".0") else r


def write(path, header, x, y):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row, t in zip(x, y):
            w.writerow([fmt(v) for v in row] + [fmt(t)])
    print(f"{path}: {len(y)} rows, {len(header)} columns")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "examples", "data"))
    os.makedirs(out, exist_ok=True)

    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.2,
                                          random_state=0, stratify=d.target)
    header = [f"pixel_{i}" for i in range(64)] + ["label"]
    write(os.path.join(out, "digits-train.csv"), header, xtr, ytr)
    write(os.path.join(out, "digits-test.csv"), header, xte, yte)

    d = load_diabetes(scaled=False)
    xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.2, random_state=0)
    header = list(d.feature_names) + ["target"]
    write(os.path.join(out, "diabetes-train.csv"), header, xtr, ytr)
    write(os.path.join(out, "diabetes-test.csv"), header, xte, yte)


if __name__ == "__main__":
    main()
