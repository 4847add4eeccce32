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
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import load_params, log, run_cli, write_text_atomic
from stages.lib.networks import variant_from_params
from stages.lib.recipes import recipe_from_params
from stages.lib.params import (
    baseline, benchmark_settings, check_keys, data_limits, download_settings, extended_variants, memory_budgets,
    study_datasets, study_seeds, study_variants, train_settings,
)

PASSED = "params.yaml passed every check of the study\n"


def check_all(params: dict[str, Any]) -> list[str]:
    """Check every section of params.yaml, every dataset's sources, every
    recipe and every variant it defines, whether or not the study runs it
    now; return the study's variants."""
    check_keys(params)
    datasets = study_datasets(params)
    sources = params["data"].get("sources")
    for name in datasets + [name for name in (sources if isinstance(sources, dict) else {}) if name not in datasets]:
        download_settings(params, name)
    data_limits(params)
    names = study_variants(params)
    study_seeds(params)
    extended_variants(params)
    train_settings(params)
    recipes = params["recipes"]
    for name in recipes:
        recipe_from_params(name, recipes)
    for name in names + [name for name in params["variants"] if name not in names]:
        variant = variant_from_params(name, params["variants"])
        recipe_from_params(variant.recipe, recipes, where=f"variants.{name}.recipe")
    benchmark_settings(params)
    baseline(params)
    memory_budgets(params)
    return names


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
