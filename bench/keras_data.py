#!/usr/bin/env python3
"""Keras' input pipeline on an image folder, for bench/bench_data.sh: the rate at which
keras.utils.image_dataset_from_directory + tf.data deliver augmented batches with one
thread, nothing training. The augmentation matches bench_data.sh's dtrain side: scale by
1/255, a horizontal flip, a shift of up to 2 pixels (RandomTranslation with zero fill,
where dtrain pads by 2 and crops) and a brightness change of up to 0.1.

Prints "keras listing_s=L epoch_s=E cpu_s=C samples=N samples_per_s=R": L the time
image_dataset_from_directory takes to list the folder, E one epoch of iterating after a
few warm-up batches (which trace the map function), C the process's CPU time in that
epoch (all its threads: more than E means more than one core was used).

usage: keras_data.py DIR   (run with the anchors' venv: ../shared/anchors/setup-anchors.sh)
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras  # noqa: E402


def main():
    folder = sys.argv[1]
    t0 = time.perf_counter()
    ds = keras.utils.image_dataset_from_directory(
        folder, color_mode="grayscale", image_size=(28, 28), batch_size=64, shuffle=True,
        seed=1, verbose=False)
    listing = time.perf_counter() - t0
    augment = keras.Sequential([
        keras.layers.Rescaling(1 / 255),
        keras.layers.RandomFlip("horizontal", seed=1),
        keras.layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant", seed=2),
        keras.layers.RandomBrightness(0.1, value_range=(0, 1), seed=3),
    ])
    ds = ds.map(lambda x, y: (augment(x, training=True), y)).prefetch(tf.data.AUTOTUNE)
    opts = tf.data.Options()
    opts.threading.private_threadpool_size = 1
    opts.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(opts)
    for _ in ds.take(3):
        pass
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    epoch, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"keras listing_s={listing:.3f} epoch_s={epoch:.3f} cpu_s={cpu:.3f} samples={n} "
          f"samples_per_s={n / epoch:.0f}")


if __name__ == "__main__":
    main()
