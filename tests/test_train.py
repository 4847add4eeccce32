import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import REPO
from stages.networks import variant_from_params
from stages.params import TrainSettings
from stages.train import load_model, train_run

TINY = TrainSettings(learning_rate=0.001, batch_size=64, epochs=1, steps_per_execution=8)


def _train(study_params, mnist_dir, out, variant="bnn", seed=0):
    return train_run(
        variant_from_params(variant, study_params["variants"]), seed, TINY, mnist_dir,
        out / "model", out / "live", train_limit=2000, test_limit=500, verbose=0,
    )


@pytest.fixture(scope="module")
def bnn_run(study_params, mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bnn-0")
    return out, _train(study_params, mnist_dir, out)


def test_rerun_reproduces_bit_for_bit(study_params, mnist_dir, bnn_run, tmp_path):
    _, first = bnn_run
    second = _train(study_params, mnist_dir, tmp_path)
    assert second.test_accuracy == first.test_accuracy
    assert second.test_loss == first.test_loss


def test_another_seed_gives_another_run(study_params, mnist_dir, bnn_run, tmp_path):
    _, first = bnn_run
    other = _train(study_params, mnist_dir, tmp_path, seed=1)
    assert other.test_loss != first.test_loss


def test_run_learns_and_logs_its_metrics(bnn_run):
    out, result = bnn_run
    assert result.train_images == 2000 and result.test_images == 500
    assert result.test_accuracy > 0.5  # far above chance (0.1) after one epoch on 2,000 images
    assert result.train_time_s > 0 and result.train_images_per_s > 0
    metrics = json.loads((out / "live" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == result.test_accuracy
    assert metrics["test_loss"] == result.test_loss
    assert metrics["train_images_per_s"] == pytest.approx(2000 / metrics["train_time_s"])
    for curve in ("train/accuracy", "train/loss", "eval/accuracy", "eval/loss"):
        rows = (out / "live" / "plots" / "metrics" / f"{curve}.tsv").read_text().splitlines()
        assert len(rows) == 1 + TINY.epochs
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_model_round_trip_gives_the_same_predictions(study_params, mnist_dir, bnn_run):
    from stages.mnist import load_split, scale_images

    out, result = bnn_run
    model = load_model(out / "model")
    assert model.get_layer("conv2").kernel_quantizer.__class__.__name__ == "SteSign"
    x, y = load_split(mnist_dir, "test", 500)
    probabilities = model.predict(scale_images(x), verbose=0)
    assert float(np.mean(probabilities.argmax(axis=1) == y)) == pytest.approx(result.test_accuracy, abs=1e-6)
    again = load_model(out / "model").predict(scale_images(x), verbose=0)
    np.testing.assert_array_equal(probabilities, again)


def _run_train_cli(tmp_path, params, mnist_dir, variant="bnn", seed="0"):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, "-m", "stages.train", "--variant", variant, "--seed", seed, "--params", str(path),
         "--data", str(mnist_dir), "--model-out", str(tmp_path / "model"), "--live-out", str(tmp_path / "live")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )


def _with(params, dotted, value):
    params = copy.deepcopy(params)
    *path, last = dotted.split(".")
    node = params
    for key in path:
        node = node[key]
    node[last] = value
    return params


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("study.variants", ["fp32", "bnm"], "unknown variant 'bnm': params.yaml defines bnn, bnn_fp_edges, bnn_full, bwn, dorefa4, dorefa8, fp32, ternary under `variants`"),
        ("study.variants", [], "study.variants must be a non-empty list"),
        ("study.seeds", [], "study.seeds must be a non-empty list"),
        ("study.seeds", [0, 1.5], "study.seeds: 1.5 is not a whole number >= 0"),
        ("study.seeds", [0, "one"], "study.seeds: 'one' is not a whole number >= 0"),
        ("train.epochs", 0, "train.epochs must be a positive whole number, got 0"),
        ("train.batch_size", -64, "train.batch_size must be a positive whole number, got -64"),
        ("train.learning_rate", "fast", "train.learning_rate must be a positive number"),
        ("data.train_limit", 0, "data.train_limit must be a positive whole number"),
        ("variants.bnn.kernel_quantizer", "ste_sing", "variants.bnn.kernel_quantizer: unknown quantizer 'ste_sing'"),
    ],
)
def test_bad_params_stop_before_training_with_one_line(study_params, mnist_dir, tmp_path, dotted, value, message):
    # The fp32 run fails too: each run checks the whole study before training.
    result = _run_train_cli(tmp_path, _with(study_params, dotted, value), mnist_dir, variant="fp32")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}" or \
        result.stderr.strip().splitlines()[-1].startswith(f"error: {message}")
    assert "Traceback" not in result.stderr and "training fp32" not in result.stderr
    assert not (tmp_path / "model").exists() and not (tmp_path / "live").exists()


def test_missing_data_says_how_to_fix(study_params, tmp_path):
    result = _run_train_cli(tmp_path, study_params, tmp_path / "no-data")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "run `dvc repro download`" in result.stderr
    assert not (tmp_path / "model").exists()
