import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import REPO, with_param
from stages.lib.training.variants import variant_from_params
from stages.lib.params import TrainSettings
from stages.lib.training.recipes import recipe_from_params
from stages.lib.training.trained import load_model
from stages.lib.params import Validation
from stages.train import train_run

TINY = TrainSettings(steps_per_execution=8)


def tiny_recipe(study_params, name="article", epochs=1):
    """A recipe of params.yaml, cut to ``epochs``."""
    return dataclasses.replace(recipe_from_params(name, study_params["recipes"]), epochs=epochs)


def _train(study_params, mnist_dir, out, variant="bnn", seed=0, recipe="article"):
    return train_run(
        variant_from_params(variant, study_params["variants"]), tiny_recipe(study_params, recipe), seed, TINY,
        mnist_dir, out / "model", out / "live", train_limit=2000, test_limit=500, verbose=0,
        validation=Validation(200, 0),
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
    # 200 of the 2,000 training images held out for validation
    assert result.train_images == 1800 and result.validation_images == 200 and result.test_images == 500
    assert result.test_accuracy > 0.5  # far above chance (0.1) after one epoch on 2,000 images
    assert result.train_time_s > 0 and result.train_images_per_s > 0
    metrics = json.loads((out / "live" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == result.test_accuracy
    assert metrics["test_loss"] == result.test_loss
    assert metrics["train_images_per_s"] == pytest.approx(1800 / metrics["train_time_s"])
    for curve in ("train/accuracy", "train/loss", "eval/accuracy", "eval/loss"):
        rows = (out / "live" / "plots" / "metrics" / f"{curve}.tsv").read_text().splitlines()
        assert len(rows) == 1 + result.epochs
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_run_records_every_test_image_s_answer(mnist_dir, bnn_run):
    import pandas as pd

    from stages.lib.data.datasets import load_split

    out, result = bnn_run
    predictions = pd.read_csv(out / "live" / "predictions.csv")
    assert list(predictions.columns) == ["label", "predicted"] and len(predictions) == 500
    _, labels = load_split(mnist_dir, "test", 500)
    assert (predictions["label"] == labels).all()
    assert (predictions["label"] == predictions["predicted"]).mean() == pytest.approx(result.test_accuracy, abs=1e-6)


def test_model_round_trip_gives_the_same_predictions(study_params, mnist_dir, bnn_run):
    from stages.lib.data.datasets import load_split, scale_images

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


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("recipes.article.epochs", 0, "recipes.article.epochs must be a positive whole number, got 0"),
        ("recipes.article.learning_rate", "fast", "recipes.article.learning_rate must be a positive number"),
        ("variants.bnn.recipe", "bopp", "variants.bnn.recipe: unknown recipe 'bopp'; params.yaml defines article, "
                                        "bop, cosine under `recipes`"),
        ("data.train_limit", 0, "data.train_limit must be a positive whole number"),
        ("variants.bnn.kernel_quantizer", "ste_sing", "variants.bnn.kernel_quantizer: unknown quantizer 'ste_sing'"),
    ],
)
def test_bad_params_stop_before_training_with_one_line(study_params, mnist_dir, tmp_path, dotted, value, message):
    # The `check` stage checks the whole file first; a run still checks what it reads.
    result = _run_train_cli(tmp_path, with_param(study_params, dotted, value), mnist_dir)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}")
    assert "Traceback" not in result.stderr and "training bnn" not in result.stderr
    assert not (tmp_path / "model").exists() and not (tmp_path / "live").exists()


def test_a_diverged_run_is_an_error_and_writes_nothing(study_params, mnist_dir, tmp_path):
    params = with_param(with_param(study_params, "recipes.article.learning_rate", 1e30), "recipes.article.epochs", 1)
    params = with_param(with_param(with_param(params, "data.train_limit", 640), "data.test_limit", 200),
                        "data.validation_images", 64)
    result = _run_train_cli(tmp_path, params, mnist_dir, variant="fp32")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: mnist fp32 seed 0 diverged: its training loss in epoch 1, step "), last
    assert last.endswith("is nan; nothing was written. Lower recipes.article.learning_rate or change the variant's "
                         "quantizers")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_logs_one_line_per_epoch_outside_a_terminal(study_params, mnist_dir, tmp_path):
    params = with_param(with_param(with_param(study_params, "recipes.article.epochs", 2), "data.train_limit", 640),
                        "data.validation_images", 64)
    result = _run_train_cli(tmp_path, with_param(params, "data.test_limit", 200), mnist_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # no progress bar when stdout is not a terminal
    epochs = [line for line in result.stderr.splitlines() if " epoch " in line]
    assert [line.split(" epoch ")[1].split(":")[0] for line in epochs] == ["1/2", "2/2"]
    assert max(len(line) for line in result.stderr.splitlines()) < 200


def test_tracing_without_autograph_changes_no_number(study_params, mnist_dir, tmp_path, monkeypatch):
    import stages.train

    fast = _train(study_params, mnist_dir, tmp_path / "fast", seed=3)
    monkeypatch.setattr(stages.train, "without_autograph", lambda model: model)
    converted = _train(study_params, mnist_dir, tmp_path / "autograph", seed=3)
    timing = {"train_time_s": fast.train_time_s, "train_images_per_s": fast.train_images_per_s}
    assert fast == dataclasses.replace(converted, **timing)
    for name in ("train/loss", "eval/accuracy"):
        curve = f"live/plots/metrics/{name}.tsv"
        fast_rows = [row.split("\t")[1:] for row in (tmp_path / "fast" / curve).read_text().splitlines()]
        converted_rows = [row.split("\t")[1:] for row in (tmp_path / "autograph" / curve).read_text().splitlines()]
        assert fast_rows == converted_rows


def test_missing_data_says_how_to_fix(study_params, tmp_path):
    result = _run_train_cli(tmp_path, study_params, tmp_path / "no-data")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "run `dvc repro download`" in result.stderr
    assert not (tmp_path / "model").exists()


def test_a_full_disk_during_training_gives_one_line(study_params, mnist_dir, small_disk, tmp_path):
    disk = small_disk(256)  # room for the logs, not for the model
    params = with_param(with_param(with_param(study_params, "recipes.article.epochs", 1), "data.train_limit", 640),
                        "data.validation_images", 64)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(with_param(params, "data.test_limit", 200)))
    result = subprocess.run(
        [sys.executable, "-m", "stages.train", "--variant", "fp32", "--seed", "0", "--params", str(path),
         "--data", str(mnist_dir), "--model-out", str(disk / "model"), "--live-out", str(disk / "live")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [line for line in result.stderr.strip().splitlines()[-1:]]
    assert errors[0].startswith("error: no space left on this machine's disk"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert list(disk.iterdir()) == []
