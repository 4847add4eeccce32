"""Stage `deploy`: convert one trained model with Larq Compute Engine (LCE),
check the converted model against Keras on the whole test set under every
interpreter option set, keep the first test images for the benchmark, and
record what the file holds: its size and checksum, the bytes of its
weights, the peak RAM its activations need, its operators by type and the
share of its multiply-accumulates that run in binary operators.

The form itself (conversion, model surgery, which checks it accepts) is
:mod:`stages.lib.forms.lce`; what every deployed form shares,
:mod:`stages.lib.forms.deployed`. Timing is the `benchmark` stage's: it times
every deployed model side by side, which one stage per model cannot.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import load_params, run_cli
from stages.lib.forms.deployed import deploy
from stages.lib.forms.lce import DeploySettings, accept, convert, deploy_settings
from stages.lib.training.networks import variant_from_params
from stages.lib.params import data_limits
from stages.lib.spec import run_spec_path


def deploy_run(model_dir: str | Path, data_dir: str | Path, input_range: tuple[float, float],
               out_model_dir: str | Path, out_report_dir: str | Path, settings: DeploySettings = DeploySettings(0.1),
               test_limit: int | None = None) -> dict[str, Any]:
    """LCE's deployed form of one trained run; see :func:`stages.lib.forms.deployed.deploy`."""
    return deploy(model_dir, data_dir, input_range, convert, accept(settings, str(model_dir)), out_model_dir,
                  out_report_dir, test_limit=test_limit)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--params", required=True, help="the slice of params.yaml it reads (data/spec/deploy.json)")
    parser.add_argument("--data", required=True, help="folder of the run's dataset")
    parser.add_argument("--model", required=True, help="folder of the trained model")
    parser.add_argument("--model-out", required=True, help="folder for the .tflite file")
    parser.add_argument("--report-out", required=True, help="folder for deploy.json")
    args = parser.parse_args(argv)
    settings = deploy_settings(load_params(args.params))
    run = load_params(run_spec_path(args.model))
    variant = variant_from_params(args.variant, run.get("variants"))
    _, test_limit = data_limits(run)
    deploy_run(args.model, args.data, variant.input_range, args.model_out, args.report_out, settings,
               test_limit=test_limit)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
