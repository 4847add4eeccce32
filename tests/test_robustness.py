"""The robustness tables and what the report says of them, on hand-made
evaluations (conftest's synthetic study: bnn drops 20 pp more than fp32
under stripe, alike under fog)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import synthetic_evaluations, write_synthetic_tables
from stages.lib.analysis.robustness_tables import (
    accuracy_table, checked_images, gap_table, mce_table, readable_accuracy, robustness_findings,
    robustness_line,
)
from stages.lib.analysis.verdicts import MCE, ROBUSTNESS_GAP, judge
from stages.lib.wording import title


def _judged(gaps, mce):
    """The robustness gaps and mCE of one dataset as aggregate writes them:
    judged (exploratory; 10,000 test images per seed)."""
    return (judge(gaps.assign(dataset="mnist"), ROBUSTNESS_GAP, 10000), judge(mce.assign(dataset="mnist"), MCE))


def test_the_accuracy_table_gives_each_corruption_its_drop_from_clean():
    table = accuracy_table(synthetic_evaluations(), ["fp32", "bnn"]).set_index(["variant", "corruption"])
    stripe = table.loc[("fp32", "stripe")]
    assert stripe["accuracy_mean"] == pytest.approx(0.891)
    assert stripe["drop"] == pytest.approx(0.100) and stripe["drop_ci95_low"] == pytest.approx(0.100)
    assert stripe["clean_accuracy_mean"] == pytest.approx(0.991)
    assert 0 <= stripe["accuracy_ci95_low"] < 0.891 < stripe["accuracy_ci95_high"] <= 1
    fog = table.loc[("bnn", "fog")]
    assert fog["level"] == 5 and math.isnan(table.loc[("bnn", "stripe"), "level"])
    assert fog["deployed_agreement_min"] == 0.9995 and fog["deployed_agreement_mean"] == pytest.approx(0.99983333)
    assert fog["deployed_images"] == 2000 and fog["seeds"] == 3


def test_the_robustness_gap_is_the_extra_drop_paired_by_seed_adjusted_over_corruptions():
    gaps = gap_table(synthetic_evaluations(), ["fp32", "bnn"], "fp32")
    assert list(gaps["corruption"]) == ["stripe", "fog"] and set(gaps["variant"]) == {"bnn"}
    # stripe: bnn drops 0.300, 0.290, 0.300; fp32 0.100 on every seed
    per_seed = np.array([0.200, 0.190, 0.200])
    stripe = gaps.set_index("corruption").loc["stripe"]
    half = stats.t.ppf(0.975, 2) * per_seed.std(ddof=1) / math.sqrt(3)
    assert stripe["robustness_gap"] == pytest.approx(per_seed.mean())
    assert stripe["robustness_gap_ci95_low"] == pytest.approx(per_seed.mean() - half)
    assert stripe["robustness_gap_ci95_high"] == pytest.approx(per_seed.mean() + half)
    p_stripe = stats.ttest_1samp(per_seed, 0).pvalue
    fog_seeds = np.array([0.490 - 0.490, 0.460 - 0.471, 0.510 - 0.512])
    p_fog = stats.ttest_1samp(fog_seeds, 0).pvalue
    assert stripe["robustness_gap_p_value"] == pytest.approx(p_stripe)
    # exploratory, the variant's two corruptions one family: Bonferroni p and the simultaneous 97.5% interval
    judged, _ = _judged(gaps, mce_table(synthetic_evaluations(), ["fp32", "bnn"], "fp32"))
    judged = judged.set_index("corruption")
    assert judged.loc["stripe", "robustness_gap_p_adjusted"] == pytest.approx(2 * p_stripe)
    adjusted = stats.t.ppf(1 - 0.025 / 2, 2) * per_seed.std(ddof=1) / math.sqrt(3)
    assert judged.loc["stripe", "robustness_gap_adj_low"] == pytest.approx(per_seed.mean() - adjusted)
    assert judged.loc["stripe", "robustness_gap_verdict"] == "higher"
    assert gaps.set_index("corruption").loc["fog", "robustness_gap"] == pytest.approx(fog_seeds.mean())
    assert judged.loc["fog", "robustness_gap_p_adjusted"] == pytest.approx(min(1, 2 * p_fog))
    assert judged.loc["fog", "robustness_gap_verdict"] == "no verdict"
    assert judged.loc["fog", "robustness_gap_detectable"] > 0


def test_the_mean_corruption_error_is_a_geometric_mean_on_the_log_scale():
    evaluations = synthetic_evaluations()
    mce = mce_table(evaluations, ["fp32", "bnn"], "fp32").iloc[0]

    def log_error(row):
        return math.log(((1 - row["accuracy"]) * 10000 + 0.5) / 10001)

    logs = {(row["variant"], row["corruption"], row["seed"]): log_error(row) for row in evaluations.to_dict("records")}
    per_seed = np.array([np.mean([logs[("bnn", c, s)] - logs[("fp32", c, s)] for c in ("stripe", "fog")])
                         for s in range(3)])
    half = stats.t.ppf(0.975, 2) * per_seed.std(ddof=1) / math.sqrt(3)
    assert (mce["variant"], mce["seeds"], mce["corruptions"]) == ("bnn", 3, 2)
    assert mce["mce"] == pytest.approx(math.exp(per_seed.mean()))
    assert (mce["mce_ci95_low"], mce["mce_ci95_high"]) == pytest.approx((math.exp(per_seed.mean() - half),
                                                                          math.exp(per_seed.mean() + half)))
    assert mce["mce_p_value"] == pytest.approx(stats.ttest_1samp(per_seed, 0).pvalue)


def test_a_corruption_the_baseline_gets_all_right_still_has_an_error_ratio():
    evaluations = synthetic_evaluations()
    perfect = (evaluations["variant"] == "fp32") & (evaluations["corruption"] == "fog") & (evaluations["seed"] == 0)
    evaluations.loc[perfect, "accuracy"] = 1.0
    mce = mce_table(evaluations, ["fp32", "bnn"], "fp32").iloc[0]
    # half an image of error where there is none: finite, and large (what a mean of ratios would be dominated by)
    assert mce["seeds"] == 3 and math.isfinite(mce["mce"]) and mce["mce"] > 1


def test_the_findings_name_the_corruptions_told_apart_and_the_mce(tmp_path):
    tables = write_synthetic_tables(tmp_path)
    findings = robustness_findings(tables["robustness_gap"], tables["mce"], tables["robustness"], "bnn", title)
    assert findings[0] == ("On MNIST, under 2 corruptions, `bnn` loses more accuracy than `fp32` beyond their clean "
                           "gap on 1 (stripe +19.7 pp (+17.6 pp to +21.7 pp)); on the other 1 the difference cannot "
                           "be told from zero with 3 seeds (Bonferroni over the 2 corruptions, simultaneous "
                           "intervals).")
    assert findings[1].startswith("`bnn`'s mean corruption error (mCE, the geometric mean over corruptions of its "
                                  "error over `fp32`'s) is 1.71x (1.63x to 1.78x) (95% CI, exploratory, one test): "
                                  "more errors than `fp32`")
    assert findings[2] == ("On MNIST, the deployed `.tflite` files agree with Keras on at least 99.95% of the "
                           "corrupted images checked (the first 2,000 of each corruption, every run); lowest: `bnn` "
                           "under fog.")
    line = robustness_line(tables["robustness_gap"], tables["mce"], "bnn", title)
    assert line == "MNIST: loses more on 1 of 2 corruptions (stripe); mCE 1.71x (1.63x to 1.78x), more errors"


def test_forms_checked_on_different_image_counts_are_told_apart():
    # An int8 form is checked on every corrupted image, a trained run's
    # .tflite on the first 2,000: the sentence and the details column say
    # both counts, never the smaller one for all.
    evaluations = synthetic_evaluations()
    int8 = evaluations[evaluations["variant"] == "fp32"].assign(variant="fp32+int8", deployed_images=10000)
    int8.loc[int8["corruption"] == "stripe", "deployed_agreement"] = 0.974
    evaluations = pd.concat([evaluations, int8], ignore_index=True)
    variants = ["fp32", "fp32+int8", "bnn"]
    accuracy = accuracy_table(evaluations, variants).assign(dataset="mnist")
    assert checked_images(accuracy) == "the first 2,000 of each corruption, 10,000 for `fp32+int8`"
    assert checked_images(accuracy[accuracy["variant"] != "fp32+int8"], " images") == ("the first 2,000 images of "
                                                                                       "each corruption")
    gaps, mce = _judged(gap_table(evaluations, variants, "fp32"), mce_table(evaluations, variants, "fp32"))
    findings = robustness_findings(gaps, mce, accuracy, "bnn", title)
    assert findings[-1] == ("On MNIST, the deployed `.tflite` files agree with Keras on at least 97.40% of the "
                            "corrupted images checked (the first 2,000 of each corruption, 10,000 for `fp32+int8`, "
                            "every run); lowest: `fp32+int8` under stripe.")
    readable = readable_accuracy(accuracy)
    assert list(readable.columns[-3:]) == ["deployed: accuracy", "deployed: images checked",
                                           "deployed: agreement (lowest run)"]
    assert set(readable.loc[readable["variant"] == "fp32+int8", "deployed: images checked"]) == {"first 10,000"}
    assert set(readable.loc[readable["variant"] == "bnn", "deployed: images checked"]) == {"first 2,000"}


def test_no_extra_drop_told_apart_says_so_and_names_the_largest(tmp_path):
    evaluations = synthetic_evaluations()
    noisy = (evaluations["variant"] == "bnn") & (evaluations["corruption"] == "stripe")
    evaluations.loc[noisy, "accuracy"] = [0.680, 0.893, 0.783]  # a large spread across seeds
    gaps, mce = _judged(gap_table(evaluations, ["fp32", "bnn"], "fp32"), mce_table(evaluations, ["fp32", "bnn"], "fp32"))
    accuracy = accuracy_table(evaluations, ["fp32", "bnn"]).assign(dataset="mnist")
    findings = robustness_findings(gaps, mce, accuracy, "bnn", title)
    assert findings[0].startswith("On MNIST, under 2 corruptions, `bnn`'s extra accuracy drop against `fp32` (its drop "
                                  "from clean minus `fp32`'s, paired by seed) cannot be told from zero on any of them "
                                  "with 3 seeds (Bonferroni over the 2 corruptions). Its largest extra drops, none "
                                  "told from zero (simultaneous intervals): stripe +9.7 pp (-28.0 pp to +47.3 pp); "
                                  "these seeds detect a difference of 48.46 pp with 80% power at this level, at the "
                                  "measured spread.")
    line = robustness_line(gaps, mce, "bnn", title)
    assert line.startswith("MNIST: on none of 2 corruptions is the extra drop told from zero with 3 seeds (largest: "
                           "stripe +9.7 pp")
    assert "not told from 1.00x" in line


def test_the_report_s_robustness_section_and_answer_line(tmp_path):
    from stages.report import render

    write_synthetic_tables(tmp_path)
    report, details = render(tmp_path, "plots", "fp32", [None])
    answer = report.split("## The answer\n", 1)[1].split("\n## ", 1)[0]
    assert ("- On corrupted images (extra accuracy drop against `fp32`; exploratory, Bonferroni over the corruptions): "
            "MNIST: loses more on 1 of 2 corruptions (stripe); mCE 1.71x (1.63x to 1.78x), more errors.") in answer
    section = report.split("## Corrupted inputs: does the 1-bit network break sooner?\n", 1)[1].split("\n## ", 1)[0]
    assert "| stripe       |         | 89.10% (" in section and "+19.7 pp (+17.6 pp to +21.7 pp)" in section
    assert "![One test image under every corruption](plots/corruption_examples.png)" in section
    assert "![Extra accuracy drop against the baseline per corruption](plots/robustness_gaps.png)" in section
    assert "## MNIST: accuracy under each corruption" in details
    assert "| deployed: accuracy (first 2,000)" in details
    assert "checked against Keras on the first 2,000 images of each corruption." in report


def test_a_study_of_the_baseline_alone_has_no_robustness_section(tmp_path):
    from stages.report import render

    tables = write_synthetic_tables(tmp_path)
    for name in ("robustness_gap", "mce"):
        tables[name].iloc[0:0].to_csv(tmp_path / f"{name}.csv", index=False)
    report, _ = render(tmp_path, "plots", "fp32", [None])
    assert "## Corrupted inputs" not in report and "On corrupted images" not in report


def test_evaluations_of_other_corruptions_than_the_rest_are_refused(tmp_path):
    import json

    from stages.lib.common import StudyError
    from stages.lib.analysis.robustness_tables import load_evaluations

    for seed, names, images in ((0, ["fog", "stripe"], 10), (1, ["fog"], 10), (2, ["fog", "stripe"], 20)):
        folder = tmp_path / f"mnist-bnn-{seed}" / "evaluation"
        folder.mkdir(parents=True)
        result = {"level": None, "images": images, "accuracy": 0.5, "deployed_images": 10, "deployed_accuracy": 0.5,
                  "deployed_agreement": 1.0}
        folder.joinpath("robustness.json").write_text(json.dumps({
            "clean_accuracy": 0.9, "test_images": images, "options": "default",
            "corruptions": {name: result for name in names}}))
    for other in (1, 2):   # other corruptions; as many corruptions, on other test images
        with pytest.raises(StudyError, match=f"mnist-bnn-{other}/evaluation/robustness.json was evaluated on "
                                             "other corruptions or test images"):
            load_evaluations(tmp_path, [("mnist", "bnn", 0), ("mnist", "bnn", other)])
    assert isinstance(load_evaluations(tmp_path, [("mnist", "bnn", 0)]), pd.DataFrame)


def test_the_images_evaluated_are_drawn_once_for_every_run_from_the_whole_test_split():
    from stages.lib.data.robustness import image_subset

    chosen = image_subset(10000, 2000, 0)
    assert len(chosen) == 2000 and len(set(chosen)) == 2000 and list(chosen) == sorted(chosen)
    assert (chosen == image_subset(10000, 2000, 0)).all() and not (chosen == image_subset(10000, 2000, 1)).all()
    # drawn, not the first ones: MNIST's first half is easier than its second
    assert 900 <= (chosen < 5000).sum() <= 1100
    assert list(image_subset(300, 2000, 0)) == list(range(300)) and list(image_subset(300, None, 0)) == list(range(300))


@pytest.mark.parametrize("value", [0, -1, 2.5, "all", True, [2000]])
def test_a_bad_robustness_image_count_is_one_line(study_params, value):
    from stages.check import check_all
    from stages.lib.common import StudyError

    from conftest import with_param

    with pytest.raises(StudyError, match=r"^robustness.test_images must be a whole number >= 1, or null"):
        check_all(with_param(study_params, "robustness.test_images", value))


def _corrupt_params(study_params, corruptions, test_limit):
    from stages.check import check_all
    from stages.lib.settings.robustness import corrupt_slice

    from conftest import with_param

    params = with_param(with_param(study_params, "robustness.corruptions", corruptions), "data.test_limit",
                        test_limit)
    check_all(params)
    return corrupt_slice(params)


def test_the_corrupt_stage_writes_every_corruption_with_its_manifest_and_the_same_bytes_twice(
        study_params, mnist_dir, tmp_path):
    import json

    from stages.corrupt import corrupt_dataset
    from stages.lib.data.datasets import read_idx, sha256_of
    from stages.lib.data.robustness import read_manifest

    params = _corrupt_params(study_params, ["fog", "stripe", "shot_noise"], 300)
    manifest = corrupt_dataset(params, mnist_dir, tmp_path / "first")
    assert list(manifest["corruptions"]) == ["fog", "stripe", "shot_noise"]
    assert {name: entry["level"] for name, entry in manifest["corruptions"].items()} == {
        "fog": 5, "stripe": None, "shot_noise": 5}
    assert manifest["test_images"] == 300 and manifest["seed"] == 0
    assert read_manifest(tmp_path / "first") == json.loads((tmp_path / "first" / "corruptions.json").read_text())
    for name, entry in manifest["corruptions"].items():
        path = tmp_path / "first" / f"{name}-images-idx3-ubyte"
        assert sha256_of(path) == entry["sha256"]
        images = read_idx(path)
        assert images.dtype == np.uint8 and images.shape == (300, 28, 28)
    corrupt_dataset(params, mnist_dir, tmp_path / "again")
    for path in sorted((tmp_path / "first").iterdir()):
        assert path.read_bytes() == (tmp_path / "again" / path.name).read_bytes(), path.name


def test_a_corrupt_stage_that_fails_leaves_no_folder_and_keeps_the_finished_one(
        study_params, mnist_dir, tmp_path, monkeypatch):
    import stages.corrupt

    params = _corrupt_params(study_params, ["fog", "stripe"], 50)
    out = tmp_path / "corrupted"
    stages.corrupt.corrupt_dataset(params, mnist_dir, out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def full(path, data):
        raise OSError(28, "No space left on device")

    # the disk fills as the manifest is written, after the workers wrote every corrupted file (they start
    # fresh, spawned: a patch here would not reach them)
    monkeypatch.setattr(stages.corrupt, "write_json_atomic", full)
    with pytest.raises(OSError):
        stages.corrupt.corrupt_dataset(params, mnist_dir, out)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["corrupted"]


@pytest.mark.parametrize("damage, message", [
    (lambda manifest: manifest.unlink(), "corruptions.json is missing: rerun `dvc repro corrupt`"),
    (lambda manifest: manifest.write_text("{"), "corruptions.json is not valid JSON"),
    (lambda manifest: manifest.write_text('{"corruptions": {"snow": {"level": 1, "sha256": "x"}}, "seed": 0, '
                                          '"test_images": 1, "example": {"pixels": []}}'),
     "corruptions.snow is not a corruption this study writes"),
])
def test_a_damaged_manifest_is_one_line(study_params, mnist_dir, tmp_path, damage, message):
    from stages.corrupt import corrupt_dataset
    from stages.lib.common import StudyError
    from stages.lib.data.robustness import read_manifest

    corrupt_dataset(_corrupt_params(study_params, ["stripe"], 20), mnist_dir, tmp_path)
    damage(tmp_path / "corruptions.json")
    with pytest.raises(StudyError, match=message):
        read_manifest(tmp_path)


def test_other_variants_are_summed_up_in_one_sentence_and_mce_stays_positive():
    evaluations = synthetic_evaluations()
    bnn = evaluations[evaluations["variant"] == "bnn"]
    # a copy of bnn, and a variant whose error ratios swing so widely across seeds that
    # a Student-t interval would reach below zero
    wild = bnn.assign(variant="wild", accuracy=[0.10, 0.97, 0.97, 0.10, 0.52, 0.47])
    evaluations = pd.concat([evaluations, bnn.assign(variant="bnn_copy"), wild], ignore_index=True)
    variants = ["fp32", "bnn", "bnn_copy", "wild"]
    gaps, mce = _judged(gap_table(evaluations, variants, "fp32"), mce_table(evaluations, variants, "fp32"))
    wild = mce.set_index("variant").loc["wild"]
    assert 0 < wild["mce_ci95_low"] < wild["mce"] < wild["mce_ci95_high"]  # on the log scale: never below zero
    findings = robustness_findings(gaps, mce, accuracy_table(evaluations, variants).assign(dataset="mnist"), "bnn",
                                   title)
    others = [sentence for sentence in findings if sentence.startswith("Of the")]
    assert others == [
        "Of the 2 other variants on MNIST, 1 loses more or less than `fp32` beyond the clean gap on some corruptions "
        "(`bnn_copy` more on stripe); for the other 1 no extra drop is told from zero (Bonferroni over the 2 "
        "corruptions each). Their mCE is above 1.00x for `bnn_copy` 1.71x (1.58x to 1.84x); not told from 1.00x for "
        "the other 1."]

