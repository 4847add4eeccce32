"""Stage `train`: train one precision variant with one seed on one dataset.

The variant's recipe (:mod:`stages.lib.training.recipes`; the article's by default:
Adam at a constant 0.001, batch 64, 6 epochs) minimises sparse categorical
cross-entropy on pixels scaled onto the variant's input range. The seed sets
every random source and TensorFlow's op determinism is on, so a rerun of the
same (dataset, variant, seed) reproduces its test accuracy and loss bit for
bit. The held-out validation images (``data.validation_images`` of the
training images, the same for every run) are left out of training: they
make the study's choices. The test images confirm, evaluated once, at the
end.

Writes the trained model (``model.keras``, reloadable once ``larq`` is
imported) and a DVCLive folder: per-epoch loss and accuracy on the training
and validation images, and the run's final metrics (validation accuracy and
loss, test accuracy and loss on the whole test split, the accuracy of always answering the test split's most
frequent class, training wall time, training images per second) and
``predictions.csv``, every test image's label and the model's answer. Both
folders appear only when the run has finished. A run whose loss becomes NaN or
infinite stops with one line and writes nothing: a diverged run is an
error, never a result.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf
from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli
from stages.lib.data.datasets import dataset, load_split, load_training, scale_images
from stages.lib.training.networks import build_model
from stages.lib.training.variants import Variant, variant_from_params
from stages.lib.params import TrainSettings, Validation, data_limits, train_settings, validation_settings
from stages.lib.training.recipes import Recipe, make_optimizer, recipe_from_params
from stages.lib.spec import write_run_spec
from stages.lib.training.trained import EVAL_BATCH_SIZE, MODEL_FILE, without_autograph

PREDICTIONS_FILE = "predictions.csv"


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's ops
    deterministic."""

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def compile_model(model, recipe: Recipe, settings: TrainSettings, steps_per_epoch: int) -> None:
    model.compile(
        optimizer=make_optimizer(recipe, steps_per_epoch),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=settings.steps_per_execution,
    )


def training_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """The training input pipeline: the arrays held as tensors, reshuffled
    every pass from ``seed``, batched, repeated and prefetched. Repeated, it
    is read through one iterator for the whole fit (with ``steps_per_epoch``
    one pass a epoch): Keras otherwise makes a new iterator each epoch, and
    that stalled 8-9 s at some epoch boundaries (docs/testing.md)."""

    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )


class TrainingClock(tf.keras.callbacks.Callback):
    """Times training, leaving out the time spent evaluating on the
    validation images at the end of each epoch."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.eval_s = 0.0

    def on_test_begin(self, logs=None):
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        self.eval_s += time.perf_counter() - self._test_start

    def on_train_end(self, logs=None):
        self.train_s = time.perf_counter() - self.start - self.eval_s


class DivergenceGuard(tf.keras.callbacks.Callback):
    """Stops the run, with one line naming it, as soon as its training loss
    is NaN or infinite (checked after every compiled call of
    ``steps_per_execution`` steps, and on the validation images after each epoch)."""

    def __init__(self, run: str, recipe: str = "article"):
        super().__init__()
        self.run, self.recipe = run, recipe
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, "loss", f"training loss in epoch {self.epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, "loss", f"training loss of epoch {epoch + 1}")
        self._check(logs, "val_loss", f"validation loss after epoch {epoch + 1}")

    def _check(self, logs, key: str, what: str) -> None:
        value = (logs or {}).get(key)
        if value is not None and not math.isfinite(float(value)):
            raise StudyError(
                f"{self.run} diverged: its {what} is {float(value)}; nothing was written. "
                f"Lower recipes.{self.recipe}.learning_rate or change the variant's quantizers"
            )


class EpochLog(tf.keras.callbacks.Callback):
    """One log line per epoch, for logs that are not a terminal (Keras's
    progress bar would write one line of thousands of characters)."""

    def __init__(self, run: str, epochs: int):
        super().__init__()
        self.run, self.epochs = run, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        log.info("%s epoch %d/%d: loss %.4f, accuracy %.4f; validation loss %.4f, accuracy %.4f (%.1f s)",
                 self.run, epoch + 1, self.epochs, logs.get("loss", math.nan), logs.get("accuracy", math.nan),
                 logs.get("val_loss", math.nan), logs.get("val_accuracy", math.nan),
                 time.perf_counter() - self._start)


@dataclass(frozen=True)
class RunResult:
    validation_accuracy: float
    validation_loss: float
    test_accuracy: float
    test_loss: float
    chance_accuracy: float
    train_time_s: float
    train_images_per_s: float
    train_images: int
    validation_images: int
    test_images: int
    epochs: int


def train_run(
    variant: Variant,
    recipe: Recipe,
    seed: int,
    settings: TrainSettings,
    data_dir: str | Path,
    model_dir: str | Path,
    live_dir: str | Path,
    train_limit: int | None = None,
    test_limit: int | None = None,
    verbose: int | None = None,
    dataset_name: str = "mnist",
    record: dict | None = None,
    validation: Validation = Validation(5000, 0),
) -> RunResult:
    """Train ``variant`` with ``recipe`` and ``seed`` on the dataset in
    ``data_dir`` (``dataset_name`` names it in the logs); write the model to ``model_dir`` and
    the DVCLive logs to ``live_dir``, each whole or not at all. ``verbose``
    is Keras's: None shows its progress bar only on a terminal. ``record``,
    the slice of params.yaml the run was given, is kept beside its model and
    its metrics (:data:`stages.lib.spec.RUN_SPEC_FILE`). ``validation``:
    the training images held out (:func:`stages.lib.data.datasets.load_training`)."""
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    x_train, y_train, x_val, y_val = load_training(data_dir, train_limit, validation.images, validation.seed)
    x_test, y_test = load_split(data_dir, "test", test_limit)
    x_train, x_val, x_test = (scale_images(x, variant.input_range) for x in (x_train, x_val, x_test))
    run = f"{dataset_name} {variant.name} seed {seed}"
    log.info(
        "training %s with recipe %s: %d training, %d validation and %d test images, %d epochs of batch %d",
        run, recipe.name, len(x_train), len(x_val), len(x_test), recipe.epochs, recipe.batch_size,
    )
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 0

    set_determinism(seed)
    model = without_autograph(build_model(variant, recipe.batchnorm_momentum))
    steps_per_epoch = math.ceil(len(x_train) / recipe.batch_size)
    compile_model(model, recipe, settings, steps_per_epoch=steps_per_epoch)
    clock = TrainingClock()
    with atomic_directory(model_dir) as model_tmp, atomic_directory(live_dir) as live_tmp:
        with Live(str(live_tmp), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            model.fit(
                training_dataset(x_train, y_train, recipe.batch_size, seed),
                epochs=recipe.epochs,
                steps_per_epoch=steps_per_epoch,
                validation_data=(x_val, y_val),
                validation_batch_size=EVAL_BATCH_SIZE,
                callbacks=[clock, DivergenceGuard(run, recipe.name), EpochLog(run, recipe.epochs),
                           DVCLiveCallback(live=live)],
                verbose=verbose,
            )
            validation_loss, validation_accuracy = model.evaluate(x_val, y_val, batch_size=EVAL_BATCH_SIZE,
                                                                  verbose=0)
            test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=EVAL_BATCH_SIZE, verbose=0)
            if not math.isfinite(test_loss):
                raise StudyError(f"{run} diverged: its test loss is {test_loss}; nothing was written")
            result = RunResult(
                validation_accuracy=float(validation_accuracy),
                validation_loss=float(validation_loss),
                test_accuracy=float(test_accuracy),
                test_loss=float(test_loss),
                chance_accuracy=float(np.bincount(y_test).max() / len(y_test)),
                train_time_s=clock.train_s,
                train_images_per_s=len(x_train) * recipe.epochs / clock.train_s,
                train_images=len(x_train),
                validation_images=len(x_val),
                test_images=len(x_test),
                epochs=recipe.epochs,
            )
            for name, value in vars(result).items():
                live.log_metric(name, value, plot=False)
        # every test image's answer: per-class figures and the per-image paired test read them
        predicted = model.predict(x_test, batch_size=EVAL_BATCH_SIZE, verbose=0).argmax(axis=1)
        write_predictions(live_tmp / PREDICTIONS_FILE, y_test, predicted)
        model.save(model_tmp / MODEL_FILE)
        if record is not None:
            write_run_spec(record, model_tmp, live_tmp)
    log.info(
        "%s: test accuracy %.4f, loss %.4f, %.1f s of training (%.0f images/s)",
        run, result.test_accuracy, result.test_loss, result.train_time_s, result.train_images_per_s,
    )
    return result


def write_predictions(path: Path, labels: np.ndarray, predicted: np.ndarray) -> None:
    """One row per test image, in the test split's order: its label and the
    class the model answered."""
    import pandas as pd

    pd.DataFrame({"label": labels.astype(int), "predicted": predicted.astype(int)}).to_csv(path, index=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True, help="a variant named in study.variants")
    parser.add_argument("--seed", required=True, help="a seed from study.seeds")
    parser.add_argument("--params", required=True,
                        help="the slice of params.yaml it reads (data/spec/training/<variant>.json)")
    parser.add_argument("--dataset", default="mnist", help="a dataset of study.datasets")
    parser.add_argument("--data", default="data/dataset/mnist/idx", help="folder of the dataset's verified IDX files")
    parser.add_argument("--model-out", required=True, help="folder for the trained model")
    parser.add_argument("--live-out", required=True, help="DVCLive folder for the run's metrics and curves")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    spec = dataset(args.dataset)
    variant = variant_from_params(args.variant, params.get("variants"))
    try:
        seed = int(args.seed)
    except ValueError:
        raise StudyError(f"seed {args.seed!r} is not a whole number") from None
    train_limit, test_limit = data_limits(params)
    recipe = recipe_from_params(variant.recipe, params.get("recipes"), where=f"variants.{variant.name}.recipe")
    train_run(
        variant, recipe, seed, train_settings(params), args.data, args.model_out, args.live_out,
        train_limit=train_limit, test_limit=test_limit, dataset_name=spec.name, record=params,
        validation=validation_settings(params),
    )


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
