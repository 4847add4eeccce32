"""int4 weights after training: the params section, the registry's entry,
the conversion (int4 weights, int8 activations) run by LiteRT's interpreter,
its record, its refusal beyond the tolerance, and the benchmark timing it
through LiteRT with LiteRT's own overhead."""

import math

import numpy as np
import pytest

from conftest import randomized, with_param
from stages.lib.common import StudyError
from stages.lib.forms.graph import read_graph
from stages.lib.forms.int4 import FORM, calibration_images
from stages.lib.forms.registry import form_of, overhead_of, post_training_runs, runtime_of, writing_stage
from stages.lib.params import Validation, study_runs
from stages.lib.settings.int4 import Int4Settings, int4_settings, slices

SETTINGS = Int4Settings(("fp32",), 200, 0, 0.5)


# ---------------------------------------------------------------- the section and the registry

def test_the_default_section_is_valid_and_the_registry_knows_the_form(study_params):
    assert int4_settings(study_params).variants == ("fp32_w0.352",)
    assert form_of("fp32_w0.352+int4") is FORM and writing_stage("fp32_w0.352+int4") == "quantize_int4"
    assert (FORM.bits, FORM.mac_bits) == (4, 8)
    assert runtime_of("fp32_w0.352+int4") == "litert" and runtime_of("fp32+int8") == runtime_of("bnn") == "lce"
    assert overhead_of("fp32_w0.352+int4") == "overhead_litert" and overhead_of("bnn") == "overhead"
    runs = post_training_runs(study_params, study_runs(study_params))
    seeds = study_params["study"]["seeds"]
    assert [run for run in runs if run[1].endswith("+int4")] == [("mnist", "fp32_w0.352+int4", seed) for seed in seeds]
    # the conversion's slice leaves the list of variants to the fan-in stages
    assert slices(study_params) == {"quantize_int4.json": {"int4": {"calibration_images": 500, "seed": 0,
                                                                     "max_accuracy_drop_pp": 0.5}}}


def test_every_form_runs_on_a_runtime_the_study_knows_and_no_other_is_loaded():
    from stages.lib.forms.registry import FORMS
    from stages.lib.forms.runtime import OVERHEAD_MODELS, RUNTIMES, interpreter

    assert all(form.runtime in RUNTIMES for form in FORMS)
    # one overhead model per runtime, each its own name
    assert len(set(OVERHEAD_MODELS)) == len(RUNTIMES)
    with pytest.raises(StudyError, match=r"unknown runtime 'tflm' for the converted model: one of lce, litert"):
        interpreter(b"", 1, "default", runtime="tflm")


def test_each_form_s_settings_module_names_the_registry_s_section():
    # settings import nothing of forms (forms stand above them): each names its section, held equal here
    import importlib

    from stages.lib.forms.registry import FORMS

    for form in FORMS:
        assert importlib.import_module(f"stages.lib.settings.{form.name}").SECTION == form.section, form.name


@pytest.mark.parametrize("key, value, message", [
    ("variants", ["bnn"], r"int4.variants: bnn is not a float network \(kernel_quantizer, .* set\): "
                          r"int4 post-training quantization applies to float networks; remove it"),
    ("variants", ["fp32_w0.5"], r"int4.variants names fp32_w0.5, which study.variants .* leaves out"),
    ("variants", ["fp32_w0.352", "fp32_w0.352"], r"int4.variants lists a variant twice"),
    ("calibration_images", 0, r"int4.calibration_images must be a positive whole number, got 0"),
    ("calibration_images", 5001, r"int4.calibration_images is 5001, more than the 5000 held-out validation images"),
    ("seed", -1, r"int4.seed must be a whole number >= 0"),
    ("max_accuracy_drop_pp", "1", r"int4.max_accuracy_drop_pp must be a number of percentage points >= 0"),
    ("weight_bits", 2, r"int4 has unknown keys weight_bits; valid keys: variants, calibration_images"),
])
def test_a_wrong_value_is_one_line_naming_the_key(study_params, key, value, message):
    from stages.check import check_all

    with pytest.raises(StudyError, match=message) as refused:
        check_all(with_param(study_params, f"int4.{key}", value))
    assert "\n" not in str(refused.value)


def test_no_int4_variant_is_a_valid_study(study_params):
    params = with_param(study_params, "int4.variants", [])
    assert int4_settings(params).variants == ()
    assert not [run for run in post_training_runs(params, study_runs(params)) if run[1].endswith("+int4")]


def test_calibration_images_are_held_out_images_drawn_by_the_seed():
    held_out = np.arange(1000)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    chosen = calibration_images(held_out, 50, 3)
    assert len(chosen) == 50 and np.array_equal(chosen, calibration_images(held_out, 50, 3))
    assert len(np.unique(chosen[:, 0, 0])) == 50 and not np.array_equal(chosen, calibration_images(held_out, 50, 4))
    with pytest.raises(StudyError, match=r"int4.calibration_images is 1001, more than the 1000 held-out"):
        calibration_images(held_out, 1001, 0)


def test_a_file_litert_cannot_load_is_one_line(tmp_path):
    import tensorflow as tf

    from stages.lib.forms.lce import convert
    from stages.lib.forms.runtime import interpreter

    with pytest.raises(StudyError, match=r"x.tflite is not a model TensorFlow Lite can load \(no TFL3"):
        interpreter(b"not a model", 1, "default", source="x.tflite", runtime="litert")
    # a whole file with LCE's binary operators, which LiteRT has no kernels for
    import larq

    inputs = tf.keras.Input((8, 8, 1))
    binary = larq.layers.QuantConv2D(4, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                     kernel_constraint="weight_clip", use_bias=False)(inputs)
    flatbuffer = convert(tf.keras.Model(inputs, tf.keras.layers.Flatten()(binary)))
    with pytest.raises(StudyError, match=r"y.tflite is not a model TensorFlow Lite can load \(.*\): rerun") as refused:
        interpreter(flatbuffer, 1, "default", source="y.tflite", runtime="litert")
    assert "\n" not in str(refused.value)


def test_robustness_takes_a_form_with_its_source_only(tmp_path):
    from stages.robustness import main

    common = ["--variant", "fp32", "--params", "p.json", "--data", "d", "--model", "m", "--corrupted", "c",
              "--deployed", "x", "--record", "r", "--out", str(tmp_path / "out")]
    with pytest.raises(StudyError, match=r"--form and --source go together"):
        main([*common, "--form", "int4"])


# ---------------------------------------------------------------- the conversion

@pytest.mark.slow
def test_int4_file_holds_int4_weights_runs_on_litert_and_is_timed_with_its_own_overhead(trained_fp32, mnist_dir):
    from stages.benchmark import load_subjects, time_in_process
    from stages.lib.params import BenchmarkSettings
    from stages.quantize_int4 import quantize_run

    tmp_path, float_report = trained_fp32
    report = quantize_run(tmp_path / "model", mnist_dir, "fp32", (0.0, 1.0), SETTINGS,
                          tmp_path / "deployed" / "mnist-fp32+int4-0" / "tflite",
                          tmp_path / "deploy" / "mnist-fp32+int4-0" / "record", Validation(1000, 0),
                          train_limit=10000, test_limit=2000)
    flatbuffer = (tmp_path / "deployed" / "mnist-fp32+int4-0" / "tflite" / "model.tflite").read_bytes()
    assert len(flatbuffer) == report["tflite_bytes"]
    # every convolution's and dense layer's weights in int4, two to a byte, with int32 biases and int8 outputs
    graph = read_graph(flatbuffer)
    int4_bytes = 0
    for op in graph.operators:
        if op.name in ("CONV_2D", "FULLY_CONNECTED"):
            weights, bias = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
            assert weights.dtype == "INT4" and weights.constant_bytes == math.ceil(math.prod(weights.shape) / 2)
            assert bias.dtype == "INT32" and graph.tensors[op.outputs[0]].dtype == "INT8"
            int4_bytes += weights.constant_bytes
    assert report["int4"]["constant_bytes_by_type"]["INT4"] == int4_bytes
    assert sum(report["int4"]["constant_bytes_by_type"].values()) == report["weights_bytes"]
    # 93,322 weights at half a byte: under a sixth of the float file (the int8 one is above a quarter)
    assert report["tflite_bytes"] < float_report["tflite_bytes"] / 6
    assert report["operators"]["QUANTIZE"] == 1 and report["operators"]["DEQUANTIZE"] == 1  # float in, float out
    assert report["peak_activation_bytes"] < float_report["peak_activation_bytes"] / 3   # int8 activations
    assert report["macs_total"] == 2794240 and report["input_quantization"] is None
    assert 0.97 <= report["agreement"] <= 1 and report["int4"]["accuracy_drop_pp"] <= SETTINGS.max_accuracy_drop_pp
    assert set(report["checks"]) == set(report["options_agreeing"]) == {"default", "bgemm", "xnnpack", "bgemm+xnnpack"}
    assert all(0 <= check["converted_validation_accuracy"] <= 1 for check in report["checks"].values())

    # the benchmark times it through LiteRT, beside the trivial model timed through LiteRT too
    subjects = load_subjects(tmp_path / "deployed", tmp_path / "deploy",
                             [("mnist", "fp32", 0), ("mnist", "fp32+int4", 0)])
    assert [(s.variant, s.runtime) for s in subjects] == [
        ("fp32", "lce"), ("fp32+int4", "litert"), ("overhead", "lce"), ("overhead_litert", "litert")]
    settings = BenchmarkSettings(threads=(1,), processes=1, rounds=1, calls_per_block=3, warmup_calls=1, seed=0)
    timings = time_in_process([subjects[1], subjects[3]], settings, 0)
    assert set(timings["model"]) == {"mnist-fp32+int4-0", "overhead_litert"} and (timings["latency_us"] > 0).all()


@pytest.mark.slow
def test_an_int4_conversion_beyond_the_tolerance_is_refused_in_one_line_and_writes_nothing(
        trained_fp32, mnist_dir, monkeypatch):
    import stages.quantize_int4
    from stages.lib.forms.int4 import quantize
    from stages.lib.training.trained import load_model

    tmp_path, _ = trained_fp32
    other = randomized(load_model(tmp_path / "model"), seed=5)
    monkeypatch.setattr(stages.quantize_int4, "quantize", lambda model, images, source: quantize(other, images))
    out = tmp_path / "refused-int4"
    with pytest.raises(StudyError) as refused:
        stages.quantize_int4.quantize_run(tmp_path / "model", mnist_dir, "fp32", (0.0, 1.0), SETTINGS, out / "model",
                                          out / "report", Validation(1000, 0), train_limit=10000, test_limit=2000)
    assert "\n" not in str(refused.value)
    assert "the int4 model of" in str(refused.value) and "more than int4.max_accuracy_drop_pp = 0.5" in str(refused.value)
    assert not out.exists()
