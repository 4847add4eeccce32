"""The slices of params.yaml each stage reads, written by `check`.

DVC reruns a stage when a param it declares changes, and records the params
it reads when it writes the lock, after the stage has run. Both go wrong for
a stage that reads params.yaml itself: a stage that declares a whole section
reruns for keys it never reads, and a stage whose params.yaml changes while it
runs (a refused `dvc exp run -S ...` rewrites the file before it is refused)
is locked against values it did not train with.

So only `check` declares params: it checks the whole params.yaml and writes,
for every stage, the slice of it that stage reads, as a small JSON file in the
same shape as params.yaml (so the stages read it with the same checked views,
:mod:`stages.lib.params`). Each stage depends on its own slice file, and reads
nothing else: it reruns exactly when what it reads changes, and what DVC
locks is what it read. A slice file's bytes depend only on its content, so a
change elsewhere in params.yaml leaves them, and the stage, as they were.

The slices (paths relative to the spec folder, ``data/spec``):

- ``download/<dataset>.json``: the dataset's sources, retries and timeout;
- ``architecture/<variant>.json``: the variant without its recipe (the
  profile's input: Larq profiles the architecture);
- ``training/<variant>.json``: the variant with its recipe, the recipe
  itself, ``train``, the data limits and the held-out validation images (a
  run's input; the run keeps a copy as its record, which `deploy` reads);
- the fan-in stages' (``benchmark.json``, ``aggregate.json``,
  ``report.json``): :mod:`stages.lib.fanin_slices`, apart from this module
  because every training run depends on this one;
- each section checked by its own module writes its own (``deploy.json``,
  ``quantize.json``, ``robustness.json``, ``corrupt/<dataset>.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stages.lib.common import StudyError, write_text_atomic
from stages.lib.training.recipes import DEFAULT_RECIPE
from stages.lib.training.variants import with_widths

SPEC_DIR = "data/spec"
# What a run keeps of the training slice it was trained with, beside its
# model and its metrics.
RUN_SPEC_FILE = "spec.json"


def _defined(params: dict[str, Any], name: str) -> dict[str, Any]:
    """``variants.<name>``, a width of a defined variant included (defined
    from its base variant unless ``params`` already comes with its widths)."""
    variants = params["variants"]
    return variants[name] if name in variants else with_widths(params)["variants"][name]


def variant_definition(params: dict[str, Any], name: str) -> dict[str, Any]:
    """``variants.<name>`` with its recipe spelled out."""
    variant = _defined(params, name)
    return {**variant, "recipe": variant.get("recipe", DEFAULT_RECIPE)}


def architecture_slice(params: dict[str, Any], name: str) -> dict[str, Any]:
    return {"variants": {name: {k: v for k, v in _defined(params, name).items() if k != "recipe"}}}


def training_slice(params: dict[str, Any], name: str) -> dict[str, Any]:
    variant = variant_definition(params, name)
    data = params["data"]
    return {
        "variants": {name: variant},
        "recipes": {variant["recipe"]: params["recipes"][variant["recipe"]]},
        "train": params["train"],
        "data": {key: data.get(key) for key in ("train_limit", "test_limit", "validation_images", "validation_seed")},
    }


def download_slice(params: dict[str, Any], dataset: str) -> dict[str, Any]:
    data = params["data"]
    return {"data": {"sources": {dataset: data["sources"][dataset]},
                     **{key: data[key] for key in ("retries", "timeout_s") if key in data}}}


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every slice file of a checked params.yaml, by its path in the spec
    folder: one per dataset with sources, two per variant defined (whether
    or not the study runs it now, so that `dvc exp run -S
    study.variants=[...]` finds its slices) and per other width the study
    names (``fp32_w0.25``), one per table stage."""
    params = with_widths(params)
    files = {f"download/{name}.json": download_slice(params, name) for name in params["data"]["sources"]}
    for name in params["variants"]:
        files[f"architecture/{name}.json"] = architecture_slice(params, name)
        files[f"training/{name}.json"] = training_slice(params, name)
    return files


def dumps(slice_: dict[str, Any]) -> str:
    """A slice as JSON whose bytes depend on its content only (not on the
    order of keys in params.yaml)."""
    return json.dumps(slice_, indent=2, sort_keys=True) + "\n"


def write_slices(params: dict[str, Any], out_dir: str | Path) -> list[str]:
    """Write every slice of ``params`` (checked) into ``out_dir``; return
    their paths relative to it."""
    out_dir = Path(out_dir)
    written = []
    for relative, slice_ in slices(params).items():
        write_text_atomic(out_dir / relative, dumps(slice_))
        written.append(relative)
    return written


def write_run_spec(training: dict[str, Any], *folders: str | Path) -> None:
    """Keep the training slice a run was trained with in each of ``folders``."""
    for folder in folders:
        (Path(folder) / RUN_SPEC_FILE).write_text(dumps(training))


def run_spec_path(model_dir: str | Path) -> Path:
    path = Path(model_dir) / RUN_SPEC_FILE
    if not path.is_file():
        raise StudyError(f"{path} is missing: the run predates run records; retrain it with "
                         "`dvc repro --force` on its train stage")
    return path
