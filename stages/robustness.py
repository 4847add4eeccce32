"""Stage `robustness`: evaluate one trained run on every corrupted copy of
its dataset's test split, and check its deployed ``.tflite`` there too.

For the clean test images and each corruption it records Keras's accuracy
and every image's answer, and the deployed model's answers under the
interpreter option set the headline speed uses: its agreement with Keras
on inputs far from the training data, where a converted binary network's
fused thresholds could disagree. Evaluation only: nothing is retrained.
The evaluation loop is :func:`stages.lib.data.robustness.evaluate`, shared with
`robustness_int8`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import load_params, run_cli
from stages.lib.data.datasets import load_split, scale_images
from stages.lib.forms.deployed import answers, read
from stages.lib.forms.lce import TFLITE_FILE, interpreter
from stages.lib.training.networks import variant_from_params
from stages.lib.params import data_limits, headline_options
from stages.lib.data.robustness import THREADS, evaluate
from stages.lib.spec import run_spec_path
from stages.lib.training.trained import load_model

# The deployed model is checked on the first images of each corruption:
# LCE's interpreter answers one image per call (about 40 us here), and on
# every image it would double the stage's time, past what the study allows
# these stages.
DEPLOYED_CHECK_IMAGES = 2000
BATCH = 2500


def evaluate_run(model_dir: str | Path, deployed_dir: str | Path, record_dir: str | Path, data_dir: str | Path,
                 corrupted_dir: str | Path, input_range: tuple[float, float], options: str, out_dir: str | Path,
                 test_limit: int | None = None) -> dict[str, Any]:
    """One trained run (Keras) and its deployed file (checked against its
    record first) on every corruption; see :func:`stages.lib.data.robustness.evaluate`."""
    import tensorflow as tf

    flatbuffer, _ = read(deployed_dir, record_dir, "deploy")
    model = load_model(model_dir)
    lite = interpreter(flatbuffer, THREADS, options, source=str(Path(deployed_dir) / TFLITE_FILE))
    x_test, y_test = load_split(data_dir, "test", test_limit)
    # The model called directly in one traced function: half the time of
    # `predict`, which sets up a dataset on every call (36 calls a run).
    infer = tf.function(lambda batch: model(batch, training=False), autograph=False, reduce_retracing=True)

    def answer(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = scale_images(pixels, input_range)
        keras = np.concatenate([infer(images[start:start + BATCH]).numpy().argmax(axis=1)
                                for start in range(0, len(images), BATCH)])
        return keras, answers(lite, images[:DEPLOYED_CHECK_IMAGES])

    return evaluate(corrupted_dir, x_test, y_test, answer, lambda name, keras: keras, options, out_dir, str(model_dir))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.robustness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--params", required=True, help="the slice of params.yaml it reads (data/spec/robustness.json)")
    parser.add_argument("--data", required=True, help="folder of the run's dataset")
    parser.add_argument("--corrupted", required=True, help="folder of the dataset's corrupted test images")
    parser.add_argument("--model", required=True, help="folder of the trained model")
    parser.add_argument("--deployed", required=True, help="folder of the run's .tflite")
    parser.add_argument("--record", required=True, help="folder of the deployed file's record (deploy.json)")
    parser.add_argument("--out", required=True, help="folder for robustness.json and predictions.csv")
    args = parser.parse_args(argv)
    options = headline_options(load_params(args.params))
    record = load_params(run_spec_path(args.model))
    variant = variant_from_params(args.variant, record.get("variants"))
    _, test_limit = data_limits(record)
    evaluate_run(args.model, args.deployed, args.record, args.data, args.corrupted, variant.input_range, options,
                 args.out, test_limit=test_limit)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
