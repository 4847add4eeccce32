"""The `check` stage: the whole params.yaml is checked before anything runs."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, twins_file, with_param
from stages.check import main
from stages.lib.common import StudyError, run_cli


def _write(tmp_path, params):
    """params.yaml in ``tmp_path``, with the twins the `twins` stage would
    derive for it beside (``twins.json``)."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    twins_file(tmp_path, params)
    return path, tmp_path / "spec"


def _check(tmp_path, params, capsys):
    """The stage's command line, in this process: (exit status, stderr, output file)."""
    path, out = _write(tmp_path, params)
    status = run_cli(main, ["--params", str(path), "--out", str(out), "--twins", str(tmp_path / "twins.json")])
    return status, capsys.readouterr().err, out


def _slices(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def _changed(before, after):
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


def test_valid_params_pass_and_each_slice_changes_only_with_what_it_holds(study_params, tmp_path):
    path, out = _write(tmp_path, study_params)
    result = subprocess.run([sys.executable, "-m", "stages.check", "--params", str(path), "--out", str(out), "--twins", str(tmp_path / "twins.json")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    before = _slices(out)
    variants = sorted([*study_params["variants"], "fp32_w0.352"])
    assert sorted(before) == sorted(
        ["aggregate.json", "benchmark.json", "deploy.json", "quantize.json", "quantize_int4.json", "report.json",
         "robustness.json"]
        + [f"{kind}/{name}.json" for kind in ("download", "corrupt") for name in ("mnist", "fashion_mnist")]
        + [f"{kind}/{name}.json" for kind in ("architecture", "training") for name in variants])

    def after(dotted, value):
        run_cli(main, ["--params", str(_write(tmp_path, with_param(study_params, dotted, value))[0]),
                       "--out", str(out), "--twins", str(tmp_path / "twins.json")])
        return _changed(before, _slices(out))

    cosine = sorted(f"training/{name}.json" for name in variants
                    if study_params["variants"][name.split("_w")[0]]["recipe"] == "cosine")
    assert len(cosine) == 3 and after("recipes.cosine.learning_rate", 0.002) == cosine
    assert after("recipes.bop.bop", {"threshold": 1e-7, "gamma": 1e-3}) == ["training/bnn_bop.json",
                                                                            "training/bnn_fp_edges_bop.json"]
    assert after("variants.bnn.recipe", "bop") == ["aggregate.json", "training/bnn.json"]
    # a base's change is its derived variants' too (`base: bnn`): their slices change, and only theirs
    derived = [name for name in variants if name.startswith("bnn") and "_w" not in name]
    assert len(derived) == 7
    assert after("variants.bnn.kernel_quantizer", "approx_sign") == sorted(
        ["aggregate.json", *(f"{kind}/{name}.json" for kind in ("architecture", "training") for name in derived)])
    assert after("study.seeds", [0, 1, 2, 3, 4, 5]) == ["aggregate.json", "benchmark.json"]
    assert after("benchmark.headline_options", "bgemm") == ["aggregate.json", "robustness.json"]
    assert after("report.memory_budgets_kib", [32, None]) == ["report.json"]
    # the primary comparisons: what the tables and the report judge, nothing else
    assert after("aggregate.primary", ["bnn", "fp32_w0.352"]) == ["aggregate.json", "report.json"]
    assert after("aggregate.same_flash", {}) == ["aggregate.json", "report.json"]
    assert after("aggregate.margin_pp", {"mnist": 0.3, "fashion_mnist": 1.0}) == ["aggregate.json", "report.json"]
    assert after("data.validation_images", 6000) == [f"training/{name}.json" for name in variants]
    assert after("data.train_limit", 1000) == [f"training/{name}.json" for name in variants]
    corrupt = ["corrupt/fashion_mnist.json", "corrupt/mnist.json"]
    assert after("data.test_limit", 1000) == corrupt + [f"training/{name}.json" for name in variants]
    # the seed draws the corrupted pixels and the images evaluated; how many, the evaluations only
    assert after("robustness.seed", 1) == corrupt + ["robustness.json"]
    assert after("robustness.test_images", 500) == ["robustness.json"]
    # the conversion's settings rerun the conversions only; which variants are converted, the tables too
    assert after("int8.representative_images", 100) == ["quantize.json"]
    assert after("int8.io", "int8") == ["quantize.json"]
    assert after("int8.max_accuracy_drop_pp", 0.2) == ["quantize.json"]
    assert after("int8.variants", ["fp32_w0.352"]) == ["aggregate.json", "benchmark.json"]
    # the disagreement limit reconverts the LCE forms only
    assert after("deploy.max_disagreement_pct", 0.5) == ["deploy.json"]
    assert after("robustness.severities.fog", 2) == corrupt
    # a severity of a corruption the study does not run changes nothing
    assert after("robustness.corruptions", ["fog", "stripe"]) == corrupt
    run_cli(main, ["--params", str(_write(tmp_path, with_param(study_params, "robustness.corruptions",
                                                                ["fog", "stripe"]))[0]), "--out", str(out), "--twins", str(tmp_path / "twins.json")])
    narrowed = _slices(out)
    changed = with_param(with_param(study_params, "robustness.corruptions", ["fog", "stripe"]),
                         "robustness.severities.shear", 4)
    run_cli(main, ["--params", str(_write(tmp_path, changed)[0]), "--out", str(out), "--twins", str(tmp_path / "twins.json")])
    assert _changed(narrowed, _slices(out)) == []
    # the order of keys in params.yaml changes no byte
    reordered = {key: study_params[key] for key in reversed(list(study_params))}
    reordered["variants"] = {name: dict(reversed(list(spec.items()))) for name, spec in study_params["variants"].items()}
    run_cli(main, ["--params", str(_write(tmp_path, reordered)[0]), "--out", str(out), "--twins", str(tmp_path / "twins.json")])
    assert _slices(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "spec", "twins.json"]


def test_every_stage_reads_its_slice_through_the_same_checked_views(study_params, tmp_path):
    from stages.lib.common import load_params
    from stages.lib.training.variants import variant_from_params
    from stages.lib.settings.aggregate import baseline
    from stages.lib.settings.report import memory_budgets
    from stages.lib.params import (
        benchmark_settings, data_limits, download_settings, headline_options, study_runs, train_settings,
    )
    from stages.lib.training.recipes import recipe_from_params

    path, out = _write(tmp_path, study_params)
    assert run_cli(main, ["--params", str(path), "--out", str(out), "--twins", str(tmp_path / "twins.json")]) == 0
    training = load_params(out / "training" / "bnn_cosine.json")
    variant = variant_from_params("bnn_cosine", training["variants"])
    recipe = recipe_from_params(variant.recipe, training["recipes"])
    assert (recipe.name, recipe.epochs, recipe.learning_rate) == ("cosine", 12, 0.005)
    assert train_settings(training).steps_per_execution == 32 and data_limits(training) == (None, None)
    architecture = load_params(out / "architecture" / "bnn_cosine.json")
    assert variant_from_params("bnn_cosine", architecture["variants"]).architecture() == variant.architecture()
    assert download_settings(load_params(out / "download" / "mnist.json"), "mnist").sources[-1] == "data/mnist-shipped"
    bench = load_params(out / "benchmark.json")
    assert benchmark_settings(bench).processes == 8 and study_runs(bench)[0] == ("mnist", "fp32", 0)
    table = load_params(out / "aggregate.json")
    assert headline_options(table) == "bgemm+xnnpack" and baseline(table) == "fp32"
    assert table["recipes"] == {"article": {"epochs": 6}}
    assert memory_budgets(load_params(out / "report.json")) == [16, 64, 128, None]
    from stages.lib.settings.int8 import conversion_settings
    from stages.lib.forms.registry import post_training_runs
    from stages.lib.params import study_runs

    assert post_training_runs(bench, study_runs(bench)) == post_training_runs(table, study_runs(table)) == [
        ("mnist", name, seed) for name in ("fp32+int8", "fp32_w0.352+int8", "fp32_w0.352+int4")
        for seed in study_params["study"]["seeds"]]
    assert conversion_settings(load_params(out / "quantize.json")).representative_images == 500


def test_numbers_in_scientific_notation_are_numbers(study_params, tmp_path, capsys):
    from stages.lib.common import load_params

    path = tmp_path / "params.yaml"
    text = (REPO / "params.yaml").read_text().replace("learning_rate: 0.005", "learning_rate: 5e-3")
    path.write_text(text.replace("threshold: 1.0e-6", "threshold: 1e-6"))
    twins_file(tmp_path, yaml.safe_load(path.read_text()))
    assert run_cli(main, ["--params", str(path), "--out", str(tmp_path / "spec"), "--twins",
                          str(tmp_path / "twins.json")]) == 0
    training = load_params(tmp_path / "spec" / "training" / "bnn_bop.json")
    assert training["recipes"]["bop"]["bop"]["threshold"] == 1e-6
    assert load_params(tmp_path / "spec" / "training" / "bnn_cosine.json")["recipes"]["cosine"]["learning_rate"] == 5e-3


BAD_PARAMS = [
    ("study.variants", ["fp32", "bnm"],
     "unknown variant 'bnm': params.yaml defines bnn, bnn_bop, bnn_cosine, bnn_fp_edges, bnn_fp_edges_bop, "
     "bnn_fp_edges_cosine, bnn_full, bwn, dorefa4, dorefa8, fp32, fp32_cosine, ternary under `variants`"),
    ("study.variants", [], "study.variants must be a non-empty list"),
    ("study.variants", ["fp32", "../bnn"], "study.variants: '../bnn' is not a valid name; use letters, digits and "
                                           "underscores only"),
    ("study.variants", ["fp32", "bnn/x"], "study.variants: 'bnn/x' is not a valid name"),
    ("study.seeds", [], "study.seeds must be a non-empty list"),
    ("study.seeds", [0, 1.5], "study.seeds: '1.5' is not a whole number from 0 to 2^32 - 1"),
    ("study.seeds", [0, "one"], "study.seeds: 'one' is not a whole number from 0 to 2^32 - 1"),
    ("study.extended", ["fp32", "int3"], "study.extended names int3, not defined under `variants`"),
    # nested values: one line each, never a TypeError
    ("study.extended", [["fp32"]], "study.extended names ['fp32'], not defined under `variants`"),
    ("robustness.corruptions", [["fog"]], "robustness.corruptions: unknown corruption \"['fog']\""),
    ("variants.bnn.kernel_quantizer", {"name": ["ste_sign"]}, "variants.bnn.kernel_quantizer: unknown quantizer"),
    ("study.seeds", [0, 2 ** 32], "study.seeds: '4294967296' is not a whole number from 0 to 2^32 - 1"),
    # a study without the variants its primaries name is refused before anything runs
    ("study.variants", ["fp32"], "aggregate.primary names bnn, which study.variants leaves out"),
    # a value of ten million letters: the line quotes its start, not the whole
    ("recipes.article.optimizer", "x" * 10 ** 7, "recipes.article.optimizer"),
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
    ("benchmark.processes", 2, "benchmark.processes must be at least 3 for an interval across processes, got 2"),
    ("benchmark.rounds", 0, "benchmark.rounds must be a positive whole number, got 0"),
    ("benchmark.calls_per_block", 0, "benchmark.calls_per_block must be a positive whole number, got 0"),
    ("benchmark.seed", -1, "benchmark.seed must be a whole number >= 0, got -1"),
    ("benchmark.headline_options", "fastest",
     "benchmark.headline_options must be one of default, bgemm, xnnpack, bgemm+xnnpack, got 'fastest'"),
    ("benchmark.timed_inferences", 1000, "benchmark has unknown keys timed_inferences"),
    ("aggregate.baseline", "fp64", "aggregate.baseline must name a variant of study.variants (fp32, bnn, fp32_w0.352), "
                                   "got 'fp64'"),
    ("report.memory_budgets_kib", [16, -1], "report.memory_budgets_kib must be a non-empty list of positive KiB"),
    ("aggregate.primary", "bnn", "aggregate.primary must be a list of distinct variant names, got 'bnn'"),
    ("aggregate.primary", ["bnn", "bnn_x"], "aggregate.primary names bnn_x, not defined under variants"),
    ("robustness.corruptions", ["fog", "snow"], "robustness.corruptions: unknown corruption 'snow'; known corruptions: shot_noise, "
                                                "impulse_noise, glass_blur"),
    ("robustness.corruptions", ["fog", "../x"], "robustness.corruptions: unknown corruption '../x'"),
    ("robustness.corruptions", [], "robustness.corruptions must be a non-empty list of corruption names"),
    ("robustness.corruptions", ["fog", "fog"], "robustness.corruptions lists a corruption twice"),
    ("robustness.severities.fog", 6, "robustness.severities.fog must be a level from 1 to 5, got 6"),
    ("robustness.severities.shear", 0.5, "robustness.severities.shear must be a level from 1 to 5, got 0.5"),
    ("robustness.severities.stripe", 1, "robustness.severities.stripe: stripe has no severity levels; remove it"),
    ("robustness.severities.frost", 1, "robustness.severities: unknown corruption 'frost'"),
    ("robustness.seed", -1, "robustness.seed must be a whole number >= 0, got -1"),
    ("robustness.severity", {"fog": 1}, "robustness has unknown keys severity; valid keys: corruptions, severities, "
                                        "seed"),
    ("deploy.max_disagreement_pct", -1, "deploy.max_disagreement_pct must be a percentage from 0 to 100, got -1"),
    ("deploy.max_disagreement", 1, "deploy has unknown keys max_disagreement; valid keys: max_disagreement_pct"),
    # the int8 conversion applies to float networks: a 1-bit one would agree with Keras on a third of the images
    ("int8.variants", ["fp32", "bnn"], "int8.variants: bnn is not a float network ("),
    ("int8.variants", ["fp32", "x"], "int8.variants names x, which study.variants"),
    # calibration larger than the training images the runs use: refused before any finished model is replaced
    ("int8.representative_images", 60001, "int8.representative_images is 60001, more than the 60000 training images"),
    ("variants.bnn_cosine.base", "bnnn", "variants.bnn_cosine.base must name a variant defined under `variants`, "
                                         "got 'bnnn'"),
    ("variants.bnn.base", "bnn_cosine", "variants.bnn_cosine.base: bnn -> bnn_cosine -> bnn comes back to itself"),
    ("trian", {"epochs": 3}, "params.yaml has unknown sections trian; valid: data, study, train, recipes, variants, "
                             "benchmark, aggregate, report, deploy, robustness, int8"),
]


@pytest.mark.parametrize("dotted, value, message", BAD_PARAMS, ids=[f"{d}={v!r}" for d, v, _ in BAD_PARAMS])
def test_bad_params_stop_with_one_line_and_write_nothing(study_params, tmp_path, capsys, dotted, value, message):
    status, stderr, out = _check(tmp_path, with_param(study_params, dotted, value), capsys)
    assert status == 1
    assert stderr.startswith(f"error: {message}") and stderr.count("\n") == 1, stderr[:300]
    assert len(stderr) < 1200
    assert not out.exists()


def test_a_variant_derived_from_a_base_reads_as_if_written_out(study_params, tmp_path, capsys):
    # params.yaml derives the recipe variants (and bnn_fp_edges, bnn_full) from a base; the slices every
    # stage reads are those of the same variants written out key for key, so deriving retrains nothing
    from stages.lib.training.variants import expand_bases

    assert "base" in study_params["variants"]["bnn_fp_edges_cosine"]
    written_out = {**study_params, "variants": expand_bases(study_params["variants"])}
    assert written_out["variants"]["bnn_fp_edges_cosine"] == {
        **study_params["variants"]["bnn"], "first_kernel_quantizer": None, "last_kernel_quantizer": None,
        "last_input_quantizer": None, "recipe": "cosine"} and "base" not in written_out["variants"]["bnn"]
    outputs = []
    for folder, params in (("derived", study_params), ("written", written_out)):
        (tmp_path / folder).mkdir()
        status, stderr, out = _check(tmp_path / folder, params, capsys)
        assert status == 0, stderr
        outputs.append({path.relative_to(out): path.read_bytes() for path in out.rglob("*.json")})
    assert outputs[0] == outputs[1] and len(outputs[0]) > 30


def test_a_missing_section_is_named(study_params, tmp_path, capsys):
    params = dict(study_params)
    del params["benchmark"]
    status, stderr, out = _check(tmp_path, params, capsys)
    assert (status, stderr) == (1, "error: params.yaml has no `benchmark` section\n")
    assert not out.exists()


def test_the_option_sets_params_accept_are_the_interpreters():
    from stages.lib.forms.runtime import INTERPRETER_OPTIONS
    from stages.lib.params import OPTION_SETS

    assert OPTION_SETS == tuple(INTERPRETER_OPTIONS)


def test_check_names_the_stages_as_dvc_does(study_params):
    # stale lock entries are those of no stage DVC makes of dvc.yaml and params.yaml
    from dvc.repo import Repo

    from stages.check import pipeline_stages
    from stages.lib.common import load_params

    with Repo(str(REPO)) as repo:
        dvc_names = {stage.addressing for stage in repo.index.stages}
    assert pipeline_stages(load_params(REPO / "dvc.yaml"), load_params(REPO / "params.yaml")) == dvc_names
    two = with_param(with_param(study_params, "study.datasets", ["mnist", "fashion_mnist"]), "study.seeds", [0, 7])
    names = pipeline_stages(load_params(REPO / "dvc.yaml"), two)
    assert {"train@fashion_mnist-bnn-7", "quantize@fashion_mnist-fp32-7", "corrupt@fashion_mnist"} <= names


def test_stale_lock_entries_are_pruned_and_the_rest_kept(tmp_path):
    from stages.check import prune_lock

    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages:\n  check:\n    cmd: a\n  train@fashion_mnist-bnn-0:\n    cmd: b\n"
                    "  train@mnist-bnn-0:\n    cmd: c\n")
    assert prune_lock(lock, {"check", "train@mnist-bnn-0"}) == ["train@fashion_mnist-bnn-0"]
    assert lock.read_text() == "schema: '2.0'\nstages:\n  check:\n    cmd: a\n  train@mnist-bnn-0:\n    cmd: c\n"
    before = lock.stat().st_mtime_ns
    assert prune_lock(lock, {"check", "train@mnist-bnn-0"}) == [] and lock.stat().st_mtime_ns == before
    assert prune_lock(tmp_path / "none.lock", set()) == []


def test_tidy_removes_only_folders_found_in_dvc_s_cache(tmp_path, monkeypatch):
    import hashlib

    from dvc.repo import Repo

    from stages.lib.layout import tidy

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    Repo.init(str(tmp_path)).close()
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "reports" / "runs"
    for run in ("mnist-bnn-0", "fashion_mnist-bnn-0", "handmade"):
        (runs / run / "live").mkdir(parents=True)
        (runs / run / "live" / "metrics.json").write_text(f'{{"run": "{run}"}}')
    (runs / ".mnist-bnn-1.k1ll3d00.tmp").mkdir()  # an interrupted write: its writer's to clear
    with Repo(str(tmp_path)) as repo:  # the other experiment's run is in the cache, the hand-made folder not
        data = (runs / "fashion_mnist-bnn-0" / "live" / "metrics.json").read_bytes()
        cached = Path(repo.cache.local.oid_to_path(hashlib.md5(data).hexdigest()))
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(data)
    with pytest.raises(StudyError, match=r"reports/runs/handmade is not part of the study and not in DVC's cache: "
                                         r"move it out"):
        tidy({"reports/runs": {"mnist-bnn-0"}})
    assert (runs / "handmade" / "live" / "metrics.json").is_file() and (runs / "fashion_mnist-bnn-0").is_dir()
    (runs / "handmade" / "live" / "metrics.json").unlink()
    (runs / "handmade" / "live").rmdir()
    assert tidy({"reports/runs": {"mnist-bnn-0", "handmade"}}) == [Path("reports/runs/fashion_mnist-bnn-0")]
    assert sorted(path.name for path in runs.iterdir()) == [".mnist-bnn-1.k1ll3d00.tmp", "handmade", "mnist-bnn-0"]


def test_checking_params_loads_neither_tensorflow_nor_larq(tmp_path):
    """`check` runs before every `dvc repro` and `dvc exp run`: it validates
    variants from tables written out in stages/lib/training/variants.py
    (pinned against the installed Larq and Keras in test_networks.py), so a
    user waits about a second, not TensorFlow's start."""
    probe = ("import sys\n"
             "from stages.check import main\n"
             f"main(['--params', {str(REPO / 'params.yaml')!r}, '--out', {str(tmp_path / 'spec')!r}, "
             f"'--twins', {str(twins_file(tmp_path, yaml.safe_load((REPO / 'params.yaml').read_text())))!r}])\n"
             "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'larq', 'keras', 'tf_keras', "
             "'larq_compute_engine'})\n"
             "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "spec" / "training" / "bnn.json").is_file()
