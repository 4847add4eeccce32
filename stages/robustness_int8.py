"""Stage `robustness_int8`: evaluate one run's int8 model (see `quantize`)
on every corrupted copy of its dataset's test split, as `robustness`
evaluates the trained runs, so that the tables compare it with them.

The int8 model is a deployed network of its own: its answers on every image
(under the interpreter option set the headline speed uses) are its accuracy,
and its agreement is with the Keras model it was converted from, whose
answers the source run's `robustness` stage kept. Nothing is retrained or
converted again. The evaluation loop is
:func:`stages.lib.data.robustness.evaluate`, shared with `robustness`.
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
from stages.lib.data.robustness import THREADS, evaluate, read_manifest, source_answers
from stages.lib.spec import run_spec_path


def evaluate_int8(deployed_dir: str | Path, record_dir: str | Path, source_dir: str | Path, data_dir: str | Path,
                  corrupted_dir: str | Path, input_range: tuple[float, float], options: str, out_dir: str | Path,
                  test_limit: int | None = None) -> dict[str, Any]:
    """One int8 file (checked against its record first) on every
    corruption, its agreement with the Keras answers its source run's
    evaluation kept in ``source_dir``; see :func:`stages.lib.data.robustness.evaluate`."""
    flatbuffer, _ = read(deployed_dir, record_dir, "quantize")
    lite = interpreter(flatbuffer, THREADS, options, source=str(Path(deployed_dir) / TFLITE_FILE))
    x_test, y_test = load_split(data_dir, "test", test_limit)
    keras = source_answers(Path(source_dir), list(read_manifest(corrupted_dir)["corruptions"]), len(y_test))

    def answer(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mine = answers(lite, scale_images(pixels, input_range))
        return mine, mine

    return evaluate(corrupted_dir, x_test, y_test, answer, lambda name, _: keras[name].to_numpy(), options, out_dir,
                    str(deployed_dir))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.robustness_int8", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True, help="the variant the int8 model was converted from")
    parser.add_argument("--params", required=True, help="the slice of params.yaml it reads (data/spec/robustness.json)")
    parser.add_argument("--data", required=True, help="folder of the run's dataset")
    parser.add_argument("--corrupted", required=True, help="folder of the dataset's corrupted test images")
    parser.add_argument("--model", required=True, help="folder of the trained model (for its record)")
    parser.add_argument("--deployed", required=True, help="folder of the int8 .tflite")
    parser.add_argument("--record", required=True, help="folder of the int8 file's record (deploy.json)")
    parser.add_argument("--source", required=True, help="the source run's evaluation folder (its Keras answers)")
    parser.add_argument("--out", required=True, help="folder for robustness.json and predictions.csv")
    args = parser.parse_args(argv)
    options = headline_options(load_params(args.params))
    record = load_params(run_spec_path(args.model))
    variant = variant_from_params(args.variant, record.get("variants"))
    _, test_limit = data_limits(record)
    evaluate_int8(args.deployed, args.record, args.source, args.data, args.corrupted, variant.input_range, options,
                  args.out, test_limit=test_limit)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
