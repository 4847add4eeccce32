"""Steady-state training throughput: the pipeline's training path against a
plain ``model.fit`` on in-memory arrays with batch 64 (the article's code).

Both run in this one process on the same model (recompiled, so each path
traces its own training function), on the same images; the first epoch of
each (tracing, warm-up) is left out and the rest are timed. Prints images per
second for both and their ratio (pipeline / plain): the pipeline must not be
slower (ratio >= 1.0).

    python benchmarks/train_throughput.py [--images 20000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import stages  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf  # noqa: E402

from stages.common import load_params  # noqa: E402
from stages.mnist import load_split, scale_images  # noqa: E402
from stages.networks import build_model, variant_from_params  # noqa: E402
from stages.params import study_variants, train_settings  # noqa: E402
from stages.train import compile_model, set_determinism, training_dataset  # noqa: E402


class EpochTimes(tf.keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def plain_fit(model, images, labels, settings, epochs: int, clock) -> None:
    """The article's code: compile, then fit on in-memory arrays at batch 64."""
    model.compile(optimizer=tf.keras.optimizers.Adam(settings.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, batch_size=64, epochs=epochs, callbacks=[clock], verbose=0)


def pipeline_fit(model, images, labels, settings, epochs: int, clock) -> None:
    """The train stage's path: its compile settings and input pipeline."""
    compile_model(model, settings)
    model.fit(training_dataset(images, labels, settings.batch_size, 0), epochs=epochs, callbacks=[clock], verbose=0)


def steady_images_per_s(fit, model, images, labels, settings, epochs: int) -> float:
    clock = EpochTimes()
    fit(model, images, labels, settings, epochs, clock)
    timed = clock.seconds[1:]
    return len(images) * len(timed) / sum(timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/mnist")
    parser.add_argument("--images", type=int, default=20000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per path; the first is not timed")
    args = parser.parse_args()
    params = load_params(args.params)
    settings = train_settings(params)
    x, y = load_split(args.data, "train", args.images)
    print(f"{len(x)} images, {args.epochs - 1} timed epochs per path, "
          f"pipeline: tf.data + steps_per_execution={settings.steps_per_execution}")
    print(f"{'variant':<10} {'plain img/s':>12} {'pipeline img/s':>15} {'ratio':>7}")
    for name in study_variants(params):
        variant = variant_from_params(name, params["variants"])
        images = scale_images(x, variant.input_range)
        set_determinism(0)
        model = build_model(variant)
        plain_rate = steady_images_per_s(plain_fit, model, images, y, settings, args.epochs)
        pipeline_rate = steady_images_per_s(pipeline_fit, model, images, y, settings, args.epochs)
        print(f"{name:<10} {plain_rate:>12.0f} {pipeline_rate:>15.0f} {pipeline_rate / plain_rate:>7.2f}")


if __name__ == "__main__":
    main()
