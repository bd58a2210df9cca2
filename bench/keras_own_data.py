"""Keras 3 (TensorFlow, CPU) anchor for the "your own data" examples: the models of
examples/digits-csv.ini, examples/diabetes-regression.ini and
examples/fortunes-language.ini, trained on the same CSV/TSV files, with the same
validation split (the last validation_split of the training file, as Keras' fit and
dtrain take it), optimizer, learning rate, batch size and epochs. Prints, per run, the
test accuracy (digits, fortunes) or test MAE (diabetes) and the wall time of the run
(preprocessing, fit and evaluate; not the imports).

usage: VENV/bin/python bench/keras_own_data.py [digits|diabetes|fortunes|all ...]
           [--threads 1] [--runs 1] [--seed 1] [--fortunes DIR] [--verbose]
VENV: the anchors venv of ../shared/anchors/setup-anchors.sh (Keras 3 on TensorFlow).
The fortunes TSVs come from scripts/make-fortunes-tsv.py (default DIR data/fortunes).
"""
import argparse
import csv
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "examples", "data")

p = argparse.ArgumentParser()
p.add_argument("which", nargs="*", help="digits, diabetes, fortunes or all (the default)")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--runs", type=int, default=1, help="runs per example (seeds seed, seed+1, ...)")
p.add_argument("--seed", type=int, default=1)
p.add_argument("--fortunes", default="data/fortunes", help="folder of the fortunes TSVs")
p.add_argument("--text-standardize", default="lower_and_strip_punctuation",
               choices=["lower_and_strip_punctuation", "lower", "strip_punctuation", "none"],
               help="TextVectorization's standardize for the fortunes (what dtrain's tokens do)")
p.add_argument("--verbose", action="store_true", help="Keras' per-epoch lines")
a = p.parse_args()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(a.threads)
tf.config.threading.set_inter_op_parallelism_threads(a.threads)
L = keras.layers


def read_csv(path, target):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, values = rows[0], np.array(rows[1:], dtype=np.float64)
    t = header.index(target)
    x = np.delete(values, t, axis=1).astype(np.float32)
    return x, values[:, t]


def read_tsv(path):
    labels, texts = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            label, text = line.rstrip("\n").split("\t", 1)
            labels.append(label)
            texts.append(text)
    return labels, texts


def tail_split(x, y, fraction):
    """Keras' validation_split: the last fraction of the samples, before any shuffling."""
    n_val = int(len(y) * fraction)
    n = len(y) - n_val
    return (x[:n], y[:n]), (x[n:], y[n:])


def fit(model, train, val, epochs, batch):
    model.fit(train[0], train[1], validation_data=val, epochs=epochs, batch_size=batch,
              shuffle=True, verbose=2 if a.verbose else 0)


def digits():
    """examples/digits-csv.ini: raw pixels 0..16 (scale = none), dense 64-64-10, Adam."""
    xtr, ytr = read_csv(os.path.join(DATA, "digits-train.csv"), "label")
    xte, yte = read_csv(os.path.join(DATA, "digits-test.csv"), "label")
    train, val = tail_split(xtr, ytr.astype(np.int64), 0.1)
    m = keras.Sequential([keras.Input((64,)), L.Dense(64, "relu"), L.Dense(64, "relu"),
                          L.Dense(10)])
    m.compile(optimizer=keras.optimizers.Adam(1e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    fit(m, train, val, epochs=30, batch=32)
    return "test_accuracy", m.evaluate(xte, yte.astype(np.int64), verbose=0)[1]


def diabetes():
    """examples/diabetes-regression.ini: features standardized with the mean and standard
    deviation of the training part (after the validation split), dense 64-64-1, MSE, Adam."""
    xtr, ytr = read_csv(os.path.join(DATA, "diabetes-train.csv"), "target")
    xte, yte = read_csv(os.path.join(DATA, "diabetes-test.csv"), "target")
    train, val = tail_split(xtr, ytr.astype(np.float32), 0.1)
    norm = L.Normalization()
    norm.adapt(train[0])
    m = keras.Sequential([keras.Input((10,)), norm, L.Dense(64, "relu"), L.Dense(64, "relu"),
                          L.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    fit(m, train, val, epochs=30, batch=32)
    return "test_mae", m.evaluate(xte, yte.astype(np.float32), verbose=0)[1]


def fortunes():
    """examples/fortunes-language.ini: characters (lowercased, ASCII punctuation
    stripped: TextVectorization's default standardize, or --text-standardize), a
    vocabulary of 100 (padding and [UNK] included) from the training part, sequences of
    200, embedding 32 + conv1d 128x5 relu + global max pooling + dense 7, Adam."""
    ltr, ttr = read_tsv(os.path.join(a.fortunes, "fortunes-train.tsv"))
    lte, tte = read_tsv(os.path.join(a.fortunes, "fortunes-test.tsv"))
    classes = sorted(set(ltr))  # class ids in sorted order, as dtrain numbers them
    ytr = np.array([classes.index(s) for s in ltr], dtype=np.int64)
    yte = np.array([classes.index(s) for s in lte], dtype=np.int64)
    (ttr_fit, ytr_fit), (tval, yval) = tail_split(np.array(ttr, dtype=object), ytr, 0.1)
    std = None if a.text_standardize == "none" else a.text_standardize
    vec = L.TextVectorization(max_tokens=100, standardize=std, split="character",
                              output_mode="int", output_sequence_length=200)
    vec.adapt(list(ttr_fit))
    def ids(texts):
        return vec(np.array(list(texts), dtype=object)).numpy().astype(np.int32)
    train, val = (ids(ttr_fit), ytr_fit), (ids(tval), yval)
    m = keras.Sequential([keras.Input((200,)), L.Embedding(100, 32),
                          L.Conv1D(128, 5, activation="relu"), L.GlobalMaxPooling1D(),
                          L.Dense(len(classes))])
    m.compile(optimizer=keras.optimizers.Adam(2e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    fit(m, train, val, epochs=5, batch=64)
    return "test_accuracy", m.evaluate(ids(tte), yte, verbose=0)[1]


RUNS = {"digits": digits, "diabetes": diabetes, "fortunes": fortunes}


def main():
    which = list(RUNS) if not a.which or "all" in a.which else a.which
    for name in which:
        if name not in RUNS:
            p.error(f"unknown example {name!r}: digits, diabetes, fortunes or all")
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, threads {a.threads}")
    for name in which:
        for r in range(a.runs):
            seed = a.seed + r
            keras.utils.set_random_seed(seed)
            t0 = time.perf_counter()
            metric, value = RUNS[name]()
            dt = time.perf_counter() - t0
            print(f"{name} seed {seed}: {metric} {value:.4f} time {dt:.1f}s", flush=True)


if __name__ == "__main__":
    main()
