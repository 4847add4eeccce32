"""Stage `check`: check the whole of params.yaml before anything else runs,
and write the slice of it each stage reads.

DVC deletes a stage's outputs before it runs the stage's command, so a bad
value caught inside `train` would cost the finished runs it replaces. This
stage runs first (every other stage depends on its output) and stops the
pipeline with one line while every finished output is still in place.

It is the only stage that declares params. Its output is a folder of
slices (:mod:`stages.lib.spec`): for each stage, the part of params.yaml
that stage reads. Each stage depends on its own slice and reads only that,
so it reruns exactly when what it reads changes, and DVC's lock records
what it really read.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli, write_text_atomic
from stages.lib.training.variants import variant_from_params, with_widths
from stages.lib.training.recipes import recipe_from_params
from stages.lib.params import (
    SECTIONS, benchmark_settings, check_keys, data_limits, download_settings, extended_variants, headline_options,
    study_datasets, study_runs, study_seeds, study_variants, train_settings, validation_settings,
)
from stages.lib.settings.aggregate import same_flash, twins
from stages.lib.forms.registry import post_training_runs
from stages.lib.layout import CORRUPTED, DEPLOY_RECORDS, DEPLOYED, PROFILES, ROBUSTNESS, RUNS, tidy
from stages.lib.names import run_name
from stages.lib.settings import aggregate as aggregate_section
from stages.lib.settings import report as report_section
from stages.lib.settings import robustness as robustness_section
from stages.lib.settings import deploy as deploy_section
from stages.lib.settings import int4 as int4_section
from stages.lib.settings import int8 as int8_section
from stages.lib.fanin_slices import slices as fanin_slices
from stages.lib.spec import SPEC_DIR, dumps, write_slices

# The sections checked by a module of their own, each with its SECTION,
# its check(params) and the slice files it writes, slices(params).
SELF_CHECKED = (aggregate_section, report_section, deploy_section, robustness_section, int8_section, int4_section)


def check_all(params: dict[str, Any]) -> list[str]:
    """Check every section of params.yaml, every dataset's sources, every
    recipe and every variant it defines, whether or not the study runs it
    now, and every other width of a variant it names (``fp32_w0.25``);
    return the study's variants."""
    params = with_widths(params)
    # the sections of SELF_CHECKED are checked by their own modules: every run
    # depends on stages/lib/params.py, so naming them there would retrain them all.
    own = tuple(module.SECTION for module in SELF_CHECKED)
    unknown = [str(name) for name in params if name not in SECTIONS and name not in own]
    if unknown:
        raise StudyError(f"params.yaml has unknown sections {', '.join(unknown)}; valid: "
                         f"{', '.join([*SECTIONS, *own])}")
    check_keys({name: section for name, section in params.items() if name not in own})
    datasets = study_datasets(params)
    sources = params["data"].get("sources")
    for name in datasets + [name for name in (sources if isinstance(sources, dict) else {}) if name not in datasets]:
        download_settings(params, name)
    data_limits(params)
    validation_settings(params)
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
    headline_options(params)
    for module in SELF_CHECKED:
        module.check(params)
    return names


def study_folders(params: dict[str, Any]) -> dict[str, set[str]]:
    """The folders of a checked study under each fan-in root: its runs and
    their post-training forms, its variants' profiles, its datasets' corruptions."""
    study = study_runs(params)
    runs = {run_name(*run) for run in study}
    deployed = runs | {run_name(*run) for run in post_training_runs(params, study)}
    return {DEPLOYED: deployed, DEPLOY_RECORDS: deployed, ROBUSTNESS: deployed, RUNS: runs,
            PROFILES: set(study_variants(params)), CORRUPTED: set(study_datasets(params))}


def _resolve(value: Any, params: dict[str, Any]) -> Any:
    """A dvc.yaml value that is one whole ``${a.b}`` interpolation, read
    from ``params``; anything else as it is."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        for key in value[2:-1].split("."):
            params = params[key]
        return params
    return value


def pipeline_stages(pipeline: dict[str, Any], params: dict[str, Any]) -> set[str]:
    """The names DVC gives the stages of ``pipeline`` (dvc.yaml) under a
    checked ``params``: a plain stage by its name, a ``foreach`` one as
    ``name@item``, a ``matrix`` one as ``name@`` and its values joined by
    ``-``."""
    names = set()
    for name, stage in pipeline.get("stages", {}).items():
        if "foreach" in stage:
            names |= {f"{name}@{item}" for item in _resolve(stage["foreach"], params)}
        elif "matrix" in stage:
            combos = [[]]
            for axis in stage["matrix"].values():
                combos = [[*combo, str(value)] for combo in combos for value in _resolve(axis, params)]
            names |= {f"{name}@{'-'.join(combo)}" for combo in combos}
        else:
            names.add(name)
    return names


def prune_lock(path: str | Path, names: set[str]) -> list[str]:
    """Remove from the lock file at ``path`` the entries of stages not in
    ``names`` (an experiment with more datasets, variants or seeds left
    them; a `dvc pull` would then look for outputs no stage makes); return
    the names removed. DVC rereads the file before it records each stage, so
    the entries stay removed."""
    from ruamel.yaml import YAML

    path = Path(path)
    if not path.is_file():
        return []
    round_trip = YAML()
    lock = round_trip.load(path.read_text())
    stale = [name for name in (lock or {}).get("stages", {}) if name not in names]
    if stale:
        for name in stale:
            del lock["stages"][name]
        text = io.StringIO()
        round_trip.dump(lock, text)
        write_text_atomic(path, text.getvalue())
    return stale


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default=SPEC_DIR, help="folder for the slice of params.yaml each stage reads")
    parser.add_argument("--twins", default="data/twins/twins.json",
                        help="the equal-flash twins the `twins` stage derived (needed when aggregate.same_flash names any)")
    parser.add_argument("--tidy", action="store_true",
                        help="remove from the workspace the folders of runs outside the study that the table "
                             "stages' folders hold, once found in DVC's cache (dvc.yaml passes it)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    variants = check_all(params)
    if same_flash(params):
        found = twins(with_widths(params), load_params(args.twins) if Path(args.twins).is_file() else {})
        # the table stages read the twins with the rest of `aggregate` (a key params.yaml may not set)
        params = {**params, "aggregate": {**params["aggregate"], "twins": found}}
    params = with_widths(params)
    with atomic_directory(args.out) as tmp:
        written = write_slices(params, tmp)
        # the sections checked by their own modules write their own slices: one writer per file
        for relative, slice_ in [*fanin_slices(params).items(),
                                 *(item for module in SELF_CHECKED for item in module.slices(params).items())]:
            if relative in written:
                raise AssertionError(f"two writers of the slice {relative}")
            write_text_atomic(tmp / relative, dumps(slice_))
            written.append(relative)
    log.info("params checked: every section and variant is valid; the study runs %s; %d slices in %s",
             ", ".join(variants), len(written), args.out)
    if args.tidy:
        for folder in tidy(study_folders(params)):
            log.info("%s is not part of this study: removed from the workspace (it stays in DVC's cache; a study "
                     "that includes it restores it)", folder)
        stale = prune_lock("dvc.lock", pipeline_stages(load_params("dvc.yaml"), params))
        if stale:
            log.info("dvc.lock: %d entries of stages outside this study removed (%s)", len(stale),
                     ", ".join(stale[:3]) + (", ..." if len(stale) > 3 else ""))


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
