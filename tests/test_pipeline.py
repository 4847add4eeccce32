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
    _set_params(repo, **{"data.train_limit": 1000, "data.test_limit": 500, "train.epochs": 1,
                         "study.seeds": [0], "data.sources": ["data/mnist-shipped"]})
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "study")
    result = _dvc(repo, "repro")
    return repo, result


def test_repro_writes_every_output(study_repo):
    repo, result = study_repo
    for variant in ("fp32", "bnn"):
        assert (repo / "data" / "models" / f"{variant}-0" / "model.keras").is_file()
        metrics = json.loads((repo / "reports" / "runs" / f"{variant}-0" / "metrics.json").read_text())
        assert metrics["test_images"] == 500 and metrics["train_images"] == 1000
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
    assert set(json.loads(status)) == {"train@fp32-1", "train@bnn-1"}
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


def test_bad_param_fails_the_pipeline_with_one_line(study_repo):
    repo, _ = study_repo
    _set_params(repo, **{"train.epochs": 0})
    try:
        result = _dvc(repo, "repro", check=False)
    finally:
        _set_params(repo, **{"train.epochs": 1})
    assert result.returncode != 0
    assert "error: train.epochs must be a positive whole number, got 0" in result.stderr + result.stdout
