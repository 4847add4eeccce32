"""What a change to params.yaml reruns, computed without running a stage.

A stage reruns when one of its dependencies changes (DVC's rule). Every
stage but `check` depends on its slice of params.yaml, which `check` writes;
so the stages a change reruns are those whose slice it changes or that it
adds, and every stage downstream of them in DVC's own stage graph. This
computes that for each row of the README's table ("What `dvc repro` ...
reruns") from `check`'s code and DVC's graph of the changed pipeline, and
checks every `dvc exp run -S` line of the README with DVC's own parsing of
`-S`. tests/test_pipeline.py executes one change per mechanism.
"""

import itertools
import re
import shlex
import shutil

import networkx as nx
import pytest
import yaml

from conftest import REPO, twins_file

STUDY = yaml.safe_load((REPO / "params.yaml").read_text())["study"]
TABLES = {"benchmark", "aggregate", "plots", "report"}


def _runs(stage_names, variants=None, seeds=None, datasets=None):
    """``stage@<dataset>-<variant>-<seed>`` of the default study's runs,
    narrowed to the given variants, seeds or datasets."""
    return {f"{stage}@{d}-{v}-{s}" for stage in stage_names
            for d, v, s in itertools.product(datasets or STUDY["datasets"], variants or STUDY["variants"],
                                             seeds or STUDY["seeds"])}


INT8 = yaml.safe_load((REPO / "params.yaml").read_text())["int8"]["variants"]
INT4 = yaml.safe_load((REPO / "params.yaml").read_text())["int4"]["variants"]
RUN = ("train", "deploy", "robustness")
INT8_RUN = ("quantize", "robustness_int8")
INT4_RUN = ("quantize_int4", "robustness_int4")


def _every_run(variants=None, seeds=None, datasets=None):
    found = set()
    for form, stages in ((INT8, INT8_RUN), (INT4, INT4_RUN)):
        formed = [v for v in (variants or STUDY["variants"]) if v in form]
        found |= _runs(stages, formed, seeds, datasets) if formed else set()
    return _runs(RUN, variants, seeds, datasets) | found


def _evaluations():
    """Every robustness evaluation of the default study: the runs' and their forms'."""
    return _runs(["robustness"]) | _runs(["robustness_int8"], INT8) | _runs(["robustness_int4"], INT4)


# Each row of the README's table: (settings applied first, the change, what
# it reruns on the default study besides `check`). A row may hold several.
ROWS = {
    "a recipe no variant of the study names (`-S recipes.cosine.learning_rate=0.002` on the default study)": [
        ([], ["recipes.cosine.learning_rate=0.002"], set()),
        ([], ["recipes.bop.bop={threshold: 1.0e-7, gamma: 1.0e-3}"], set())],
    "a recipe (`-S recipes.bop.learning_rate=0.02`)": [
        (["variants.bnn.recipe=bop"], ["recipes.bop.learning_rate=0.02"], _every_run(["bnn"]) | TABLES),
        (["variants.bnn.recipe=bop"], ["recipes.article.learning_rate=0.002"], _every_run(["fp32", "fp32_w0.352"]) | TABLES)],
    "a variant's recipe (`-S variants.bnn.recipe=bop`)": [
        ([], ["variants.bnn.recipe=bop"], {"twins"} | _every_run(["bnn"]) | TABLES)],
    "an architecture key (`-S variants.bnn.kernel_quantizer=approx_sign`)": [
        ([], ["variants.bnn.kernel_quantizer=approx_sign"], {"twins", "profile@bnn"} | _every_run(["bnn"]) | TABLES)],
    "another width (`-S 'study.variants=[fp32,bnn,fp32_w0.352,bnn_w2]'`)": [
        ([], ["study.variants=[fp32,bnn,fp32_w0.352,bnn_w2]"], {"profile@bnn_w2"} | _every_run(["bnn_w2"]) | TABLES),
        ([], ["study.variants=[fp32,bnn,fp32_w0.352,fp32_w0.5]", "int8.variants=[fp32,fp32_w0.352,fp32_w0.5]"],
         {"profile@fp32_w0.5"} | _runs(RUN + INT8_RUN, ["fp32_w0.5"]) | TABLES)],
    "a seed or a dataset added (`-S 'study.seeds=[0,1,2,3,4,5]'`)": [
        ([], ["study.seeds=[0,1,2,3,4,5]"], _every_run(seeds=[5]) | TABLES),
        ([], ["study.datasets=[mnist,fashion_mnist]"],
         {"download@fashion_mnist", "corrupt@fashion_mnist"} | _every_run(datasets=["fashion_mnist"]) | TABLES)],
    "`train.steps_per_execution`, `data.train_limit`, `data.validation_*`": [
        ([], ["train.steps_per_execution=8"], _every_run() | TABLES),
        ([], ["data.train_limit=30000"], _every_run() | TABLES),
        ([], ["data.validation_images=6000"], _every_run() | TABLES)],
    "`data.test_limit`": [
        ([], ["data.test_limit=5000"], _every_run() | {"corrupt@mnist"} | TABLES)],
    "`robustness.*` (`-S 'robustness.corruptions=[fog,stripe]'`)": [
        ([], ["robustness.corruptions=[fog,stripe]"],
         {"corrupt@mnist"} | _evaluations() | TABLES - {"benchmark"}),
        ([], ["robustness.seed=1"],
         {"corrupt@mnist"} | _evaluations() | TABLES - {"benchmark"})],
    "`int8.*` but `variants` (`-S int8.io=int8`)": [
        ([], ["int8.io=int8"], _runs(INT8_RUN, INT8) | TABLES),
        ([], ["int8.representative_images=100"], _runs(INT8_RUN, INT8) | TABLES)],
    "`int8.variants` (`-S 'int8.variants=[fp32_w0.352]'`)": [
        ([], ["int8.variants=[fp32_w0.352]"], TABLES),
        (["int8.variants=[fp32_w0.352]"], ["int8.variants=[fp32,fp32_w0.352]"], _runs(INT8_RUN, ["fp32"]) | TABLES)],
    "`int4.*` but `variants` (`-S int4.calibration_images=100`)": [
        ([], ["int4.calibration_images=100"], _runs(INT4_RUN, INT4) | TABLES),
        ([], ["int4.max_accuracy_drop_pp=1.0"], _runs(INT4_RUN, INT4) | TABLES)],
    "`deploy.max_disagreement_pct`": [
        # if the files come out otherwise: the evaluations, the int8 forms' too
        # (they are compared with their run's answers), and the tables
        ([], ["deploy.max_disagreement_pct=0.5"],
         _runs(["deploy"]) | _evaluations() | TABLES)],
    "`benchmark.*` but `headline_options`": [
        ([], ["benchmark.rounds=5"], TABLES),
        ([], ["benchmark.threads=[1]"], TABLES)],
    "`benchmark.headline_options`": [
        ([], ["benchmark.headline_options=bgemm"],
         _evaluations() | TABLES - {"benchmark"})],
    "`aggregate.baseline`, `aggregate.primary`, `aggregate.margin_pp`": [
        ([], ["aggregate.baseline=bnn", "aggregate.primary=[fp32]"], {"aggregate", "plots", "report"}),
        ([], ["aggregate.primary=[]"], {"aggregate", "plots", "report"}),
        ([], ["aggregate.margin_pp.mnist=0.3"], {"aggregate", "plots", "report"})],
    "`aggregate.same_flash`, `aggregate.twin_forms` (`-S 'aggregate.same_flash=null'`)": [
        ([], ["aggregate.same_flash=null"], {"twins", "aggregate", "plots", "report"}),
        # the int4 twin's runs already made: naming its comparison derives it, and the tables
        (["study.variants=[fp32,bnn,fp32_w0.352,fp32_w0.49]", "int4.variants=[fp32_w0.352,fp32_w0.49]"],
         ["aggregate.twin_forms=[int8,int4]"], {"twins", "aggregate", "plots", "report"})],
    "`report.memory_budgets_kib`": [
        ([], ["report.memory_budgets_kib=[16,null]"], {"report"})],
    "`study.extended`, a comment": [
        ([], ["study.extended=[fp32,bnn]"], set())],
}


def _documentation() -> str:
    """The README and every page of docs/: what a user reads."""
    return "\n\n".join(path.read_text() for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])


def _readme_table():
    """The documentation's rows (docs/pipeline.md): change -> what it says reruns."""
    text = _documentation()
    table = text[text.index("| change | reruns |"):].split("\n\n")[0].splitlines()[2:]
    return dict(re.match(r"\| (.*?) \| (.*) \|$", row).groups() for row in table)


def test_every_row_of_the_readme_s_table_is_computed_here():
    assert set(_readme_table()) == set(ROWS)


def _slices(params_file, out):
    from stages.check import main
    from stages.lib.common import load_params

    main(["--params", str(params_file), "--out", str(out), "--twins",
          str(twins_file(out.parent / f"{out.name}-twins", load_params(params_file)))])
    return {str(path.relative_to(out)): path.read_bytes() for path in out.rglob("*") if path.is_file()}


def _pipeline(folder):
    """DVC's stages and graph for the dvc.yaml and params.yaml in ``folder``."""
    from dvc.repo import Repo

    if not (folder / ".dvc").exists():
        Repo.init(str(folder), no_scm=True)
    repo = Repo(str(folder))
    try:
        graph = repo.index.graph  # an edge goes from a stage to one it depends on
        return {stage.name: stage for stage in graph.nodes}, graph
    finally:
        repo.close()


def _reruns(tmp_path, before, change):
    """The stages (but `check`) that ``change`` (``-S`` settings) reruns on
    the study ``before`` (``-S`` settings) gives."""
    from dvc.utils.hydra import apply_overrides

    slices, pipelines = {}, {}
    for name, settings in (("before", before), ("after", before + change)):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(REPO / "dvc.yaml", folder)
        shutil.copy(REPO / "params.yaml", folder)
        if settings:
            apply_overrides(folder / "params.yaml", settings)
        slices[name] = _slices(folder / "params.yaml", tmp_path / f"{name}-spec")
        pipelines[name] = _pipeline(folder)
    changed = {f"data/spec/{path}" for path, text in slices["after"].items() if slices["before"].get(path) != text}
    stages, graph = pipelines["after"]
    first = {name for name, stage in stages.items() if name not in ("check", "twins")
             and (name not in pipelines["before"][0] or {str(dep.def_path) for dep in stage.deps} & changed)}
    downstream = set().union(*(nx.ancestors(graph, stages[name]) for name in first)) if first else set()
    # `twins` reads the params it declares (DVC reruns it when they change); what follows it is `check`,
    # whose slices above say what changed (the same twin writes the same slices)
    params = {name: yaml.safe_load((tmp_path / name / "params.yaml").read_text()) for name in ("before", "after")}
    declared = [key.split(".") for key in stages["twins"].params[0].params] if stages["twins"].params else []

    def read(found, path):
        for key in path:
            found = found.get(key) if isinstance(found, dict) else None
        return found

    twins = {"twins"} if any(read(params["before"], key) != read(params["after"], key) for key in declared) else set()
    return first | {stage.name for stage in downstream} | twins


@pytest.mark.parametrize("row, before, change, expected", [
    pytest.param(row, before, change, expected, id=" ".join(change))
    for row, cases in ROWS.items() for before, change, expected in cases])
def test_what_each_change_reruns(tmp_path, row, before, change, expected):
    assert _reruns(tmp_path, before, change) == expected, row


def _readme_experiments():
    """Every `dvc exp run` command of the README and docs/, as a user types
    it: its arguments after `dvc exp run`."""
    commands = []
    for line in _documentation().splitlines():
        for command in line.split("&&"):
            if command.strip().startswith("dvc exp run "):
                commands.append(shlex.split(command, comments=True)[3:])
    return commands


def test_every_readme_experiment_is_valid_as_written(tmp_path):
    # DVC's own parsing of -S (what `dvc exp run` applies to params.yaml),
    # then `check`'s: every line of the README sets keys that exist to values
    # the study accepts
    from dvc.utils.hydra import apply_overrides

    from stages.check import check_all
    from stages.lib.common import load_params

    commands = _readme_experiments()
    assert len(commands) >= 10 and ["-S", "variants.bnn.recipe=bop"] in commands
    for args in commands:
        settings = [value for flag, value in zip(args, args[1:]) if flag in ("-S", "--set-param")]
        params = tmp_path / "params.yaml"
        shutil.copy(REPO / "params.yaml", params)
        apply_overrides(params, settings)
        checked = load_params(params)
        check_all(checked)
        # and the twins check: a study naming a 1-bit network for the same flash trains its twin
        from stages.lib.settings.aggregate import same_flash, twins
        from stages.lib.training.variants import with_widths

        if same_flash(checked):
            twins(with_widths(checked), load_params(twins_file(tmp_path / "twins", checked)))
