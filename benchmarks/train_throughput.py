"""Steady-state training throughput: the pipeline's training path against a
plain ``model.fit`` on in-memory arrays with batch 64 (the article's code).

Both run in this one process on the same model (recompiled, so each path
traces its own training function), on the same images. Two measures: steady
state (the first epoch, with tracing and warm-up, left out) and the whole
fit call (setup, array conversion and tracing included, as a user waits for
it). Prints images per second for both paths and their ratio (pipeline /
plain): the pipeline must not be slower (ratio >= 1.0).

    python benchmarks/train_throughput.py [--images 60000] [--epochs 3]
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


def images_per_s(fit, model, images, labels, settings, epochs: int) -> tuple[float, float]:
    """Steady state (every epoch but the first, inside one fit call) and
    whole call (all epochs over the call's wall time, setup and tracing
    included), in training images per second."""
    clock = EpochTimes()
    start = time.perf_counter()
    fit(model, images, labels, settings, epochs, clock)
    whole_s = time.perf_counter() - start
    timed = clock.seconds[1:]
    return len(images) * len(timed) / sum(timed), len(images) * epochs / whole_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/mnist")
    parser.add_argument("--images", type=int, default=60000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per path; the first is not timed")
    args = parser.parse_args()
    params = load_params(args.params)
    settings = train_settings(params)
    x, y = load_split(args.data, "train", args.images)
    print(f"{len(x)} images, {args.epochs - 1} timed epochs per path, "
          f"pipeline: tf.data + steps_per_execution={settings.steps_per_execution}")
    print(f"{'variant':<10} {'measure':<12} {'plain img/s':>12} {'pipeline img/s':>15} {'ratio':>7}")
    for name in study_variants(params):
        variant = variant_from_params(name, params["variants"])
        images = scale_images(x, variant.input_range)
        set_determinism(0)
        model = build_model(variant)
        plain = images_per_s(plain_fit, model, images, y, settings, args.epochs)
        pipeline = images_per_s(pipeline_fit, model, images, y, settings, args.epochs)
        for measure, plain_rate, pipeline_rate in zip(("steady", "whole call"), plain, pipeline, strict=True):
            print(f"{name:<10} {measure:<12} {plain_rate:>12.0f} {pipeline_rate:>15.0f} "
                  f"{pipeline_rate / plain_rate:>7.2f}")


if __name__ == "__main__":
    main()
