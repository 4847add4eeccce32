"""dvc.yaml against the code: every stage declares exactly the modules it
runs, reads only the params it declares, and can be restored from DVC's run
cache."""

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
    assert imported_modules("plots") >= {"stages/__init__.py", "stages/plots.py", "stages/lib/tables.py",
                                         "stages/lib/__init__.py", "stages/lib/common.py"}
    assert "stages/lib/networks.py" in imported_modules("train")
    # deploy imports stages.train inside a function, and with it what train imports
    assert {"stages/train.py", "stages/lib/spec.py"} <= imported_modules("deploy")


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_module_a_stage_runs_is_a_declared_dependency(name):
    stage = _stages()[name]
    module = re.match(r"python -m stages\.(\w+)", stage["cmd"]).group(1)
    deps = set(stage.get("deps", []))
    missing = sorted(path for path in imported_modules(module) if path not in deps)
    assert not missing, f"stage {name} runs {', '.join(missing)} without declaring it in dvc.yaml"


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_declared_module_is_one_the_stage_runs(name):
    # an over-broad dependency reruns the stage for changes it cannot see
    stage = _stages()[name]
    module = re.match(r"python -m stages\.(\w+)", stage["cmd"]).group(1)
    code = {dep for dep in stage.get("deps", []) if dep.startswith(f"{PACKAGE}/") and dep.endswith(".py")}
    unused = sorted(code - imported_modules(module))
    assert not unused, f"stage {name} declares {', '.join(unused)}, which it does not run"


def test_plots_and_report_do_not_run_the_aggregate_stage():
    assert "stages/aggregate.py" not in imported_modules("plots") | imported_modules("report")


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


def test_only_check_declares_params_and_every_stage_reads_a_declared_slice():
    stages = _stages()
    assert stages["check"]["params"] == [{"params.yaml": None}] and stages["check"]["outs"] == ["data/spec"]
    for name, stage in stages.items():
        if name == "check":
            continue
        assert not stage.get("params"), f"stage {name} declares params: only check reads params.yaml"
        assert "params.yaml" not in stage["cmd"]
        read = re.search(r"--params (\S+)", stage["cmd"])
        if read:
            assert read.group(1).startswith("data/spec/") and read.group(1) in stage["deps"], name
        elif name == "deploy":  # the slice the run was trained with, kept in its model folder
            assert "data/models/${item.dataset}-${item.variant}-${item.seed}" in stage["deps"]
        else:
            assert name == "plots", f"stage {name} reads no slice of params.yaml"


def test_no_name_can_take_an_output_out_of_its_folder():
    # see dvc.yaml: a name is never a whole part of an output path alone, so
    # that `..` or `../x` names a folder inside the study's own
    run = "${item.dataset}-${item.variant}-${item.seed}"
    named = {}
    for name, stage in _stages().items():
        for out in stage.get("outs", []):
            path = out if isinstance(out, str) else next(iter(out))
            if "${" in path:
                *folder, leaf = path.split("/")
                assert "${" not in "".join(folder) and not re.fullmatch(r"\$\{[\w.]+\}", leaf), (name, path)
                named.setdefault(leaf, set()).add("/".join(folder))
    assert named == {"dataset-${item}": {"data", "data/corrupted"}, "variant-${item}": {"reports/profiles"},
                     run: {"data/models", "data/deployed", "reports/runs", "reports/deploy", "reports/robustness"},
                     # a run's int8 form: `+` is in no variant's name, so it never meets another run's folder
                     "${item.dataset}-${item.variant}+int8-${item.seed}": {"data/deployed", "reports/deploy",
                                                                           "reports/robustness"}}
