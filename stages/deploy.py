"""Stage `deploy`: convert one trained model with Larq Compute Engine (LCE),
check the converted model against Keras on the whole test set under every
interpreter option set, keep the first test images for the benchmark, and
record what the file holds: its size and checksum, the bytes of its
weights, the peak RAM its activations need, its operators by type and the
share of its multiply-accumulates that run in binary operators.

The form itself (conversion, model surgery, which checks it accepts) is
:mod:`stages.lib.forms.lce`; what every deployed form shares,
:mod:`stages.lib.forms.deployed`. Timing is the `benchmark` stage's: it
times every deployed model side by side, which one stage per model cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import load_params, run_cli
from stages.lib.forms.deployed import command_line, deploy, trained_run
from stages.lib.forms.lce import accept, convert
from stages.lib.settings.deploy import DeploySettings, deploy_settings


def deploy_run(model_dir: str | Path, data_dir: str | Path, input_range: tuple[float, float],
               out_model_dir: str | Path, out_report_dir: str | Path, settings: DeploySettings = DeploySettings(0.1),
               test_limit: int | None = None) -> dict[str, Any]:
    """LCE's deployed form of one trained run; see :func:`stages.lib.forms.deployed.deploy`."""
    return deploy(model_dir, data_dir, input_range, convert, accept(settings, str(model_dir)), out_model_dir,
                  out_report_dir, test_limit=test_limit)


def main(argv: Sequence[str] | None = None) -> None:
    args = command_line("python -m stages.deploy", __doc__, argv,
                        ("--model-out", True, "folder for the .tflite file"),
                        ("--report-out", True, "folder for its record (deploy.json)"))
    # No validation images: choices among LCE files read their Keras run's
    # validation accuracy, which the file matches (on all but at most
    # deploy.max_disagreement_pct of the test images); an int8 form's own.
    variant, _, test_limit, _ = trained_run(args.model, args.variant)
    deploy_run(args.model, args.data, variant.input_range, args.model_out, args.report_out,
               deploy_settings(load_params(args.params)), test_limit=test_limit)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
