"""The DVC wiring, end to end, on a copy of this repository with tiny params."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow


def _dvc(repo, *args, check=True):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True,
                            timeout=1200, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _set_params(repo, **changes):
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *keys, last = dotted.split(".")
        node = params
        for key in keys:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def study_repo(tmp_path_factory):
    """A git + DVC repository holding this project's files, with tiny params
    (1,000 training images, 500 test images, one epoch, one seed), reproduced
    once."""
    repo = tmp_path_factory.mktemp("study")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if not (REPO / name).exists() or name in ("dvc.lock",) or name.startswith(("reports/", "data/models/")):
            continue
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, repo / name)
    _set_params(repo, **{"data.train_limit": 1000, "data.test_limit": None, "train.epochs": 1,
                         "study.seeds": [0], "data.sources": ["data/mnist-shipped"]})
    _git(repo, "init", "-q")
    # DVC commits experiments itself: give the repository an identity of its own.
    _git(repo, "config", "user.name", "bnn-study tests")
    _git(repo, "config", "user.email", "tests@bnn-study.invalid")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "study")
    result = _dvc(repo, "repro")
    return repo, result


def test_repro_writes_every_output(study_repo):
    repo, result = study_repo
    for variant in ("fp32", "bnn"):
        assert (repo / "data" / "models" / f"{variant}-0" / "model.keras").is_file()
        assert (repo / "data" / "deployed" / f"{variant}-0" / "model.tflite").is_file()
        deployed = json.loads((repo / "reports" / "deploy" / f"{variant}-0" / "deploy.json").read_text())
        assert deployed["agreement"] >= 0.999
        metrics = json.loads((repo / "reports" / "runs" / f"{variant}-0" / "metrics.json").read_text())
        assert metrics["test_images"] == 10000 and metrics["train_images"] == 1000
        assert 0.0 <= metrics["test_accuracy"] <= 1.0
        profile = json.loads((repo / "reports" / "profiles" / variant / "profile.json").read_text())
        assert profile["macs_total"] == 2794240
    assert "served by data/mnist-shipped" in result.stderr + result.stdout


def test_second_repro_is_a_no_op(study_repo):
    repo, _ = study_repo
    assert "Data and pipelines are up to date" in _dvc(repo, "status").stdout
    again = _dvc(repo, "repro")
    assert "Running stage" not in again.stdout


def test_adding_a_seed_trains_only_that_seed(study_repo):
    repo, _ = study_repo
    _set_params(repo, **{"study.seeds": [0, 1]})
    status = _dvc(repo, "status", "--json").stdout
    assert set(json.loads(status)) == {"train@fp32-1", "train@bnn-1", "deploy@fp32-1", "deploy@bnn-1", "aggregate"}
    _set_params(repo, **{"study.seeds": [0]})


def test_changing_a_variant_reruns_only_its_stages(study_repo):
    repo, _ = study_repo
    _set_params(repo, **{"variants.bnn.kernel_quantizer": "approx_sign"})
    assert set(json.loads(_dvc(repo, "status", "--json").stdout)) == {"profile@bnn", "train@bnn-0"}
    _set_params(repo, **{"variants.bnn.kernel_quantizer": "ste_sign"})


def test_changing_train_params_retrains_every_run(study_repo):
    repo, _ = study_repo
    _set_params(repo, **{"train.learning_rate": 0.002})
    assert set(json.loads(_dvc(repo, "status", "--json").stdout)) == {"train@fp32-0", "train@bnn-0"}
    _set_params(repo, **{"train.learning_rate": 0.001})


def test_tables_plots_and_report(study_repo):
    import pandas as pd

    repo, _ = study_repo
    tables = repo / "reports" / "tables"
    summary = pd.read_csv(tables / "summary.csv")
    assert list(summary["variant"]) == ["fp32", "bnn"]
    for column in ("seeds", "test_accuracy_mean", "test_accuracy_std", "test_accuracy_ci95_low",
                   "test_accuracy_ci95_high", "params_total", "memory_kib", "compression_vs_baseline", "macs_total",
                   "binarized_mac_fraction", "accuracy_gap_vs_baseline", "accuracy_gap_ci95_low",
                   "tflite_kib", "latency_median_us", "speedup_vs_baseline", "converted_accuracy_mean"):
        assert column in summary.columns, column
    runs = pd.read_csv(tables / "runs.csv")
    assert len(runs) == 2 and {"seed", "test_accuracy", "train_time_s", "tflite_kib", "params_32bit"} <= set(runs)
    article = pd.read_csv(tables / "article.csv")
    assert list(article.columns) == ["variant", "figure", "article", "ours", "difference"]
    assert article.set_index(["variant", "figure"]).loc[("bnn", "params_32bit"), "difference"] == 0
    curves = pd.read_csv(tables / "curves.csv")
    assert list(curves.columns) == ["variant", "seed", "epoch", "split", "accuracy", "loss"]
    for name in ("runs", "summary", "article"):
        assert (tables / f"{name}.md").read_text().startswith("|")
    for name in ("accuracy_vs_memory", "accuracy_vs_binarized_macs", "accuracy_vs_latency", "training_curves",
                 "accuracy_by_variant"):
        png = repo / "reports" / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    report = (repo / "reports" / "report.md").read_text()
    assert "## Findings" in report and "![" in report
    bnn = summary.set_index("variant").loc["bnn"]
    assert f"{100 * bnn['test_accuracy_mean']:.2f}%" in report
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"fp32", "bnn"} and "test_accuracy_mean" in metrics["bnn"]
    shown = json.loads(_dvc(repo, "metrics", "show", "--json").stdout)
    assert shown  # dvc reads the metrics file the pipeline declares


def test_experiment_is_listed_with_its_metrics(study_repo):
    repo, _ = study_repo
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "reproduced")
    _dvc(repo, "exp", "run", "-S", "train.epochs=2", "--name", "two-epochs")
    experiments = json.loads(_dvc(repo, "exp", "show", "--json").stdout)
    text = json.dumps(experiments)
    assert "two-epochs" in text
    assert "test_accuracy_mean" in text
    _dvc(repo, "exp", "apply", "two-epochs")
    again = _dvc(repo, "repro")
    assert "Running stage" not in again.stdout


def test_bad_param_fails_the_pipeline_with_one_line(study_repo):
    # Last: a failed run removes the outputs of the stage it stopped.
    repo, _ = study_repo
    _set_params(repo, **{"train.epochs": 0})
    try:
        result = _dvc(repo, "repro", check=False)
    finally:
        _set_params(repo, **{"train.epochs": 1})
    assert result.returncode != 0
    assert "error: train.epochs must be a positive whole number, got 0" in result.stderr + result.stdout
