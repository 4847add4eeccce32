"""Stage `quantize`: the int8 form of one trained float run. TensorFlow
Lite's full-integer post-training quantization (:mod:`stages.lib.forms.int8`),
calibrated on training images, checked on the whole test set under every
interpreter option set, and recorded as `deploy` records every deployed
model (:mod:`stages.lib.forms.deployed`: size and checksum, weights, peak
activation RAM with each tensor's real element size, operators), so that
the benchmark and the tables take it as one more deployed network, named
``<variant>+int8``.

Quantization changes some answers, so agreement with Keras is reported, not
required: a conversion whose test accuracy falls more than
``int8.max_accuracy_drop_pp`` below its Keras model's under any option set
is refused with one line, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import load_params, run_cli
from stages.lib.data.datasets import load_split, scale_images
from stages.lib.forms.deployed import command_line, deploy, trained_run
from stages.lib.forms.int8 import accept, quantize, representative_indices
from stages.lib.settings.int8 import Int8Settings, conversion_settings
from stages.lib.params import Validation


def quantize_run(model_dir: str | Path, data_dir: str | Path, variant: str, input_range: tuple[float, float],
                 settings: Int8Settings, out_model_dir: str | Path, out_report_dir: str | Path,
                 train_limit: int | None = None, test_limit: int | None = None,
                 validation: Validation | None = None) -> dict[str, Any]:
    """The int8 form of one trained run, calibrated on training images drawn
    by the settings' seed; see :func:`stages.lib.forms.deployed.deploy`."""
    x_train, _ = load_split(data_dir, "train", train_limit)
    chosen = representative_indices(len(x_train), settings.representative_images, settings.seed)
    representative = scale_images(x_train[chosen], input_range)
    return deploy(model_dir, data_dir, input_range,
                  lambda model: quantize(model, representative, settings.io, source=str(model_dir)),
                  accept(settings, variant, len(chosen), str(model_dir)), out_model_dir, out_report_dir,
                  test_limit=test_limit, what="int8 model",
                  validation=None if validation is None else (train_limit, validation))


def main(argv: Sequence[str] | None = None) -> None:
    args = command_line("python -m stages.quantize", __doc__, argv,
                        ("--model-out", True, "folder for the int8 .tflite file"),
                        ("--report-out", True, "folder for its record (deploy.json)"))
    settings = conversion_settings(load_params(args.params), (args.variant,))
    variant, train_limit, test_limit, validation = trained_run(args.model, args.variant)
    quantize_run(args.model, args.data, args.variant, variant.input_range, settings, args.model_out, args.report_out,
                 train_limit=train_limit, test_limit=test_limit, validation=validation)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
