"""int8 post-training quantization: the params section, the conversion and
its check, the liveness RAM of int8 graphs, the benchmark's int8 inputs,
the comparison with the 1-bit network and the budget picks among every
deployed form."""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import randomized, with_param
from stages.lib.common import StudyError
from stages.lib.forms.graph import Graph, Operator, Tensor, live_bytes, read_graph
from stages.lib.forms.int8 import FORM, representative_indices
from stages.lib.settings.int8 import Int8Settings, int8_settings, slices
from stages.lib.forms.registry import (
    form_of, is_post_training, post_training_networks, post_training_runs, source_variant, writing_stage,
)
from stages.lib.forms.deployed import model_inputs
from stages.lib.params import study_runs


# ---------------------------------------------------------------- the section

def test_the_default_section_is_valid_and_names_its_forms(study_params):
    settings = int8_settings(study_params)
    assert settings.variants == ("fp32", "fp32_w0.352") and settings.io in ("float", "int8")
    assert FORM.network("fp32") == "fp32+int8" and source_variant("fp32+int8") == "fp32"
    assert form_of("fp32+int8") is FORM and is_post_training("fp32+int8") and writing_stage("fp32+int8") == "quantize"
    assert form_of("fp32") is None and not is_post_training("fp32") and writing_stage("fp32") == "deploy"
    assert source_variant("fp32") == "fp32"
    runs = post_training_runs(study_params, study_runs(study_params))
    assert [run for run in runs if run[1].endswith("+int8")] == [
        ("mnist", name, seed) for name in ("fp32+int8", "fp32_w0.352+int8") for seed in study_params["study"]["seeds"]]
    # what the benchmark, robustness and tables read: the registry's, form by form
    assert post_training_networks(study_params) == ["fp32+int8", "fp32_w0.352+int8", "fp32_w0.352+int4"]


@pytest.mark.parametrize("key, value, message", [
    ("variants", "fp32", r"int8.variants must be a list"),
    ("variants", ["bnn_full"], r"int8.variants names bnn_full, which study.variants \(fp32, bnn, fp32_w0.352\) leaves out"),
    ("variants", ["fp32", "fp32"], r"int8.variants lists a variant twice"),
    ("variants", ["../x"], r"int8.variants: '../x' is not a valid name"),
    ("representative_images", 0, r"int8.representative_images must be a positive whole number, got 0"),
    ("seed", -1, r"int8.seed must be a whole number >= 0"),
    ("io", "uint8", r"int8.io must be one of float, int8, got 'uint8'"),
    ("max_accuracy_drop_pp", -0.1, r"int8.max_accuracy_drop_pp must be a number of percentage points >= 0"),
    ("max_accuracy_drop_pp", True, r"int8.max_accuracy_drop_pp must be a number"),
])
def test_a_wrong_value_is_one_line_naming_the_key(study_params, key, value, message):
    from stages.check import check_all

    with pytest.raises(StudyError, match=message):
        check_all(with_param(study_params, f"int8.{key}", value))


def test_an_unknown_key_or_a_missing_section_is_one_line(study_params):
    from stages.check import check_all

    with pytest.raises(StudyError, match=r"int8 has unknown keys calibration; valid keys: variants, "):
        check_all(with_param(study_params, "int8.calibration", 3))
    without = {name: section for name, section in study_params.items() if name != "int8"}
    with pytest.raises(StudyError, match=r"params.yaml has no `int8` section"):
        check_all(without)


def test_no_int8_variant_is_a_valid_study(study_params):
    params = with_param(study_params, "int8.variants", [])
    assert int8_settings(params).variants == ()
    assert not [run for run in post_training_runs(params, study_runs(params)) if run[1].endswith("+int8")]


def test_the_slices_keep_the_conversion_apart_from_the_list_of_variants(study_params):
    from stages.lib import fanin_slices

    one, fan_in = slices(study_params), fanin_slices.slices(study_params)
    fewer = with_param(study_params, "int8.variants", [])
    # which variants are converted is the benchmark's and aggregate's business, not each conversion's;
    # each slice file has one writer
    assert set(one) == {"quantize.json"} and one == slices(fewer)
    for name in ("benchmark.json", "aggregate.json"):
        assert fan_in[name]["int8"] == {"variants": ["fp32", "fp32_w0.352"]}
        assert fanin_slices.slices(fewer)[name]["int8"] == {"variants": []}
    changed = with_param(study_params, "int8.io", "int8")
    assert slices(changed)["quantize.json"]["int8"]["io"] == "int8" and fanin_slices.slices(changed) == fan_in


def test_representative_images_are_distinct_sorted_and_seeded():
    chosen = representative_indices(60000, 500, 0)
    assert len(set(chosen)) == 500 and (np.diff(chosen) > 0).all()
    np.testing.assert_array_equal(chosen, representative_indices(60000, 500, 0))
    assert not np.array_equal(chosen, representative_indices(60000, 500, 1))
    with pytest.raises(StudyError, match=r"int8.representative_images is 501, more than the 500 training images"):
        representative_indices(500, 501, 0)


def test_int8_inputs_are_the_pixels_quantized_with_the_model_s_scale():
    pixels = np.arange(256, dtype=np.float32).reshape(1, 16, 16) / 255
    quantized = model_inputs(pixels, (1 / 255, -128))
    assert quantized.dtype == np.int8
    np.testing.assert_array_equal(quantized.astype(int), np.arange(256).reshape(1, 16, 16) - 128)
    assert model_inputs(pixels, None).dtype == np.float32


# ---------------------------------------------------------------- RAM of int8 graphs

def _chain(dtype: str) -> Graph:
    """input -> conv (with constant weights) -> max-pool -> output, every
    activation of ``dtype``."""
    tensors = (Tensor((1, 28, 28, 1), dtype, 0), Tensor((32, 3, 3, 1), "INT8", 288), Tensor((32,), "INT32", 128),
               Tensor((1, 26, 26, 32), dtype, 0), Tensor((1, 13, 13, 32), dtype, 0))
    operators = (Operator("CONV_2D", (0, 1, 2), (3,), {}), Operator("MAX_POOL_2D", (3,), (4,), {}))
    return Graph(tensors, operators, (0,), (4,))


def test_liveness_counts_one_byte_per_int8_element():
    # conv: its input and output alive; pool: its input and output
    assert live_bytes(_chain("INT8")) == [28 * 28 + 26 * 26 * 32, 26 * 26 * 32 + 13 * 13 * 32]
    assert live_bytes(_chain("FLOAT32")) == [4 * b for b in live_bytes(_chain("INT8"))]
    # a float input quantized to int8 inside the graph: 4 bytes per pixel, then 1
    tensors = (Tensor((1, 28, 28, 1), "FLOAT32", 0), Tensor((1, 28, 28, 1), "INT8", 0),
               Tensor((1, 10), "INT8", 0), Tensor((1, 10), "FLOAT32", 0), Tensor((10, 784), "INT8", 7840))
    operators = (Operator("QUANTIZE", (0,), (1,), {}), Operator("FULLY_CONNECTED", (1, 4, -1), (2,), {}),
                 Operator("DEQUANTIZE", (2,), (3,), {}))
    graph = Graph(tensors, operators, (0,), (3,))
    # each tensor alive from the operator that writes it (the input: the start) to its last reader
    assert live_bytes(graph) == [4 * 784 + 784, 784 + 10, 10 + 4 * 10]


# ---------------------------------------------------------------- the conversion

SETTINGS = Int8Settings(("fp32",), 200, 0, "float", 0.5)


@pytest.mark.slow
def test_int8_conversion_gives_int8_weights_in_a_quarter_of_the_file(trained_fp32, mnist_dir):
    from stages.quantize import quantize_run

    tmp_path, float_report = trained_fp32
    report = quantize_run(tmp_path / "model", mnist_dir, "fp32", (0.0, 1.0), SETTINGS,
                          tmp_path / "deployed" / "mnist-fp32+int8-0" / "tflite",
                          tmp_path / "deploy" / "mnist-fp32+int8-0" / "record",
                          train_limit=10000, test_limit=2000)
    flatbuffer = (tmp_path / "deployed" / "mnist-fp32+int8-0" / "tflite" / "model.tflite").read_bytes()
    assert len(flatbuffer) == report["tflite_bytes"]
    # 93,770 weights at one byte each, with int32 biases, scales and the graph: near a quarter of the float file
    assert 0.22 < report["tflite_bytes"] / float_report["tflite_bytes"] < 0.32
    graph = read_graph(flatbuffer)
    for op in graph.operators:
        if op.name in ("CONV_2D", "FULLY_CONNECTED"):
            weights, bias = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
            assert weights.dtype == "INT8" and weights.constant_bytes == math.prod(weights.shape)
            assert bias.dtype == "INT32"
            assert graph.tensors[op.outputs[0]].dtype == "INT8"
    assert report["operators"]["QUANTIZE"] == 1 and report["operators"]["DEQUANTIZE"] == 1  # float in, float out
    assert report["macs_total"] == 2794240 and report["macs_binary"] == 0
    # int8 activations: a quarter of the float graph's peak, plus the float input kept alive
    assert report["peak_activation_bytes"] < float_report["peak_activation_bytes"] / 3
    assert report["input_bytes"] == 28 * 28 * 4
    # agreement is reported, not required; the accuracy drop is within the tolerance
    assert 0.98 <= report["agreement"] <= 1 and report["int8"]["accuracy_drop_pp"] <= SETTINGS.max_accuracy_drop_pp
    assert set(report["checks"]) == set(report["options_agreeing"]) == {"default", "bgemm", "xnnpack", "bgemm+xnnpack"}
    assert report["input_quantization"] is None and report["int8"]["representative_images"] == 200
    saved = json.loads((tmp_path / "deploy" / "mnist-fp32+int8-0" / "record" / "deploy.json").read_text())
    assert saved["tflite_bytes"] == report["tflite_bytes"]

    # the benchmark takes it as one more deployed model
    from stages.benchmark import load_subjects

    subjects = load_subjects(tmp_path / "deployed", tmp_path / "deploy", [("mnist", "fp32", 0), ("mnist", "fp32+int8", 0)])
    assert [s.variant for s in subjects] == ["fp32", "fp32+int8", "overhead"]
    assert subjects[1].images.dtype == np.float32 and subjects[1].options == tuple(report["options_agreeing"])


@pytest.mark.slow
def test_int8_input_and_output(trained_fp32, mnist_dir):
    from stages.benchmark import load_subjects
    from stages.quantize import quantize_run

    tmp_path, _ = trained_fp32
    settings = dataclasses.replace(SETTINGS, io="int8")
    report = quantize_run(tmp_path / "model", mnist_dir, "fp32", (0.0, 1.0), settings,
                          tmp_path / "deployed-io" / "mnist-fp32+int8-0" / "tflite",
                          tmp_path / "deploy-io" / "mnist-fp32+int8-0" / "record",
                          train_limit=10000, test_limit=2000)
    assert "QUANTIZE" not in report["operators"] and "DEQUANTIZE" not in report["operators"]
    assert report["input_bytes"] == 28 * 28
    scale, zero_point = report["input_quantization"]
    assert scale == pytest.approx(1 / 255) and zero_point == -128
    subjects = load_subjects(tmp_path / "deployed-io", tmp_path / "deploy-io", [("mnist", "fp32+int8", 0)])
    assert subjects[0].images.dtype == np.int8


@pytest.mark.slow
def test_a_conversion_beyond_the_tolerance_is_refused_in_one_line_and_writes_nothing(trained_fp32, mnist_dir,
                                                                                   monkeypatch):
    import stages.quantize
    from stages.lib.forms.int8 import quantize
    from stages.lib.training.trained import load_model

    tmp_path, _ = trained_fp32
    # a conversion that went wrong: the int8 model of other (random) weights
    other = randomized(load_model(tmp_path / "model"), seed=5)
    monkeypatch.setattr(stages.quantize, "quantize", lambda model, images, io, source: quantize(other, images, io))
    out = tmp_path / "refused"
    with pytest.raises(StudyError) as refused:
        stages.quantize.quantize_run(tmp_path / "model", mnist_dir, "fp32", (0.0, 1.0), SETTINGS, out / "model",
                                     out / "report", train_limit=10000, test_limit=2000)
    message = str(refused.value)
    assert "\n" not in message
    assert "loses" in message and "more than int8.max_accuracy_drop_pp = 0.5" in message
    assert not out.exists()


def test_a_network_without_int8_kernels_is_one_line():
    import tensorflow as tf

    from stages.lib.forms.int8 import quantize

    image = tf.keras.Input(shape=(4,))
    model = tf.keras.Model(image, tf.keras.layers.Lambda(lambda x: tf.math.lgamma(x + 2.0))(image))
    with pytest.raises(StudyError, match=r"int8 post-training quantization of net failed \(.*\): it applies to float "
                                         r"networks; remove the variant from int8.variants"):
        quantize(model, np.ones((4, 4), dtype=np.float32), "float", source="net")


# ---------------------------------------------------------------- tables and budgets

def _summary():
    return pd.DataFrame({
        "variant": ["fp32", "bnn", "fp32+int8"], "architecture": ["fp32", "bnn", "fp32+int8"],
        "recipe": ["article"] * 3, "epochs": [6] * 3, "seeds": [3] * 3,
        "validation_accuracy_mean": [0.9903, 0.9813, 0.9902],
        "test_accuracy_mean": [0.9903, 0.9813, 0.9902], "test_accuracy_ci95_low": [0.9888, 0.9761, 0.9890],
        "test_accuracy_ci95_high": [0.9916, 0.9855, 0.9913], "tflite_kib": [368.87, 18.80, 100.87],
        "ram_kib": [105.62, 105.62, 26.41], "runs_at_chance": [0] * 3, "agreement_min": [1.0, 1.0, 0.9995],
    })


def test_a_budget_between_the_1_bit_and_int8_files_picks_the_one_that_fits():
    from stages.lib.analysis.budgets import budget_line, picks

    chosen = {budget: ranked["variant"].iloc[0] if len(ranked) else None
              for budget, ranked in picks(_summary(), [16, 64, 128, None])}
    assert chosen == {16: None, 64: "bnn", 128: "fp32+int8", None: "fp32"}
    assert budget_line(_summary(), [64, 128]) == ("≤ 64 KiB: `bnn` (98.13%, 18.80 KiB); "
                                                 "≤ 128 KiB: `fp32+int8` (99.02%, 100.87 KiB)")


def _runs():
    accuracy = {"fp32": [0.990, 0.991, 0.992], "bnn": [0.980, 0.983, 0.981], "fp32+int8": [0.9899, 0.9911, 0.9918]}
    return pd.DataFrame([{"variant": variant, "seed": seed, "test_accuracy": value}
                         for variant, values in accuracy.items() for seed, value in enumerate(values)])


def _timings(int8_us=50.0, bnn_us=110.0, spread=0.02):
    """Four processes of five rounds: int8 and bnn at their latencies
    (fewer µs at two threads), each block off by a relative ``spread``."""
    rng = np.random.default_rng(3)
    rows = []
    for process, round_ in [(p, r) for p in range(4) for r in range(5)]:
        for variant, us in (("fp32+int8", int8_us), ("bnn", bnn_us), ("overhead", 5.0)):
            for options in ("bgemm+xnnpack",):
                for threads in (1, 2):
                    rows.append({"process": process, "round": round_, "variant": variant, "options": options,
                                 "threads": threads, "latency_us": us * threads ** -0.3 * (1 + spread * rng.normal())})
    return pd.DataFrame(rows)


def test_the_comparison_says_who_wins_each_figure_as_its_interval_allows():
    from stages.lib.analysis.int8_tables import comparison_table, int8_findings, int8_line, readable_int8

    table = comparison_table(_summary(), _runs(), _timings(), "bnn", "fp32+int8", "bgemm+xnnpack", "AMD EPYC")
    assert list(table["threads"]) == [1, 2]
    row = table.iloc[0]
    assert row["flash_ratio"] == pytest.approx(100.87 / 18.80) and row["ram_ratio"] == pytest.approx(105.62 / 26.41)
    assert row["int8_speedup_vs_one_bit"] == pytest.approx(110 / 50, rel=0.05)
    assert row["int8_speedup_rerun95_low"] < row["int8_speedup_vs_one_bit"] < row["int8_speedup_rerun95_high"]
    from scipy import stats

    differences = np.array([0.9899 - 0.980, 0.9911 - 0.983, 0.9918 - 0.981])
    assert row["int8_minus_one_bit"] == pytest.approx(differences.mean())
    assert row["int8_minus_one_bit_p_value"] == pytest.approx(stats.ttest_1samp(differences, 0).pvalue)
    sentence = int8_findings(table.assign(dataset="mnist"), str.upper)[0]
    assert sentence.startswith("MNIST, `bnn` against `fp32+int8`: flash: `bnn` 5.37x smaller (18.80 against 100.87 KiB)")
    assert "RAM: `fp32+int8` needs 4.00x less (26.41 against 105.62 KiB)" in sentence
    assert ": `fp32+int8` more accurate" in sentence and "speed on AMD EPYC" in sentence
    assert sentence.count("`fp32+int8` faster") == 2
    assert int8_line(table.assign(dataset="mnist"), str.upper).startswith(
        "`bnn` wins on flash; `fp32+int8` wins on RAM, accuracy, speed at 1 thread, speed at 2 threads (speed on AMD EPYC): "
        "flash: `bnn` 5.37x smaller")
    assert len(readable_int8(table.assign(dataset="mnist"))) == 2


def test_the_comparison_does_not_say_more_than_its_intervals():
    from stages.lib.analysis.int8_tables import comparison_table, int8_verdicts, int8_winners

    runs = _runs()
    runs.loc[runs["variant"] == "bnn", "test_accuracy"] = [0.9905, 0.9895, 0.9925]  # within the seeds' spread
    table = comparison_table(_summary(), runs, _timings(int8_us=100.0, bnn_us=100.0, spread=0.2), "bnn", "fp32+int8",
                             "bgemm+xnnpack", "AMD EPYC")
    verdicts = int8_verdicts(table)
    assert verdicts[2].endswith("the seeds cannot tell them apart")
    for threads, row in zip((1, 2), table.to_dict("records"), strict=True):
        assert row["int8_speedup_rerun95_low"] < 1 < row["int8_speedup_rerun95_high"]
    assert verdicts[3].count("not told apart") == 2
    assert int8_winners(table) == ("`bnn` wins on flash; `fp32+int8` wins on RAM; neither is told better on accuracy, "
                                   "speed at 1 thread, speed at 2 threads (speed on AMD EPYC)")


def test_the_comparison_is_empty_without_either_network():
    from stages.lib.analysis.int8_tables import comparison_table

    summary = _summary()[lambda s: s["variant"] != "fp32+int8"]
    assert comparison_table(summary, _runs(), _timings(), "bnn", "fp32+int8", "bgemm+xnnpack", "cpu").empty


@pytest.mark.slow
def test_int8_robustness_answers_every_corrupted_image_against_its_keras_model(trained_fp32, study_params, mnist_dir):
    from stages.corrupt import corrupt_dataset
    from stages.lib.settings.robustness import corrupt_slice
    from stages.lib.analysis.robustness_tables import gap_table, load_evaluations
    from stages.quantize import quantize_run
    from stages.robustness import evaluate_run
    from stages.robustness import evaluate_form
    from stages.lib.forms.registry import BY_NAME

    tmp_path, _ = trained_fp32
    params = with_param(with_param(study_params, "robustness.corruptions", ["stripe", "fog"]), "data.test_limit", 2000)
    corrupt_dataset(corrupt_slice(params), mnist_dir, tmp_path / "corrupted")
    source = tmp_path / "robustness" / "mnist-fp32-0" / "evaluation"
    evaluate_run(tmp_path / "model", tmp_path / "deployed" / "mnist-fp32-0" / "tflite",
                 tmp_path / "deploy" / "mnist-fp32-0" / "record", mnist_dir, tmp_path / "corrupted", (0.0, 1.0),
                 "bgemm+xnnpack", source, test_limit=2000)
    quantize_run(tmp_path / "model", mnist_dir, "fp32", (0.0, 1.0), SETTINGS, tmp_path / "int8-model",
                 tmp_path / "int8-report", train_limit=10000, test_limit=2000)
    evaluation = evaluate_form(tmp_path / "int8-model", tmp_path / "int8-report", source, mnist_dir,
                               tmp_path / "corrupted", (0.0, 1.0), "bgemm+xnnpack",
                               tmp_path / "robustness" / "mnist-fp32+int8-0" / "evaluation", BY_NAME["int8"],
                               test_limit=2000)
    assert list(evaluation["corruptions"]) == ["stripe", "fog"] and evaluation["test_images"] == 2000
    for result in evaluation["corruptions"].values():
        # its own answers on every image are its accuracy; agreement is with the float Keras model's
        assert result["deployed_images"] == 2000 and result["accuracy"] == result["deployed_accuracy"]
        assert 0.9 <= result["deployed_agreement"] <= 1
    answers = pd.read_csv(tmp_path / "robustness" / "mnist-fp32+int8-0" / "evaluation" / "predictions.csv")
    keras = pd.read_csv(source / "predictions.csv")
    assert list(answers.columns) == ["image", "label", "clean", "stripe", "fog"]
    assert evaluation["corruptions"]["fog"]["deployed_agreement"] == pytest.approx(
        float((answers["fog"] == keras["fog"]).mean()))
    # the tables take it as one more deployed network, compared with fp32 by seed
    evaluations = load_evaluations(tmp_path / "robustness", [("mnist", "fp32", 0), ("mnist", "fp32+int8", 0)])
    gaps = gap_table(evaluations, ["fp32", "fp32+int8"], "fp32")
    assert list(gaps["variant"]) == ["fp32+int8"] * 2
    # a form evaluated on other test images than its source was: one line, nothing written
    with pytest.raises(StudyError, match=r"predictions.csv answers other test images than this evaluation's"):
        evaluate_form(tmp_path / "int8-model", tmp_path / "int8-report", source, mnist_dir,
                      tmp_path / "corrupted", (0.0, 1.0), "bgemm+xnnpack", tmp_path / "elsewhere", BY_NAME["int8"],
                      test_limit=2000, test_images=500)
    assert not (tmp_path / "elsewhere").exists()
    # the source's answers without one of the corruptions: one line
    keras.drop(columns="fog").to_csv(source / "predictions.csv", index=False)
    with pytest.raises(StudyError, match=r"predictions.csv lacks fog: rerun `dvc repro --force robustness@mnist-fp32-0`"):
        evaluate_form(tmp_path / "int8-model", tmp_path / "int8-report", source, mnist_dir,
                      tmp_path / "corrupted", (0.0, 1.0), "bgemm+xnnpack", tmp_path / "elsewhere", BY_NAME["int8"], test_limit=2000)
    assert not (tmp_path / "elsewhere").exists()
