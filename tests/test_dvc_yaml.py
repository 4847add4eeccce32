"""dvc.yaml against the code: every stage declares the modules it runs, and
every stage can be restored from DVC's run cache."""

import ast
import re

import pytest
import yaml

from conftest import REPO

PACKAGE = "stages"


def _stages():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def imported_modules(module: str) -> set[str]:
    """Every module of the package that running ``python -m stages.<module>``
    loads: the package itself, the module, and what they import (at the top
    or inside functions), followed through the package."""
    seen: set[str] = set()
    todo = ["__init__", module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((REPO / PACKAGE / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for full in names:
                parts = full.split(".")
                if parts[0] == PACKAGE:
                    inner = parts[1] if len(parts) > 1 else "__init__"
                    if (REPO / PACKAGE / f"{inner}.py").is_file():
                        todo.append(inner)
    return seen


def test_imported_modules_follows_the_package():
    assert imported_modules("plots") >= {"__init__", "plots", "aggregate", "common", "params"}
    assert "networks" in imported_modules("train")


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_module_a_stage_runs_is_a_declared_dependency(name):
    stage = _stages()[name]
    module = re.match(r"python -m stages\.(\w+)", stage["cmd"]).group(1)
    deps = set(stage.get("deps", []))
    missing = sorted(f"{PACKAGE}/{m}.py" for m in imported_modules(module) if f"{PACKAGE}/{m}.py" not in deps)
    assert not missing, f"stage {name} runs {', '.join(missing)} without declaring it in dvc.yaml"


# Cheap stages that assemble what a reader sees in git: their tables
# (CSV beside Markdown) and the report are neither metrics nor plots.
ASSEMBLED_IN_GIT = {"aggregate", "report"}


@pytest.mark.parametrize("name", sorted(set(_stages()) - ASSEMBLED_IN_GIT))
def test_every_costly_stage_keeps_the_run_cache_on(name):
    # DVC switches its run cache off for a stage with a plain `cache: false`
    # output; metrics and plots may be uncached.
    plain_uncached = [next(iter(out)) for out in _stages()[name].get("outs", [])
                      if isinstance(out, dict) and next(iter(out.values())).get("cache") is False]
    assert not plain_uncached, f"stage {name}: {plain_uncached} switch DVC's run cache off"


def test_every_stage_that_reads_params_runs_after_the_check():
    for name, stage in _stages().items():
        if name != "check" and stage.get("params"):
            assert "data/params-checked.txt" in stage["deps"], name
