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
    assert imported_modules("plots") >= {"stages/__init__.py", "stages/plots.py", "stages/lib/analysis/tables.py",
                                         "stages/lib/__init__.py", "stages/lib/common.py"}
    assert "stages/lib/training/networks.py" in imported_modules("train")
    # robustness imports TensorFlow inside a function, recipes imports the
    # package inside one; the package's own imports are followed wherever they are
    assert {"stages/lib/training/trained.py", "stages/lib/spec.py"} <= imported_modules("deploy")


def _stage_module(stage) -> str:
    return re.match(r"python -m stages\.(\w+)", stage["cmd"]).group(1)


# The stages that are quick to rerun depend on each package of stages/lib/
# they read as a whole folder (editing any module of it reruns them: seconds
# to two minutes); the costly ones (train, deploy, quantize, corrupt,
# robustness*) on exactly the files they run, so that editing a module reruns
# them only if they run it. (.dvcignore keeps __pycache__ out of the folders.)
BY_PACKAGE = {"twins", "check", "download", "profile", "benchmark", "aggregate", "plots", "report"}


def code_deps(name: str, module: str) -> list[str]:
    """The code dependencies stage ``name`` (running ``stages.<module>``)
    declares: the files it runs, with those of a package of stages/lib/
    replaced by the package's folder for the stages of BY_PACKAGE."""
    files = imported_modules(module)
    if name not in BY_PACKAGE:
        return sorted(files)
    return sorted({"/".join(path.split("/")[:3]) if path.startswith("stages/lib/") and path.count("/") > 2 else path
                   for path in files})


def _covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep + "/")


@pytest.mark.parametrize("name", sorted(_stages()))
def test_no_stage_imports_another_stage(name):
    # what two stages share lives in stages/lib: a stage's module is a
    # dependency of its own stage only, so editing the training loop does
    # not reconvert or re-evaluate unchanged models
    modules = {f"stages/{_stage_module(stage)}.py" for stage in _stages().values()}
    own = f"stages/{_stage_module(_stages()[name])}.py"
    assert imported_modules(_stage_module(_stages()[name])) & modules == {own}


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_module_a_stage_runs_is_a_declared_dependency(name):
    stage = _stages()[name]
    module = re.match(r"python -m stages\.(\w+)", stage["cmd"]).group(1)
    deps = stage.get("deps", [])
    missing = sorted(path for path in imported_modules(module) if not any(_covers(dep, path) for dep in deps))
    assert not missing, (f"stage {name} runs {', '.join(missing)} without declaring it in dvc.yaml: "
                         f"`python tests/test_dvc_yaml.py` writes every stage's code dependencies")


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_declared_module_is_one_the_stage_runs(name):
    # an over-broad dependency reruns the stage for changes it cannot see
    stage = _stages()[name]
    module = re.match(r"python -m stages\.(\w+)", stage["cmd"]).group(1)
    code = {dep for dep in stage.get("deps", []) if CODE_DEP.match(f"- {dep}")}
    unused = sorted(dep for dep in code if not any(_covers(dep, path) for path in imported_modules(module)))
    assert not unused, (f"stage {name} declares {', '.join(unused)}, which it does not run: "
                        f"`python tests/test_dvc_yaml.py` writes every stage's code dependencies")


def test_plots_and_report_do_not_run_the_aggregate_stage():
    assert "stages/aggregate.py" not in imported_modules("plots") | imported_modules("report")


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_stage_keeps_the_run_cache_on(name):
    # DVC switches its run cache off for a stage with a plain `cache: false`
    # or any `persist` output; metrics and plots may be uncached. `check`
    # runs on every repro (`always_changed`: never from the run cache), and
    # its slices persist so that a refused check leaves the last ones.
    if _stages()[name].get("always_changed"):
        assert name == "check"
        return
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
    assert stages["check"]["params"] == [{"params.yaml": None}] and stages["check"]["outs"] == [{"data/spec": {"persist": True}}]
    # `twins` runs before `check` (which refuses a study without the twin), so it
    # reads params.yaml itself, and declares exactly the two entries it reads
    assert stages["twins"]["params"] == ["aggregate.same_flash", "aggregate.twin_forms", "variants"]
    assert "data/twins/twins.json" in stages["check"]["deps"]
    for name, stage in stages.items():
        if name in ("check", "twins"):
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


def test_every_named_output_ends_in_its_root_s_fixed_leaf():
    # see stages/lib/layout.py: whatever a name holds (`..`, `x/../../stages`),
    # the output path it makes ends in a leaf no file of the repository bears
    from stages.lib.layout import LEAVES

    named = {}
    for name, stage in _stages().items():
        for out in stage.get("outs", []):
            path = out if isinstance(out, str) else next(iter(out))
            if "${" in path:
                root, leaf = next((root, leaf) for root, leaf in LEAVES.items() if path.startswith(root + "/"))
                assert path.endswith("}/" + leaf) and "${" not in root, (name, path)
                named.setdefault(root, set()).add(name)
    assert named == {"data/dataset": {"download"}, "reports/profiles": {"profile"}, "data/models": {"train"},
                     "reports/runs": {"train"}, "data/deployed": {"deploy", "quantize", "quantize_int4"},
                     "reports/deploy": {"deploy", "quantize", "quantize_int4"}, "data/corrupted": {"corrupt"},
                     "reports/robustness": {"robustness", "robustness_int8", "robustness_int4"}}


def test_no_file_of_the_repository_bears_a_leaf_s_name():
    import subprocess

    from stages.lib.layout import LEAVES

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    parts = {part for path in tracked for part in path.split("/")}
    assert not parts & set(LEAVES.values())


def _study_stage_names() -> set[str]:
    """Every stage of the committed study, as DVC names them in dvc.lock."""
    from stages.lib.common import load_params
    from stages.lib.forms.registry import form_of, post_training_runs, source_variant
    from stages.lib.names import run_name
    from stages.lib.params import study_datasets, study_runs, study_variants

    params = load_params(REPO / "params.yaml")
    runs = [run_name(*run) for run in study_runs(params)]
    study = study_runs(params)
    formed = {f"{stage}@{run_name(dataset, source_variant(network), seed)}"
              for dataset, network, seed in post_training_runs(params, study)
              for stage in (form_of(network).stage, f"robustness_{form_of(network).name}")}
    return ({"twins", "check", "benchmark", "aggregate", "plots", "report"}
            | {f"{stage}@{name}" for name in study_datasets(params) for stage in ("download", "corrupt")}
            | {f"profile@{name}" for name in study_variants(params)}
            | {f"{stage}@{run}" for run in runs for stage in ("train", "deploy", "robustness")}
            | formed)


def test_every_form_of_the_registry_has_its_two_stages():
    # a form's conversion over its section's variants, and its robustness run by --form
    from stages.lib.forms.registry import FORMS

    stages = _stages()
    for form in FORMS:
        convert, robustness = stages[form.stage], stages[f"robustness_{form.name}"]
        assert convert["matrix"]["variant"] == robustness["matrix"]["variant"] == f"${{{form.section}.variants}}"
        assert f"+{form.name}-" in convert["cmd"] and f"--form {form.name}" in robustness["cmd"]


def test_the_committed_lock_records_the_study_and_nothing_else():
    # a lock recorded with another experiment's runs left in the workspace
    # once said aggregate read 85 run files where the study has 43
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    assert set(lock) == _study_stage_names()
    written = {}
    for entry in lock.values():
        for out in entry.get("outs", []):
            written[out["path"]] = out.get("nfiles", 1)
    from stages.lib.layout import FAN_IN_ROOTS

    for stage in ("benchmark", "aggregate"):
        for dep in lock[stage]["deps"]:
            if dep["path"] in FAN_IN_ROOTS:
                inside = sum(n for path, n in written.items() if path.startswith(dep["path"] + "/"))
                assert dep["nfiles"] == inside, (stage, dep["path"])


# ------------------------------------------------------- writing the code deps

CODE_DEP = re.compile(r"^(?P<indent>\s*)- (?P<path>stages/[\w/]+(\.py)?)\s*$")


def written_code_deps(text: str) -> str:
    """``dvc.yaml``'s ``text`` with each stage's code dependencies replaced
    by exactly the modules it runs (:func:`imported_modules`), sorted, where
    its first one stood; every other line as it was. DVC compares
    dependencies by path, so their order reruns nothing."""
    stages = yaml.safe_load(text)["stages"]
    lines = text.split("\n")
    starts = sorted((index, name) for index, line in enumerate(lines)
                    for name in stages if re.fullmatch(rf"  {re.escape(name)}:\s*", line))
    for position in reversed(range(len(starts))):
        start, name = starts[position]
        end = starts[position + 1][0] if position + 1 < len(starts) else len(lines)
        stage = stages[name].get("do", stages[name])
        needed = code_deps(name, _stage_module(stage))
        block = lines[start:end]
        found = [index for index, line in enumerate(block) if CODE_DEP.match(line)]
        if not found:
            raise SystemExit(f"stage {name} lists no code dependency in dvc.yaml: add one under its deps")
        indent = CODE_DEP.match(block[found[0]]).group("indent")
        kept = [line for index, line in enumerate(block) if index not in found]
        at = found[0]
        lines[start:end] = kept[:at] + [f"{indent}- {path}" for path in needed] + kept[at:]
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(_stages()))
def test_a_costly_stage_depends_on_files_a_quick_one_on_packages(name):
    code = [dep for dep in _stages()[name]["deps"] if CODE_DEP.match(f"- {dep}")]
    folders = [dep for dep in code if not dep.endswith(".py")]
    if name in BY_PACKAGE:
        assert all((REPO / dep / "__init__.py").is_file() for dep in folders), name
    else:
        assert not folders, f"stage {name} depends on whole packages {folders}: it would rerun for any edit in them"


def test_package_folders_hash_without_bytecode():
    assert "__pycache__" in (REPO / ".dvcignore").read_text().split()


def test_the_written_code_deps_are_the_committed_ones():
    # what `python tests/test_dvc_yaml.py` would write is what dvc.yaml holds (up to order)
    text = (REPO / "dvc.yaml").read_text()
    assert yaml.safe_load(written_code_deps(text))["stages"].keys() == yaml.safe_load(text)["stages"].keys()
    for name, stage in yaml.safe_load(written_code_deps(text))["stages"].items():
        stage, committed = stage.get("do", stage), _stages()[name]
        assert sorted(stage["deps"]) == sorted(committed["deps"]), name


if __name__ == "__main__":
    # Rewrite dvc.yaml's code dependencies from the imports: after moving code, run
    # `python tests/test_dvc_yaml.py` from the repository's root; then `dvc status` shows what reruns.
    path = REPO / "dvc.yaml"
    before = path.read_text()
    after = written_code_deps(before)
    path.write_text(after)
    changed = sum(a != b for a, b in zip(before.split("\n"), after.split("\n"))) + abs(
        len(before.split("\n")) - len(after.split("\n")))
    print(f"dvc.yaml: code dependencies written from the imports ({changed} lines changed)")
