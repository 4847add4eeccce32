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


def _module_file(dotted: str) -> str | None:
    """The file, relative to the repository, of a module or package of ours
    (``stages.lib.common`` -> ``stages/lib/common.py``), or None."""
    path = "/".join(dotted.split("."))
    for candidate in (f"{path}.py", f"{path}/__init__.py"):
        if (REPO / candidate).is_file():
            return candidate
    return None


def imported_modules(module: str) -> set[str]:
    """Every file of the package that running ``python -m stages.<module>``
    loads: the module, every package on its way (``stages/__init__.py``,
    ``stages/lib/__init__.py``), and what they import, at the top or inside
    functions, followed through the package."""
    seen: set[str] = set()
    todo = [f"{PACKAGE}.{module}"]
    while todo:
        parts = todo.pop().split(".")
        for depth in range(1, len(parts) + 1):
            path = _module_file(".".join(parts[:depth]))
            if path is None or path in seen:
                continue
            seen.add(path)
            for node in ast.walk(ast.parse((REPO / path).read_text())):
                if isinstance(node, ast.Import):
                    todo += [alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE]
                elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
                    todo += [f"{node.module}.{alias.name}" for alias in node.names]
    return seen


def test_imported_modules_follows_the_package():
    assert imported_modules("plots") >= {"stages/__init__.py", "stages/plots.py", "stages/aggregate.py",
                                         "stages/lib/__init__.py", "stages/lib/common.py", "stages/lib/params.py"}
    assert "stages/lib/networks.py" in imported_modules("train")


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_module_a_stage_runs_is_a_declared_dependency(name):
    stage = _stages()[name]
    module = re.match(r"python -m stages\.(\w+)", stage["cmd"]).group(1)
    deps = set(stage.get("deps", []))
    missing = sorted(path for path in imported_modules(module) if path not in deps)
    assert not missing, f"stage {name} runs {', '.join(missing)} without declaring it in dvc.yaml"


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_stage_keeps_the_run_cache_on(name):
    # DVC switches its run cache off for a stage with a plain `cache: false`
    # or any `persist` output; metrics and plots may be uncached.
    switching_off = []
    for kind in ("outs", "metrics", "plots"):
        for out in _stages()[name].get(kind, []):
            if isinstance(out, dict):
                (path, options), = out.items()
                if options.get("persist") or (kind == "outs" and options.get("cache") is False):
                    switching_off.append(path)
    assert not switching_off, f"stage {name}: {switching_off} switch DVC's run cache off"


def test_every_stage_that_reads_params_runs_after_the_check():
    for name, stage in _stages().items():
        if name != "check" and stage.get("params"):
            assert "data/params-checked.txt" in stage["deps"], name
