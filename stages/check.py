"""Stage `check`: check the whole of params.yaml before anything else runs.

DVC deletes a stage's outputs before it runs the stage's command, so a bad
value caught inside `train` would cost the finished runs it replaces. This
stage runs first (every stage that reads params depends on its output) and
stops the pipeline with one line while every finished output is still in
place. Its output says only that the check passed: it is the same for every
valid params.yaml, so a passing check never makes another stage stale.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.common import load_params, log, run_cli, write_text_atomic
from stages.params import check_all

PASSED = "params.yaml passed every check of the study\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="file that records the passed check")
    args = parser.parse_args(argv)
    variants = check_all(load_params(args.params))
    write_text_atomic(args.out, PASSED)
    log.info("params checked: every section and variant is valid; the study runs %s", ", ".join(variants))


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
