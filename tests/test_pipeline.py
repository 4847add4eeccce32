"""The DVC wiring, end to end, on copies of the tiny study (conftest.py):
each mechanism executed once, each on a copy of its own."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO, TINY_PARAMS, run_dvc, run_git

pytestmark = [pytest.mark.slow, pytest.mark.dvc]

_dvc = run_dvc
_git = run_git


def _finished_outputs(repo):
    """Every file the study produced (models, deployed files, per-run
    results, tables, plots, report), by path, with its SHA-256."""
    files = {}
    for top in ("data/models", "data/deployed", "reports"):
        for path in sorted((repo / top).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _ran(result):
    """The stages DVC ran (not restored, not skipped)."""
    return {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}


def _restored(result):
    return {line.split("'")[1] for line in result.stdout.splitlines() if "is cached - skipping run" in line}


def _up_to_date(repo):
    """Whether DVC finds every stage up to date, but `check`, which runs
    every time (it keeps the workspace to the study: see dvc.yaml)."""
    status = _dvc(repo, "status").stdout
    return [line.strip() for line in status.splitlines() if line.strip()] == ["check:", "always changed"]


def _errors(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]


# The documentation's line (docs/pipeline.md) that restores the committed params.yaml after a refused experiment.
RESTORE_PARAMS = "git show HEAD:params.yaml > params.yaml"


def _restore_params(repo):
    assert RESTORE_PARAMS in " ".join((REPO / "docs" / "pipeline.md").read_text().split())
    subprocess.run(RESTORE_PARAMS, shell=True, cwd=repo, check=True)
    assert (repo / "params.yaml").read_bytes() == subprocess.run(
        ["git", "show", "HEAD:params.yaml"], cwd=repo, capture_output=True, check=True).stdout


# What reruns after any change to a run: the benchmark times every deployed
# model, and the tables, figures and report follow.
TABLE_STAGES = ("benchmark", "aggregate", "plots", "report")


# The variants whose runs get an int8 form (int8.variants in the tiny study
# and the experiments below), and an int4 form (int4.variants).
INT8_VARIANTS = ("fp32", "fp32_w0.352", "fp32_w0.5")
INT4_VARIANTS = ("fp32",)


def _run_stages(*runs):
    """The stages of a run that a change to it reruns: it trains, deploys
    and is evaluated on the corrupted images again; a run of a variant with
    an int8 or int4 form is quantized again too."""
    return {f"{stage}@{run}" for run in runs for stage in ("train", "deploy", "robustness")} | {
        f"{stage}@{run}" for run in runs if run.split("-")[1] in INT8_VARIANTS
        for stage in ("quantize", "robustness_int8")} | {
        f"{stage}@{run}" for run in runs if run.split("-")[1] in INT4_VARIANTS
        for stage in ("quantize_int4", "robustness_int4")}


def _experiment(repo, *args):
    """``dvc exp run *args`` as a user types it; the workspace then holds the
    experiment's params and results."""
    return _dvc(repo, "exp", "run", *args)


# -- what the tiny study's `dvc repro` wrote (read from the template: no copy) --

@pytest.fixture(scope="module")
def built(study_template):
    return study_template, (study_template.parent / "repro.log").read_text()


def test_repro_writes_every_output(built):
    repo, log = built
    corruptions = TINY_PARAMS["robustness.corruptions"]
    for variant in ("fp32", "bnn"):
        assert (repo / "data" / "models" / f"mnist-{variant}-0" / "keras" / "model.keras").is_file()
        assert (repo / "data" / "deployed" / f"mnist-{variant}-0" / "tflite" / "model.tflite").is_file()
        deployed = json.loads((repo / "reports" / "deploy" / f"mnist-{variant}-0" / "record" / "deploy.json").read_text())
        assert deployed["agreement"] >= 0.999 and deployed["peak_activation_bytes"] == 108160
        metrics = json.loads((repo / "reports" / "runs" / f"mnist-{variant}-0" / "live" / "metrics.json").read_text())
        # 200 of the 2,000 training images held out for validation
        assert metrics["test_images"] == 2000 and metrics["train_images"] == 1800
        assert metrics["validation_images"] == 200 and 0.0 <= metrics["validation_accuracy"] <= 1.0
        assert 0.0 <= metrics["test_accuracy"] <= 1.0
        profile = json.loads((repo / "reports" / "profiles" / variant / "profile" / "profile.json").read_text())
        assert profile["macs_total"] == 2794240
        evaluation = json.loads((repo / "reports" / "robustness" / f"mnist-{variant}-0" / "evaluation" / "robustness.json").read_text())
        assert evaluation["test_images"] == 2000 and list(evaluation["corruptions"]) == corruptions
        assert all(result["deployed_images"] == 2000 for result in evaluation["corruptions"].values())
    manifest = json.loads((repo / "data" / "corrupted" / "mnist" / "images" / "corruptions.json").read_text())
    assert manifest["test_images"] == 2000 and list(manifest["corruptions"]) == corruptions
    int8 = json.loads((repo / "reports" / "deploy" / "mnist-fp32+int8-0" / "record" / "deploy.json").read_text())
    assert int8["int8"]["representative_images"] == 500 and int8["test_images"] == 2000
    assert int8["peak_activation_bytes"] < deployed["peak_activation_bytes"] and "LceBconv2d" not in int8["operators"]
    assert (repo / "data" / "deployed" / "mnist-fp32+int8-0" / "tflite" / "model.tflite").stat().st_size == int8["tflite_bytes"]
    timings = (repo / "reports" / "benchmark" / "timings.csv").read_text().splitlines()
    int4 = json.loads((repo / "reports" / "deploy" / "mnist-fp32+int4-0" / "record" / "deploy.json").read_text())
    assert int4["int4"]["calibration_images"] == 100 and int4["tflite_bytes"] < int8["tflite_bytes"]
    assert int4["int4"]["constant_bytes_by_type"]["INT4"] > int4["weights_bytes"] / 2
    # processes x rounds x (four models and the overhead model through each runtime) x option sets x threads
    assert len(timings) == 1 + TINY_PARAMS["benchmark.processes"] * TINY_PARAMS["benchmark.rounds"] * 6 * 4 * 2
    assert "served by data/mnist-shipped" in log


def test_tables_plots_and_report(built):
    import pandas as pd

    repo, _ = built
    tables = repo / "reports" / "tables"
    summary = pd.read_csv(tables / "summary.csv")
    # each form: one more deployed network
    assert list(summary["variant"]) == ["fp32", "bnn", "fp32+int8", "fp32+int4"]
    for column in ("seeds", "test_accuracy_mean", "test_accuracy_std", "test_accuracy_ci95_low",
                   "test_accuracy_ci95_high", "params_total", "memory_kib", "compression_vs_baseline", "macs_total",
                   "binarized_mac_fraction", "accuracy_gap_vs_baseline", "accuracy_gap_ci95_low",
                   "tflite_kib", "ram_kib", "binary_mac_fraction_deployed", "operators", "latency_median_us",
                   "latency_rerun95_low", "speedup_vs_baseline", "speedup_rerun95_low", "converted_accuracy_mean",
                   "on_deployed_pareto_frontier"):
        assert column in summary.columns, column
    runs = pd.read_csv(tables / "runs.csv")
    assert len(runs) == 4 and {"seed", "test_accuracy", "train_time_s", "tflite_kib", "params_32bit"} <= set(runs)
    int8 = runs.set_index("variant").loc["fp32+int8"]
    assert int8["tflite_kib"] < runs.set_index("variant").at["fp32", "tflite_kib"] / 3 and pd.isna(int8["test_loss"])
    article = pd.read_csv(tables / "article.csv")
    assert list(article.columns) == ["dataset", "variant", "figure", "article", "ours", "difference"]
    assert article.set_index(["variant", "figure"]).loc[("bnn", "params_32bit"), "difference"] == 0
    latency = pd.read_csv(tables / "latency.csv")
    assert len(latency) == 6 * 4 * 2 and set(latency["variant"]) == {"fp32", "bnn", "fp32+int8", "fp32+int4",
                                                                    "overhead", "overhead_litert"}
    assert set(latency["threads"]) == {1, 2} and latency["headline"].sum() == 6 * 2
    comparison = pd.read_csv(tables / "int8.csv")
    assert comparison[["one_bit", "int8", "threads"]].values.tolist() == [["bnn", "fp32+int8", 1],
                                                                         ["bnn", "fp32+int8", 2]]
    assert set(pd.read_csv(tables / "robustness.csv")["variant"]) == {"fp32", "bnn", "fp32+int8", "fp32+int4"}
    per_class = pd.read_csv(tables / "per_class.csv")
    assert len(per_class) == 2 * 10 and per_class["images"].groupby(per_class["variant"]).sum().to_dict() == {
        "bnn": 2000, "fp32": 2000}
    paired_images = pd.read_csv(tables / "paired_images.csv")
    assert list(paired_images["variant"]) == ["bnn"] and paired_images["images"].tolist() == [2000]
    assert len(pd.read_csv(tables / "confusion.csv")) == 2 * 10 * 10
    curves = pd.read_csv(tables / "curves.csv")
    assert list(curves.columns) == ["dataset", "variant", "seed", "epoch", "split", "accuracy", "loss"]
    for name in ("runs", "summary", "latency", "per_class", "paired_images", "tax", "article", "int8"):
        assert set(pd.read_csv(tables / f"{name}.csv")["dataset"]) == {"mnist"}, name
        assert (tables / f"{name}.md").read_text().startswith("|")
    for name in ("accuracy_vs_memory", "accuracy_vs_binarized_macs", "accuracy_vs_latency", "flash_vs_ram",
                 "training_curves", "accuracy_by_variant", "confusion_difference", "tax_by_dataset"):
        png = repo / "reports" / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    report = (repo / "reports" / "report.md").read_text()
    assert report.startswith("# What a 1-bit network costs") and "## The answer" in report and "![" in report
    assert "## Every run" in (repo / "reports" / "details.md").read_text()
    bnn = summary.set_index("variant").loc["bnn"]
    assert f"{100 * bnn['test_accuracy_mean']:.2f}%" in report
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"mnist"} and set(metrics["mnist"]) == {"fp32", "bnn", "fp32+int8", "fp32+int4"}
    assert "test_accuracy_mean" in metrics["mnist"]["bnn"]
    # the tiny study names no 1-bit network for the same flash (its twins stage derives nothing): no such answer
    assert json.loads((repo / "data" / "twins" / "twins.json").read_text()) == {}
    assert "At equal flash" not in report


def test_the_plots_page_draws_the_study_s_curves_offline(built, rendered_dom, tmp_path):
    repo, _ = built
    _dvc(repo, "plots", "show", "-o", str(tmp_path / "plots-page"))
    dom = rendered_dom(tmp_path / "plots-page" / "index.html")
    plots = yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    assert dom.count('class="marks"') == len(plots)
    assert json.loads(_dvc(repo, "metrics", "show", "--json").stdout)  # dvc reads the metrics file declared


# -- restoring: nothing reruns that has run, here or through a remote ---------

def test_second_repro_is_a_no_op(study):
    assert _up_to_date(study)
    again = _dvc(study, "repro")
    assert _ran(again) == {"check"}, again.stdout


def test_two_clones_share_finished_runs_through_a_remote(study, tmp_path):
    repo = study
    remote = tmp_path / "remote"
    _dvc(repo, "remote", "add", "--local", "-d", "shared", str(remote))
    _dvc(repo, "push", "--run-cache")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    _git(clone, "config", "user.name", "bnn-study tests")
    _git(clone, "config", "user.email", "tests@bnn-study.invalid")
    # A machine that has never seen these runs: no lock file, no results.
    (clone / "dvc.lock").unlink()
    shutil.rmtree(clone / "reports")
    _dvc(clone, "remote", "add", "--local", "-d", "shared", str(remote))
    result = _dvc(clone, "repro", "--pull")
    assert not {s for s in _ran(result) if s.startswith(("train@", "deploy@", "profile@", "benchmark", "corrupt@",
                                                         "robustness@", "quantize@", "robustness_int8@"))}, result.stdout
    assert {"train@mnist-fp32-0", "train@mnist-bnn-0", "deploy@mnist-fp32-0", "deploy@mnist-bnn-0",
            "benchmark"} <= _restored(result)
    for table in ("runs.csv", "summary.csv", "latency.csv", "curves.csv"):
        assert (clone / "reports" / "tables" / table).read_bytes() == (repo / "reports" / "tables" / table).read_bytes()


@pytest.mark.heavy
def test_changing_an_architecture_key_and_back_trains_nothing_again(study):
    repo = study
    before = _finished_outputs(repo)
    changed = _experiment(repo, "-S", "variants.bnn.kernel_quantizer=approx_sign")
    # `twins` reads every variant (DVC reruns it; with nothing named for the same flash it derives nothing)
    assert _ran(changed) == {"twins", "check", "profile@bnn", *_run_stages("mnist-bnn-0"), *TABLE_STAGES}, \
        changed.stdout
    _restore_params(repo)
    back = _dvc(repo, "repro")
    # every stage the change reran, the cheap ones included, comes back from the
    # run cache (`check` runs every time: about a second)
    assert _ran(back) == {"check"}, back.stdout
    assert _ran(changed) - {"check"} <= _restored(back), back.stdout
    assert _finished_outputs(repo) == before
    assert _git(repo, "status", "--porcelain") == ""


@pytest.mark.heavy
def test_another_width_trains_only_that_width_s_runs_and_back_trains_nothing(study):
    repo = study
    before = _finished_outputs(repo)
    result = _experiment(repo, "-S", "study.variants=[fp32,bnn,fp32_w0.5]", "-S", "int8.variants=[fp32,fp32_w0.5]")
    assert _ran(result) == {"check", "profile@fp32_w0.5", *_run_stages("mnist-fp32_w0.5-0"), *TABLE_STAGES}, \
        result.stdout
    record = json.loads((repo / "reports" / "runs" / "mnist-fp32_w0.5-0" / "live" / "spec.json").read_text())
    assert record["variants"]["fp32_w0.5"]["width"] == 0.5
    profile = json.loads((repo / "reports" / "profiles" / "fp32_w0.5" / "profile" / "profile.json").read_text())
    assert profile["params_total"] == 23_850   # conv 160+4640+9248, dense 9248+330, batch norms 2*(16+32+32+32)
    _restore_params(repo)
    back = _dvc(repo, "repro")
    assert _ran(back) == {"check"}, back.stdout
    # the study's outputs as they were (the other width's model stays in the workspace, outside the study)
    assert not (repo / "reports" / "runs" / "mnist-fp32_w0.5-0").exists()
    after = _finished_outputs(repo)
    assert {path: after.get(path) for path in before} == before


def test_a_recipe_no_variant_of_the_study_uses_reruns_only_the_check(study):
    # the other rows of the README's table are computed (test_reruns.py)
    result = _experiment(study, "-S", "recipes.cosine.learning_rate=0.002")
    assert _ran(result) == {"check"}, result.stdout


@pytest.mark.heavy
def test_the_readme_s_recipe_line_retrains_only_that_variant_s_runs(study):
    repo = study
    profile = (repo / "reports" / "profiles" / "bnn" / "profile" / "profile.json").read_bytes()
    result = _experiment(repo, "-S", "variants.bnn.recipe=bop")
    assert _ran(result) == {"twins", "check", *_run_stages("mnist-bnn-0"), *TABLE_STAGES}, result.stdout
    record = json.loads((repo / "reports" / "runs" / "mnist-bnn-0" / "live" / "spec.json").read_text())
    assert record["variants"]["bnn"]["recipe"] == "bop" and set(record["recipes"]) == {"bop"}
    assert (repo / "reports" / "profiles" / "bnn" / "profile" / "profile.json").read_bytes() == profile


def test_a_run_is_locked_with_what_it_trained_with_when_params_change_while_it_runs(study):
    repo = study
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    forced = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-f", "-s", "train@mnist-bnn-0"], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        seen = []
        while not any(line.startswith("Running stage 'train@mnist-bnn-0'") for line in seen):
            line = forced.stdout.readline()
            assert line, "the forced run ended before its stage started:\n" + "".join(seen)
            seen.append(line)
        # refused (DVC's lock is held) while the stage starts TensorFlow and trains
        refused = _dvc(repo, "exp", "run", "-S", "recipes.article.epochs=2", check=False)
        assert refused.returncode != 0, refused.stdout
    finally:
        out, _ = forced.communicate(timeout=600)
    assert forced.returncode == 0, "".join(seen) + out
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train@mnist-bnn-0"]
    slice_dep = next(dep for dep in lock["deps"] if dep["path"] == "data/spec/training/bnn.json")
    assert slice_dep["md5"] == hashlib.md5((repo / "data" / "spec" / "training" / "bnn.json").read_bytes()).hexdigest()
    assert json.loads((repo / "data" / "spec" / "training" / "bnn.json").read_text())["recipes"]["article"]["epochs"] == 1
    assert json.loads((repo / "reports" / "runs" / "mnist-bnn-0" / "live" / "metrics.json").read_text())["epochs"] == 1
    # the refused run left its value in params.yaml, of the same length: git's
    # index believes the file unchanged, so `git checkout params.yaml` would
    # restore nothing; the README's line writes the committed one back
    assert "epochs: 2" in (repo / "params.yaml").read_text()
    # the committed study back: its lock and outputs from git and DVC's cache, nothing to run
    # (the forced run's lock is staged, core.autostage: the lock comes from HEAD,
    # not from git's index)
    _restore_params(repo)
    _git(repo, "checkout", "HEAD", "--", "dvc.lock")
    _dvc(repo, "checkout", "--force")
    assert _ran(_dvc(repo, "repro")) == {"check"}
    assert _up_to_date(repo)


# -- names and values `check` refuses: nothing is lost -----------------------

# Names that climb out of their folder, or into a tracked one: every output
# ends in a fixed leaf (stages/lib/layout.py), so DVC, which checks the new
# pipeline's outputs out before `check` can refuse the name, finds nothing
# to delete at any path they make.
@pytest.mark.parametrize("setting", ["study.datasets=[x/../mnist-shipped]", "study.datasets=[x/../../stages]",
                                     "study.variants=[fp32,x/../../../stages]", 'study.seeds=["a/../../../stages"]',
                                     "study.variants=[fp32,..]", "study.datasets=[mnist,..]"])
def test_a_path_like_name_deletes_no_file(study, setting):
    repo = study
    before = _finished_outputs(repo)
    tracked = {name: (repo / name).read_bytes() for name in _git(repo, "ls-files").splitlines()
               if name not in ("params.yaml", "dvc.lock")}
    uncommitted = [repo / "stages" / "uncommitted.py", repo / "data" / "mnist-shipped" / "uncommitted.txt"]
    for path in uncommitted:
        path.write_text("an edit not yet committed\n")
    result = _dvc(repo, "exp", "run", "-S", setting, check=False)
    assert result.returncode != 0
    # refused by `check`, or by DVC itself when the name makes two outputs one path
    ours = _errors(result)
    said = result.stdout + result.stderr
    refused = ("is specified in" in said or "overlap" in said or "outside of the repository" in said
               or len(ours) == 1 and ("unknown dataset" in ours[0] or "is not a valid name" in ours[0]
                                      or "is not a whole number" in ours[0]))
    assert refused, said
    for path in uncommitted:
        assert path.read_text() == "an edit not yet committed\n"
        path.unlink()
    assert {name: (repo / name).read_bytes() for name in tracked if (repo / name).is_file()} == tracked
    _restore_params(repo)
    _dvc(repo, "checkout")
    _dvc(repo, "repro")
    assert _finished_outputs(repo) == before
    assert _git(repo, "status", "--porcelain", "--ignored", "stages", "data/mnist-shipped") == ""


@pytest.mark.parametrize("setting, message", [
    ("recipes.article.epochs=abc", "error: recipes.article.epochs must be a positive whole number, got 'abc'"),
    ("variants.bnn.kernel_quantizer=ste_sing", "error: variants.bnn.kernel_quantizer: unknown quantizer"),
    ("aggregate.baseline=fp64", "error: aggregate.baseline must name a variant of study.variants"),
    ("robustness.corruptions=[fog,snow]", "error: robustness.corruptions: unknown corruption 'snow'; known corruptions: "),
    ("robustness.severities.fog=9", "error: robustness.severities.fog must be a level from 1 to 5, got 9"),
    # what the int8 conversion cannot do is refused before any conversion replaces a finished one
    ("int8.variants=[fp32,bnn]", "error: int8.variants: bnn is not a float network"),
    ("int8.representative_images=2001", "error: int8.representative_images is 2001, more than the 2000 training "
                                        "images the runs use"),
    ("deploy.max_disagreement_pct=101", "error: deploy.max_disagreement_pct must be a percentage from 0 to 100"),
    ("study.datasets=[mnist,kmnist]", "error: study.datasets: unknown dataset 'kmnist'; known datasets: mnist, "
                                      "fashion_mnist"),
])
def test_a_bad_value_deletes_no_finished_output(study, setting, message):
    repo = study
    before = _finished_outputs(repo)
    result = _dvc(repo, "exp", "run", "-S", setting, check=False)
    assert result.returncode != 0
    ours = _errors(result)
    assert len(ours) == 1 and ours[0].startswith(message), result.stdout + result.stderr
    assert _finished_outputs(repo) == before
    # the README's line brings the committed params back; the failed check
    # left the slices it last wrote, and writes the same ones again
    _restore_params(repo)
    again = _dvc(repo, "repro")
    assert _ran(again) == {"check"}, again.stdout
    assert _up_to_date(repo)
    assert _finished_outputs(repo) == before


def test_a_bad_seed_under_exp_run_clears_the_workspace_copies_only(study):
    # `dvc exp run` checks out the new pipeline's outputs before any stage
    # runs: the runs a bad seed list drops leave the workspace, not the
    # cache, and `dvc checkout` brings every one of them back
    repo = study
    before = _finished_outputs(repo)
    result = _dvc(repo, "exp", "run", "-S", "study.seeds=[-1]", check=False)
    assert result.returncode != 0
    assert _errors(result) == ["error: study.seeds: '-1' is not a whole number from 0 to 2^32 - 1"], \
        result.stdout + result.stderr
    _restore_params(repo)
    _dvc(repo, "checkout")
    _dvc(repo, "repro")
    assert _finished_outputs(repo) == before


def test_a_stage_run_alone_after_a_refused_check_finds_the_last_slices_and_keeps_its_outputs(study):
    # `dvc repro -s <stage>` skips `check`; DVC removes the stage's outputs
    # before it looks at its inputs, so a slice the refused check had taken
    # away made it fail with both gone. The slices persist: the stage finds
    # the ones `check` last wrote, unchanged, and is skipped
    repo = study
    before = _finished_outputs(repo)
    refused = _dvc(repo, "exp", "run", "-S", "recipes.article.epochs=0", check=False)
    assert _errors(refused) == ["error: recipes.article.epochs must be a positive whole number, got 0"]
    alone = _dvc(repo, "repro", "-s", "deploy@mnist-fp32-0")
    assert "Stage 'deploy@mnist-fp32-0' didn't change, skipping" in alone.stdout, alone.stdout + alone.stderr
    assert _finished_outputs(repo) == before
    _restore_params(repo)
    assert _ran(_dvc(repo, "repro")) == {"check"} and _finished_outputs(repo) == before


# The lines docs/experiments.md gives to undo a `dvc exp run` killed midway.
RECOVER_KILLED = ("git switch -", "git restore --staged --worktree params.yaml dvc.lock", "dvc checkout")


def test_a_killed_exp_run_is_undone_by_the_documented_lines(study):
    # DVC detaches HEAD at the experiment's commit and stages its params and
    # lock while it runs; killed (the whole process group, as a closed
    # terminal or an out-of-memory kill does), it leaves them so
    repo = study
    before = _finished_outputs(repo)
    branch = _git(repo, "symbolic-ref", "--short", "HEAD").strip()
    log = (repo.parent / "killed.log").open("w")
    running = subprocess.Popen([sys.executable, "-m", "dvc", "exp", "run", "-S", "recipes.article.learning_rate=0.002"],
                               cwd=repo, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    deadline = time.monotonic() + 600
    while "Running stage 'train@" not in (repo.parent / "killed.log").read_text():
        assert running.poll() is None and time.monotonic() < deadline, (repo.parent / "killed.log").read_text()
        time.sleep(0.5)
    time.sleep(2)
    os.killpg(running.pid, signal.SIGKILL)
    running.wait()
    log.close()
    assert _git(repo, "status", "--porcelain").splitlines() == ["M  dvc.lock", "M  params.yaml"]
    assert subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=repo).returncode != 0   # detached
    documented = " ".join((REPO / "docs" / "experiments.md").read_text().split())
    for line in RECOVER_KILLED:
        assert line in documented, line
        subprocess.run([sys.executable, "-m", "dvc", *line.split()[1:]] if line.startswith("dvc ") else line,
                       shell=not line.startswith("dvc "), cwd=repo, check=True, capture_output=True)
    assert _git(repo, "symbolic-ref", "--short", "HEAD").strip() == branch
    assert _git(repo, "status", "--porcelain") == ""
    assert _ran(_dvc(repo, "repro")) == {"check"}
    assert _finished_outputs(repo) == before


def test_back_to_a_study_its_files_hold_the_same_and_one_line_restores_their_form(study):
    # DVC writes `-S` values back in its own layout, and appends the lock
    # entries it writes (`check` removes those of stages outside the study):
    # a round trip leaves the same values and entries, written otherwise
    repo = study
    committed = {name: _git(repo, "show", f"HEAD:{name}") for name in ("params.yaml", "dvc.lock")}
    _experiment(repo, "-S", "study.seeds=[1]")
    back = _experiment(repo, "-S", "study.seeds=[0]")
    assert _ran(back) == {"check"}, back.stdout
    for name, text in committed.items():
        assert yaml.safe_load((repo / name).read_text()) == yaml.safe_load(text), name
    documented = " ".join((REPO / "docs" / "experiments.md").read_text().split())
    assert "git checkout HEAD -- params.yaml dvc.lock" in documented
    _git(repo, "checkout", "HEAD", "--", "params.yaml", "dvc.lock")
    assert _up_to_date(repo)
    assert _git(repo, "status", "--porcelain") == ""


def test_stale_temporaries_of_a_killed_run_change_nothing_and_go(study):
    repo = study
    before = _finished_outputs(repo)
    # What a SIGKILLed train and profile leave beside their outputs.
    stale = [repo / "reports" / "runs" / "mnist-bnn-0" / ".live.k1ll3d00.tmp",
             repo / "data" / "models" / "mnist-bnn-0" / ".keras.k1ll3d00.tmp",
             repo / "reports" / "profiles" / "bnn" / ".profile.k1ll3d00.tmp"]
    for path in stale:
        path.mkdir()
        (path / "metrics.json").write_text('{"test_accuracy": 0.5')
    assert _up_to_date(repo)
    assert _git(repo, "status", "--porcelain") == ""
    _dvc(repo, "repro", "--force", "--single-item", "profile@bnn")
    assert not stale[2].exists()
    for path in stale[:2]:
        shutil.rmtree(path)
    assert _finished_outputs(repo) == before


# -- int8 -------------------------------------------------------------------

@pytest.mark.heavy
def test_an_int8_breach_deletes_nothing_and_int8_settings_convert_again(study):
    import pandas as pd

    repo = study
    before = _finished_outputs(repo)
    # calibrated on one image, the int8 model loses accuracy: beyond a tolerance of 0, refused in one line
    result = _dvc(repo, "exp", "run", "-S", "int8.representative_images=1", "-S", "int8.max_accuracy_drop_pp=0",
                  check=False)
    _restore_params(repo)
    _git(repo, "checkout", "HEAD", "--", "dvc.lock")
    assert result.returncode != 0
    ours = _errors(result)
    assert len(ours) == 1 and ours[0].startswith("error: the int8 model of data/models/mnist-fp32-0/keras loses "), \
        result.stdout + result.stderr
    assert "more than int8.max_accuracy_drop_pp = 0" in ours[0]
    # DVC removed the stage's outputs before running it; the cache brings them back, nothing else moved
    _dvc(repo, "checkout")
    assert _finished_outputs(repo) == before
    # int8 input and output: the conversions and the tables only, nothing trained or deployed again
    result = _experiment(repo, "-S", "int8.io=int8")
    assert _ran(result) == {"check", "quantize@mnist-fp32-0", "robustness_int8@mnist-fp32-0", *TABLE_STAGES}, \
        result.stdout
    report = json.loads((repo / "reports" / "deploy" / "mnist-fp32+int8-0" / "record" / "deploy.json").read_text())
    assert report["int8"]["io"] == "int8" and report["input_bytes"] == 28 * 28
    summary = pd.read_csv(repo / "reports" / "tables" / "summary.csv")
    assert list(summary["variant"]) == ["fp32", "bnn", "fp32+int8", "fp32+int4"]
    assert "## The other way to shrink a network: int8 post-training quantization" in (
        repo / "reports" / "report.md").read_text()


def test_a_study_without_int8_converts_nothing_and_reports_without_it(study):
    import pandas as pd

    result = _experiment(study, "-S", "int8.variants=[]")
    assert _ran(result) == {"check", *TABLE_STAGES}, result.stdout
    assert list(pd.read_csv(study / "reports" / "tables" / "summary.csv")["variant"]) == ["fp32", "bnn", "fp32+int4"]
    assert "int8 post-training" not in (study / "reports" / "report.md").read_text().split("## What binarizing")[0]


# -- seeds and datasets: only the new runs train, and back restores ---------

def _start_queue(repo, jobs):
    """``dvc queue start -j jobs``, its output to a file: the workers it
    leaves behind inherit its standard streams, and a worker that lingers
    after its queue is done (DVC's celery workers sometimes do) would hold a
    captured pipe open for ever."""
    with open(repo / ".dvc" / "tmp" / "queue-start.log", "w") as log:
        subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)], cwd=repo, check=True,
                       stdout=log, stderr=subprocess.STDOUT, timeout=120,
                       env={**os.environ, "DVC_NO_ANALYTICS": "1"})


def _stop_lingering_workers(repo):
    for pid_file in (repo / ".dvc" / "tmp" / "exps" / "celery").glob("dvc-exp-worker-*.pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass


def _wait_for_queue(repo, timeout_s=900):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _dvc(repo, "queue", "status").stdout
        if not any(word in status for word in ("Running", "Queued")):
            return status
        time.sleep(5)
    raise AssertionError(f"the queue did not finish in {timeout_s} s:\n{status}")


@pytest.mark.heavy
def test_seeds_queued_in_parallel_slices_then_the_whole_study_train_nothing_twice(study):
    repo = study
    # the README's lines: each slice trains its seed's runs (target `train`)
    for seed in (1, 2):
        _dvc(repo, "exp", "run", "--queue", "-S", f"study.seeds=[{seed}]", "--name", f"slice-{seed}", "train")
    _start_queue(repo, 2)
    try:
        status = _wait_for_queue(repo)
    finally:
        _stop_lingering_workers(repo)
    assert status.count("Success") == 2, status
    # the whole study's trainings (what follows them, for new runs, is the
    # adding-a-dataset test's): both slices' come back from the run cache
    whole = _dvc(repo, "exp", "run", "-S", "study.seeds=[0,1,2]", "--name", "whole", "train")
    assert _ran(whole) == {"check"}, whole.stdout
    assert {f"train@mnist-{v}-{s}" for v in ("fp32", "bnn") for s in (1, 2)} <= _restored(whole)
    for run in (f"mnist-{v}-{s}" for v in ("fp32", "bnn") for s in (0, 1, 2)):
        assert (repo / "data" / "models" / run / "keras" / "model.keras").is_file(), run


@pytest.mark.heavy
def test_adding_a_dataset_trains_only_its_runs_and_back_restores_the_tables(study):
    import pandas as pd

    repo = study
    timings = (repo / "reports" / "benchmark" / "timings.csv").read_bytes()
    result = _dvc(repo, "exp", "run", "-S", "study.datasets=[mnist,fashion_mnist]", "--name", "two-datasets")
    assert _ran(result) == {"check", "download@fashion_mnist", "corrupt@fashion_mnist",
                            *_run_stages("fashion_mnist-fp32-0", "fashion_mnist-bnn-0"), *TABLE_STAGES}, \
        result.stdout
    assert "served by data/fashion_mnist-shipped" in result.stdout + result.stderr
    tax = pd.read_csv(repo / "reports" / "tables" / "tax.csv")
    assert tax[["dataset", "variant"]].values.tolist() == [
        [dataset, variant] for dataset in ("mnist", "fashion_mnist") for variant in ("bnn", "fp32+int8", "fp32+int4")]
    per_class = pd.read_csv(repo / "reports" / "tables" / "per_class.csv")
    assert "Ankle boot" in set(per_class.loc[per_class["dataset"] == "fashion_mnist", "class_name"])
    report = (repo / "reports" / "report.md").read_text()
    # the answer table's first column is as wide as its longest label,
    # which names the CPU: the row is found whatever the padding
    assert re.search(r"^\| Fashion-MNIST test accuracy \(1 seed: no interval\) +\|", report, re.MULTILINE), report
    assert "## Fashion-MNIST: per class" in (repo / "reports" / "details.md").read_text()
    assert set(json.loads((repo / "reports" / "metrics.json").read_text())) == {"mnist", "fashion_mnist"}
    # back to the defaults: `check` takes the Fashion-MNIST folders out of the workspace (they stay in the
    # cache) and their entries out of dvc.lock, so the table stages come back from the run cache, not re-timed
    back = _experiment(repo, "-S", "study.datasets=[mnist]")
    assert _ran(back) == {"check"}, back.stdout
    assert set(TABLE_STAGES) <= _restored(back), back.stdout
    assert (repo / "reports" / "benchmark" / "timings.csv").read_bytes() == timings
    # (check's own entry still lists every dataset's sources among its params)
    assert not [stage for stage in yaml.safe_load((repo / "dvc.lock").read_text())["stages"] if "fashion" in stage]
    assert not [path for root in ("reports/runs", "data/deployed", "data/corrupted")
                for path in (repo / root).iterdir() if "fashion" in path.name]


# -- evaluation and listing -------------------------------------------------

def test_an_experiment_is_listed_with_its_metrics_and_applied(study):
    repo = study
    # the headline option set changes which latency the summary reports and
    # under which options the deployed models are checked on corrupted images
    result = _dvc(repo, "exp", "run", "-S", "benchmark.headline_options=bgemm", "--name", "bgemm-headline")
    assert _ran(result) == {"check", "robustness@mnist-fp32-0", "robustness@mnist-bnn-0",
                            "robustness_int8@mnist-fp32-0", "robustness_int4@mnist-fp32-0", "aggregate", "plots",
                            "report"}, result.stdout
    experiments = json.loads(_dvc(repo, "exp", "show", "--json").stdout)
    text = json.dumps(experiments)
    assert "bgemm-headline" in text
    assert "test_accuracy_mean" in text and "latency_median_us" in text
    _dvc(repo, "exp", "apply", "bgemm-headline")
    again = _dvc(repo, "repro")
    assert _ran(again) == {"check"}, again.stdout


@pytest.mark.heavy
def test_a_learning_rate_that_leaves_every_variant_at_chance_still_reports(study):
    result = _dvc(study, "exp", "run", "-S", "recipes.article.learning_rate=1e6", "-S", "int8.variants=[]",
                  "-S", "int4.variants=[]", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    import pandas as pd

    summary = pd.read_csv(study / "reports" / "tables" / "summary.csv").set_index("variant")
    assert summary["runs_at_chance"].to_dict() == {"fp32": 1, "bnn": 1}, summary
    report = (study / "reports" / "report.md").read_text()
    assert not summary["on_pareto_frontier"].any()
    assert "Every variant of this study has runs at chance level, so no variant is picked" in report


def test_fewer_corruptions_evaluate_again_and_train_nothing(study):
    import pandas as pd

    result = _experiment(study, "-S", "robustness.corruptions=[fog,stripe]")
    assert _ran(result) == {"check", "corrupt@mnist", "robustness@mnist-fp32-0", "robustness@mnist-bnn-0",
                            "robustness_int8@mnist-fp32-0", "robustness_int4@mnist-fp32-0", "aggregate", "plots",
                            "report"}, result.stdout
    gaps = pd.read_csv(study / "reports" / "tables" / "robustness_gap.csv")
    assert gaps[["dataset", "variant", "corruption"]].values.tolist() == [
        ["mnist", variant, corruption] for variant in ("bnn", "fp32+int8", "fp32+int4") for corruption in ("fog", "stripe")]


# -- damaged files ------------------------------------------------------------

def _garbage_model(path):
    return b"TFL3garbage"


def _truncated(path):
    return path.read_bytes()[:len(path.read_bytes()) // 2]


def _text_accuracy(path):
    return json.dumps({**json.loads(path.read_text()), "test_accuracy": "abc"}).encode()


def _text_cell(path):
    text = path.read_text().splitlines()
    header = text[0].split(",")
    cells = text[2].split(",")
    cells[header.index("test_accuracy_mean")] = "abc"
    return ("\n".join([*text[:2], ",".join(cells), *text[3:]]) + "\n").encode()


@pytest.mark.parametrize("stage, path, damage, message", [
    ("benchmark", "data/deployed/mnist-bnn-0/tflite/model.tflite", _garbage_model,
     "data/deployed/mnist-bnn-0/tflite/model.tflite is not the file its record "
     "(reports/deploy/mnist-bnn-0/record/deploy.json) describes (11 bytes): it was damaged"),
    # a truncated file crashed the interpreter with a signal: it is refused before it is loaded
    ("robustness@mnist-bnn-0", "data/deployed/mnist-bnn-0/tflite/model.tflite", _truncated,
     "data/deployed/mnist-bnn-0/tflite/model.tflite is not the file its record"),
    ("robustness_int8@mnist-fp32-0", "data/deployed/mnist-fp32+int8-0/tflite/model.tflite", _truncated,
     "data/deployed/mnist-fp32+int8-0/tflite/model.tflite is not the file its record"),
    ("robustness@mnist-bnn-0", "data/corrupted/mnist/images/fog-images-idx3-ubyte", _garbage_model,
     "data/corrupted/mnist/images/fog-images-idx3-ubyte does not match its checksum"),
    ("aggregate", "reports/runs/mnist-bnn-0/live/metrics.json", _text_accuracy,
     "reports/runs/mnist-bnn-0/live/metrics.json: test_accuracy must be a number from 0 to 1, got 'abc'"),
    ("plots", "reports/tables/summary.csv", _text_cell,
     "summary.csv: test_accuracy_mean in row 2 must be a number from 0 to 1, got 'abc'"),
])
def test_a_damaged_file_under_dvc_is_one_line_and_checkout_restores_it(study, stage, path, damage, message):
    repo = study
    before = _finished_outputs(repo)
    target = repo / path
    damaged = damage(target)
    target.unlink()  # a copy DVC checked out: replace it, never write through it into the cache
    target.write_bytes(damaged)
    result = _dvc(repo, "repro", "-f", "-s", stage, check=False)
    assert result.returncode != 0
    ours = _errors(result)
    assert len(ours) == 1 and message in ours[0], result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    _dvc(repo, "checkout", "--force")
    _dvc(repo, "repro")
    assert _finished_outputs(repo) == before
