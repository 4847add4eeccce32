"""The `check` stage: the whole params.yaml is checked before anything runs."""

import subprocess
import sys

import pytest
import yaml

from conftest import REPO, with_param
from stages.check import PASSED, main
from stages.lib.common import run_cli


def _write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path, tmp_path / "checked.txt"


def _check(tmp_path, params, capsys):
    """The stage's command line, in this process: (exit status, stderr, output file)."""
    path, out = _write(tmp_path, params)
    status = run_cli(main, ["--params", str(path), "--out", str(out)])
    return status, capsys.readouterr().err, out


def test_valid_params_pass_and_the_output_never_changes(study_params, tmp_path):
    path, out = _write(tmp_path, study_params)
    result = subprocess.run([sys.executable, "-m", "stages.check", "--params", str(path), "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == PASSED
    # Another valid study: the same bytes, so no downstream stage goes stale.
    other = with_param(with_param(study_params, "study.seeds", [5, 6]), "study.variants", ["bnn_full", "dorefa4"])
    assert run_cli(main, ["--params", str(_write(tmp_path, with_param(other, "aggregate.baseline", "dorefa4"))[0]),
                          "--out", str(out)]) == 0
    assert out.read_text() == PASSED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checked.txt", "params.yaml"]


BAD_PARAMS = [
    ("study.variants", ["fp32", "bnm"],
     "unknown variant 'bnm': params.yaml defines bnn, bnn_bop, bnn_cosine, bnn_fp_edges, bnn_fp_edges_bop, "
     "bnn_fp_edges_cosine, bnn_full, bwn, dorefa4, dorefa8, fp32, fp32_cosine, ternary under `variants`"),
    ("study.variants", [], "study.variants must be a non-empty list"),
    ("study.variants", ["fp32", "../bnn"], "study.variants: '../bnn' is not a valid name; use letters, digits and "
                                           "underscores only"),
    ("study.variants", ["fp32", "bnn/x"], "study.variants: 'bnn/x' is not a valid name"),
    ("study.seeds", [], "study.seeds must be a non-empty list"),
    ("study.seeds", [0, 1.5], "study.seeds: 1.5 is not a whole number >= 0"),
    ("study.seeds", [0, "one"], "study.seeds: 'one' is not a whole number >= 0"),
    ("study.extended", ["fp32", "int3"], "study.extended names int3, not defined under `variants`"),
    ("recipes.article.epochs", 0, "recipes.article.epochs must be a positive whole number, got 0"),
    ("recipes.article.epochs", -6, "recipes.article.epochs must be a positive whole number, got -6"),
    ("recipes.article.epochs", "abc", "recipes.article.epochs must be a positive whole number, got 'abc'"),
    ("recipes.article.batch_size", -64, "recipes.article.batch_size must be a positive whole number, got -64"),
    ("recipes.article.learning_rate", "fast", "recipes.article.learning_rate must be a positive number"),
    ("recipes.article.optimizer", "adamw", "recipes.article.optimizer: unknown optimizer 'adamw'; valid: adam, sgd"),
    ("recipes.article.schedule", {"name": "linear"}, "recipes.article.schedule: unknown schedule 'linear'; valid: "
                                                     "constant, cosine, step"),
    ("recipes.article.schedule", "cosine", "recipes.article.schedule: unknown schedule 'cosine'"),
    ("recipes.cosine.schedule", {"name": "cosine", "warmup_epochs": 0}, "recipes.cosine.schedule lacks final_fraction "
                                                                        "for a cosine schedule"),
    ("recipes.cosine.schedule", {"name": "cosine", "warmup_epochs": 12, "final_fraction": 0.0},
     "recipes.cosine.schedule.warmup_epochs must be a whole number from 0 to epochs - 1 (11), got 12"),
    ("recipes.cosine.schedule", {"name": "step", "every_epochs": 3, "factor": 2},
     "recipes.cosine.schedule.factor must be a number between 0 and 1, got 2"),
    ("recipes.cosine.schedule", {"name": "constant", "factor": 0.1},
     "recipes.cosine.schedule has unknown keys factor for a constant schedule; valid keys: none"),
    ("recipes.article.batchnorm_momentum", 1.0, "recipes.article.batchnorm_momentum must be a number from 0 to below 1"),
    ("recipes.bop.bop", {"threshold": 1e-6}, "recipes.bop.bop must be null or a mapping of threshold and gamma"),
    ("recipes.bop.bop", {"threshold": -1e-6, "gamma": 1e-3}, "recipes.bop.bop.threshold must be a positive number"),
    ("recipes.bop.bop", {"threshold": 1e-6, "gamma": 0}, "recipes.bop.bop.gamma must be a number above 0 and at most 1"),
    ("recipes.bop.epoch", 3, "recipes.bop has unknown keys epoch; valid keys: optimizer, learning_rate, schedule, "
                             "epochs, batch_size, batchnorm_momentum, bop"),
    ("recipes.slow", {"optimizer": "adam"}, "recipes.slow lacks learning_rate, schedule, epochs"),
    # a variant outside the study names a recipe that does not exist
    ("variants.bnn_bop.recipe", "bopp", "variants.bnn_bop.recipe: unknown recipe 'bopp'; params.yaml defines article, "
                                        "bop, cosine under `recipes`"),
    ("train.epochs", 3, "train has unknown keys epochs; valid keys: steps_per_execution"),
    ("data.train_limit", 0, "data.train_limit must be a positive whole number"),
    ("data.sources", [], "data.sources must map each dataset (mnist, fashion_mnist) to its list of URLs"),
    ("data.sources.mnist", [], "data.sources.mnist must be a non-empty list of URLs or folders"),
    # a dataset outside the study is checked too
    ("data.sources.fashion_mnist", "data/fashion_mnist-shipped",
     "data.sources.fashion_mnist must be a non-empty list of URLs or folders"),
    ("study.datasets", ["mnist", "cifar10"],
     "study.datasets: unknown dataset 'cifar10'; known datasets: mnist, fashion_mnist"),
    ("study.datasets", [], "study.datasets must be a non-empty list of dataset names"),
    ("study.datasets", ["mnist", "mnist"], "study.datasets lists a dataset twice"),
    ("data.retries", -1, "data.retries must be a whole number >= 0"),
    ("variants.bnn.kernel_quantizer", "ste_sing", "variants.bnn.kernel_quantizer: unknown quantizer 'ste_sing'"),
    # A variant outside the study is checked too: a later `-S study.variants=...` would run it.
    ("variants.dorefa4.kernel_quantizer.k_bit", 0,
     "variants.dorefa4.kernel_quantizer.k_bit must be a whole number >= 1, got 0"),
    ("variants.dorefa4.input_quantizer.k_bit", 2.5,
     "variants.dorefa4.input_quantizer.k_bit must be a whole number >= 1, got 2.5"),
    ("variants.dorefa4.input_quantizer.mode", "both",
     "variants.dorefa4.input_quantizer.mode must be activations or weights, got 'both'"),
    ("variants.ternary.kernel_quantizer", {"name": "ste_tern", "threshold_value": -0.1},
     "variants.ternary.kernel_quantizer.threshold_value must be a positive number, got -0.1"),
    ("variants.bnn.kernel_quantizer", {"name": "ste_sign", "clip_value": 0},
     "variants.bnn.kernel_quantizer.clip_value must be a positive number or null, got 0"),
    ("variants.bnn_x", {}, "variants.bnn_x lacks input_range, kernel_quantizer"),
    ("variants.bnn_y", "ste_sign", "variants.bnn_y must be a mapping"),
    ("variants.bad-name", {}, "variants: 'bad-name' is not a valid name"),
    ("benchmark.threads", 1, "benchmark.threads must be a non-empty list of thread counts, got 1"),
    ("benchmark.threads", [1, 0], "benchmark.threads must be a positive whole number, got 0"),
    ("benchmark.threads", [2, 2], "benchmark.threads lists a thread count twice"),
    ("benchmark.rounds", 5, "benchmark.rounds must be at least 10 for an interval on the median, got 5"),
    ("benchmark.calls_per_block", 0, "benchmark.calls_per_block must be a positive whole number, got 0"),
    ("benchmark.seed", -1, "benchmark.seed must be a whole number >= 0, got -1"),
    ("benchmark.headline_options", "fastest",
     "benchmark.headline_options must be one of default, bgemm, xnnpack, bgemm+xnnpack, got 'fastest'"),
    ("benchmark.timed_inferences", 1000, "benchmark has unknown keys timed_inferences"),
    ("aggregate.baseline", "fp64", "aggregate.baseline must name a variant of study.variants (fp32, bnn), "
                                   "got 'fp64'"),
    ("report.memory_budgets_kib", [16, -1], "report.memory_budgets_kib must be a non-empty list of positive KiB"),
    ("trian", {"epochs": 3}, "params.yaml has unknown sections trian; valid: data, study, train, recipes, variants, "
                             "benchmark, aggregate, report"),
]


@pytest.mark.parametrize("dotted, value, message", BAD_PARAMS, ids=[f"{d}={v!r}" for d, v, _ in BAD_PARAMS])
def test_bad_params_stop_with_one_line_and_write_nothing(study_params, tmp_path, capsys, dotted, value, message):
    status, stderr, out = _check(tmp_path, with_param(study_params, dotted, value), capsys)
    assert status == 1
    assert stderr.startswith(f"error: {message}") and stderr.count("\n") == 1, stderr
    assert not out.exists()


def test_a_missing_section_is_named(study_params, tmp_path, capsys):
    params = dict(study_params)
    del params["benchmark"]
    status, stderr, out = _check(tmp_path, params, capsys)
    assert (status, stderr) == (1, "error: params.yaml has no `benchmark` section\n")
    assert not out.exists()


def test_the_option_sets_params_accept_are_the_interpreters():
    from stages.lib.lce import INTERPRETER_OPTIONS
    from stages.lib.params import OPTION_SETS

    assert OPTION_SETS == tuple(INTERPRETER_OPTIONS)
