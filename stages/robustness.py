"""Stage `robustness` (and `robustness_int8`, `robustness_int4`): evaluate one deployed network
on every corrupted copy of its dataset's test split.

A trained run (``robustness@<run>``): Keras's accuracy and every image's
answer, for the clean test images and each corruption (the
``robustness.test_images`` drawn by ``robustness.seed``, the same for every
run, or all), and its deployed
LCE file's answers under the interpreter option set the headline speed
uses: its agreement with Keras on inputs far from the training data, where
a converted binary network's fused thresholds could disagree.

A post-training form (``robustness_int8@<run>``, with ``--form`` and ``--source``):
the form's own answers on every image are its accuracy, and its agreement
is with the Keras model it was converted from, whose answers the source
run's evaluation kept.

Evaluation only: nothing is retrained or converted again. The loop over
corruptions is :func:`stages.lib.data.robustness.evaluate`; the deployed file
is checked against its record before it is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import StudyError, load_params, run_cli
from stages.lib.data.datasets import load_split, scale_images
from stages.lib.data.robustness import THREADS, evaluate, image_subset, read_manifest, source_answers
from stages.lib.settings.robustness import evaluated_images
from stages.lib.forms.deployed import answers, command_line, read, trained_run
from stages.lib.forms.registry import BY_NAME, Form
from stages.lib.forms.runtime import TFLITE_FILE, interpreter
from stages.lib.params import headline_options
from stages.lib.training.trained import load_model

# A trained run's LCE file is checked on the first images of each
# corruption: LCE's interpreter answers one image per call (about 40 us
# here), and on every image it would double the stage's time, past what the
# study allows these stages. A form of its own answers every image.
DEPLOYED_CHECK_IMAGES = 2000
BATCH = 2500


def _deployed(deployed_dir: str | Path, record_dir: str | Path, stage: str, options: str, runtime: str = "lce"):
    flatbuffer, _ = read(deployed_dir, record_dir, stage)
    return interpreter(flatbuffer, THREADS, options, source=str(Path(deployed_dir) / TFLITE_FILE), runtime=runtime)


def evaluate_run(model_dir: str | Path, deployed_dir: str | Path, record_dir: str | Path, data_dir: str | Path,
                 corrupted_dir: str | Path, input_range: tuple[float, float], options: str, out_dir: str | Path,
                 test_limit: int | None = None, test_images: int | None = None, seed: int = 0) -> dict[str, Any]:
    """One trained run (Keras) and its LCE file on every corruption, on
    ``test_images`` of the test images drawn by ``seed`` (None: all)."""
    import tensorflow as tf

    lite = _deployed(deployed_dir, record_dir, "deploy", options)
    model = load_model(model_dir)
    x_test, y_test = load_split(data_dir, "test", test_limit)
    # The model called directly in one traced function: half the time of
    # `predict`, which sets up a dataset on every call (36 calls a run).
    infer = tf.function(lambda batch: model(batch, training=False), autograph=False, reduce_retracing=True)

    def answer(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = scale_images(pixels, input_range)
        keras = np.concatenate([infer(images[start:start + BATCH]).numpy().argmax(axis=1)
                                for start in range(0, len(images), BATCH)])
        return keras, answers(lite, images[:DEPLOYED_CHECK_IMAGES])

    return evaluate(corrupted_dir, x_test, y_test, answer, lambda name, keras: keras, options, out_dir, str(model_dir),
                    image_subset(len(y_test), test_images, seed))


def evaluate_form(deployed_dir: str | Path, record_dir: str | Path, source_dir: str | Path, data_dir: str | Path,
                  corrupted_dir: str | Path, input_range: tuple[float, float], options: str, out_dir: str | Path,
                  form: Form, test_limit: int | None = None, test_images: int | None = None,
                  seed: int = 0) -> dict[str, Any]:
    """A post-training ``form``'s file on every corruption (run by its
    runtime), its agreement with the Keras answers its source run's
    evaluation kept in ``source_dir`` (on the same test images)."""
    lite = _deployed(deployed_dir, record_dir, form.stage, options, form.runtime)
    x_test, y_test = load_split(data_dir, "test", test_limit)
    chosen = image_subset(len(y_test), test_images, seed)
    keras = source_answers(Path(source_dir), list(read_manifest(corrupted_dir)["corruptions"]), chosen)

    def answer(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mine = answers(lite, scale_images(pixels, input_range))
        return mine, mine

    return evaluate(corrupted_dir, x_test, y_test, answer, lambda name, _: keras[name].to_numpy(), options, out_dir,
                    str(deployed_dir), chosen)


def main(argv: Sequence[str] | None = None) -> None:
    args = command_line(
        "python -m stages.robustness", __doc__, argv,
        ("--corrupted", True, "folder of the dataset's corrupted test images"),
        ("--deployed", True, "folder of the deployed .tflite file"),
        ("--record", True, "folder of the deployed file's record (deploy.json)"),
        ("--form", False, "for a post-training form: its name (" + ", ".join(BY_NAME) + ")"),
        ("--source", False, "for a post-training form: the evaluation folder of the run it was converted "
                            "from, whose Keras answers it is compared with"),
        ("--out", True, "folder for robustness.json and predictions.csv"))
    if (args.form is None) != (args.source is None):
        raise StudyError("--form and --source go together: a post-training form is compared with its source run")
    if args.form is not None and args.form not in BY_NAME:
        raise StudyError(f"--form {args.form} is not a post-training form: one of {', '.join(BY_NAME)}")
    params = load_params(args.params)
    options = headline_options(params)
    test_images, seed = evaluated_images(params)
    variant, _, test_limit, _ = trained_run(args.model, args.variant)
    if args.form is not None:
        evaluate_form(args.deployed, args.record, args.source, args.data, args.corrupted, variant.input_range,
                      options, args.out, BY_NAME[args.form], test_limit=test_limit, test_images=test_images,
                      seed=seed)
    else:
        evaluate_run(args.model, args.deployed, args.record, args.data, args.corrupted, variant.input_range, options,
                     args.out, test_limit=test_limit, test_images=test_images, seed=seed)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
