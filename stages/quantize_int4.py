"""Stage `quantize_int4`: the int4 form of one trained float run. Google's
LiteRT quantizer on TensorFlow Lite's float conversion
(:mod:`stages.lib.forms.int4`): int4 weights and int8 activations in every
convolution and dense layer, calibrated on the run's held-out validation
images, checked on the whole test set under every interpreter option set of
LiteRT's interpreter, and recorded as `deploy` records every deployed model
(:mod:`stages.lib.forms.deployed`), with the file's constant bytes by type,
so that the benchmark and the tables take it as one more deployed network,
named ``<variant>+int4``.

A conversion whose test accuracy falls more than
``int4.max_accuracy_drop_pp`` below its Keras model's under any option set
is refused with one line, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import load_params, run_cli
from stages.lib.data.datasets import load_training, scale_images
from stages.lib.forms.deployed import command_line, deploy, trained_run
from stages.lib.forms.int4 import FORM, accept, calibration_images, constant_bytes_by_type, quantize
from stages.lib.params import Validation
from stages.lib.settings.int4 import Int4Settings, conversion_settings


def quantize_run(model_dir: str | Path, data_dir: str | Path, variant: str, input_range: tuple[float, float],
                 settings: Int4Settings, out_model_dir: str | Path, out_report_dir: str | Path,
                 validation: Validation, train_limit: int | None = None,
                 test_limit: int | None = None) -> dict[str, Any]:
    """The int4 form of one trained run, calibrated on its held-out
    validation images drawn by the settings' seed; see
    :func:`stages.lib.forms.deployed.deploy`."""
    _, _, x_val, _ = load_training(data_dir, train_limit, validation.images, validation.seed)
    calibration = scale_images(calibration_images(x_val, settings.calibration_images, settings.seed), input_range)
    holds: dict[str, int] = {}

    def convert(model) -> bytes:
        converted = quantize(model, calibration, source=str(model_dir))
        holds.update(constant_bytes_by_type(converted))   # debug names hold no constant data
        return converted

    return deploy(model_dir, data_dir, input_range, convert,
                  accept(settings, variant, len(calibration), str(model_dir), holds), out_model_dir, out_report_dir,
                  test_limit=test_limit, what="int4 model", validation=(train_limit, validation),
                  runtime=FORM.runtime)


def main(argv: Sequence[str] | None = None) -> None:
    args = command_line("python -m stages.quantize_int4", __doc__, argv,
                        ("--model-out", True, "folder for the int4 .tflite file"),
                        ("--report-out", True, "folder for its record (deploy.json)"))
    settings = conversion_settings(load_params(args.params), (args.variant,))
    variant, train_limit, test_limit, validation = trained_run(args.model, args.variant)
    quantize_run(args.model, args.data, args.variant, variant.input_range, settings, args.model_out, args.report_out,
                 validation, train_limit=train_limit, test_limit=test_limit)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
