import dataclasses
import hashlib
import json

import numpy as np
import pytest

from conftest import randomized
from stages.lib.params import Validation
from stages.deploy import deploy_run
from stages.lib.forms.lce import convert, lce_ready
from stages.lib.forms.runtime import interpreter, strip_names
from stages.lib.training.networks import build_model
from stages.lib.training.variants import variant_from_params
from stages.lib.params import TrainSettings
from stages.lib.training.recipes import recipe_from_params
from stages.train import train_run


def test_binary_dense_becomes_an_equivalent_1x1_conv(study_params):
    model = randomized(build_model(variant_from_params("bnn", study_params["variants"])))
    converted = lce_ready(model)
    assert type(converted.get_layer("dense1")).__name__ == "QuantConv2D"
    assert converted.get_layer("dense1").kernel.shape == (1, 1, 576, 64)
    assert type(converted.get_layer("dense2")).__name__ == "QuantConv2D"
    x = np.random.default_rng(1).uniform(0, 1, (64, 28, 28, 1)).astype(np.float32)
    before = model(x, training=False).numpy()
    after = converted(x, training=False).numpy()
    assert after.shape == before.shape == (64, 10)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)
    assert (after.argmax(1) == before.argmax(1)).all()


def test_fp32_model_is_left_alone(study_params):
    model = build_model(variant_from_params("fp32", study_params["variants"]))
    assert lce_ready(model) is model


def test_1x1_form_makes_the_bnn_flatbuffer_small(study_params):
    model = randomized(build_model(variant_from_params("bnn", study_params["variants"])))
    converted = convert(model)
    stripped = strip_names(converted)
    assert len(stripped) <= 20 * 1024 < len(converted) + 1024
    # the binary dense kernels are bitpacked: 64x576 and 10x64 weights in 32-bit words, not floats
    assert len(stripped) < (576 * 64 + 64 * 10) * 4 / 4


def test_the_autograph_free_export_makes_the_file_keras_saving_makes(study_params):
    # stages.lib.forms.export traces the inference function alone, without AutoGraph; LCE's own
    # convert_keras_model saves the whole Keras model first (about 9 s more a model): the same bytes
    import larq_compute_engine as lce

    model = randomized(build_model(variant_from_params("bnn", study_params["variants"])))
    assert strip_names(convert(model)) == strip_names(lce.convert_keras_model(lce_ready(model)))


def test_stripping_names_keeps_the_outputs(study_params):
    model = randomized(build_model(variant_from_params("bnn", study_params["variants"])))
    converted = convert(model)
    x = np.random.default_rng(2).uniform(0, 1, (32, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(interpreter(converted, 1, "default").predict(x),
                                  interpreter(strip_names(converted), 1, "default").predict(x))


def test_ternary_converts_faithfully(study_params):
    # LCE reads tf.sign as binarization: Larq's ste_tern, converted as it is, turns its zeros into +1.
    model = randomized(build_model(variant_from_params("ternary", study_params["variants"])))
    ready = lce_ready(model)
    x = np.random.default_rng(3).uniform(0, 1, (64, 28, 28, 1)).astype(np.float32)
    keras_out = model(x, training=False).numpy()
    np.testing.assert_array_equal(ready(x, training=False).numpy(), keras_out)
    lite_out = interpreter(convert(model), 1, "default").predict(x)
    np.testing.assert_allclose(lite_out, keras_out, rtol=1e-4, atol=1e-5)


def test_ternary_form_matches_ste_tern_at_the_thresholds():
    import larq as lq
    import tensorflow as tf

    from stages.lib.forms.lce import ternary_without_sign

    x = tf.constant([-1.0, -0.05, -0.0499, 0.0, 0.0499, 0.05, 0.7], dtype=tf.float32)
    for quantizer in (lq.quantizers.SteTern(), lq.quantizers.SteTern(ternary_weight_networks=True)):
        np.testing.assert_array_equal(ternary_without_sign(quantizer)(x).numpy(), quantizer(x).numpy())


@pytest.fixture(scope="module")
def deployed_bnn(study_params, mnist_dir, tmp_path_factory):
    """A 1-bit net trained on 2,000 images for one epoch, deployed."""
    tmp_path = tmp_path_factory.mktemp("deployed")
    variant = variant_from_params("bnn", study_params["variants"])
    recipe = dataclasses.replace(recipe_from_params("article", study_params["recipes"]), epochs=1)
    train_run(variant, recipe, 0, TrainSettings(steps_per_execution=8), mnist_dir, tmp_path / "model",
              tmp_path / "live", train_limit=2000, verbose=0, validation=Validation(200, 0))
    report = deploy_run(tmp_path / "model", mnist_dir, variant.input_range,
                        tmp_path / "deployed" / "mnist-bnn-0" / "tflite", tmp_path / "deploy" / "mnist-bnn-0" / "record")
    return tmp_path, report


@pytest.mark.slow
def test_deploy_stage_on_a_small_trained_model(deployed_bnn):
    tmp_path, report = deployed_bnn
    flatbuffer = (tmp_path / "deployed" / "mnist-bnn-0" / "tflite" / "model.tflite").read_bytes()
    assert len(flatbuffer) == report["tflite_bytes"] and hashlib.sha256(flatbuffer).hexdigest() == report["tflite_sha256"]
    assert report["tflite_kib"] <= 20
    assert report["agreement"] >= 0.999
    assert report["test_images"] == 10000
    assert abs(report["converted_accuracy"] - report["keras_accuracy"]) <= 0.001
    assert report["options_agreeing"] == ["default", "bgemm", "xnnpack", "bgemm+xnnpack"]
    assert set(report["checks"]) == set(report["options_agreeing"])
    assert report["input_range"] == [0.0, 1.0]
    # the graph LCE made of the article's 1-bit net
    assert report["operators"] == {"ADD": 2, "CONV_2D": 1, "LceBconv2d": 4, "LceQuantize": 3, "MAX_POOL_2D": 2,
                                   "MUL": 2, "RESHAPE": 2, "SOFTMAX": 1}
    assert report["macs_total"] == 2794240 and report["macs_binary"] == 2599552
    assert report["peak_activation_bytes"] == 108160  # the first max-pool: 26x26x32 in, 13x13x32 out, floats
    assert json.loads((tmp_path / "deploy" / "mnist-bnn-0" / "record" / "deploy.json").read_text())["tflite_bytes"] == \
        report["tflite_bytes"]
    # the benchmark's inputs: the first test images, as uint8 pixels
    sample = np.load(tmp_path / "deploy" / "mnist-bnn-0" / "record" / "sample_images.npy")
    assert sample.dtype == np.uint8 and sample.shape == (64, 28, 28)


@pytest.mark.slow
def test_benchmark_times_every_combination_in_shuffled_rounds(deployed_bnn, study_params, mnist_dir):
    from stages.benchmark import load_subjects, run_benchmark
    from stages.lib.data.datasets import load_split, scale_images
    from stages.lib.forms.runtime import RUNTIMES
    from stages.lib.params import BenchmarkSettings

    OVERHEAD = RUNTIMES["lce"].overhead

    tmp_path, _ = deployed_bnn
    subjects = load_subjects(tmp_path / "deployed", tmp_path / "deploy", [("mnist", "bnn", 0)])
    assert [s.name for s in subjects] == ["mnist-bnn-0", OVERHEAD]
    assert subjects[0].dataset == "mnist" and subjects[0].images.shape == (64, 1, 28, 28, 1)
    # timed on the run's own test images, scaled as it was trained
    np.testing.assert_array_equal(subjects[0].images[:, 0], scale_images(load_split(mnist_dir, "test", 64)[0]))
    settings = BenchmarkSettings(threads=(1, 2), processes=2, rounds=3, calls_per_block=10, warmup_calls=3, seed=0)
    timings = run_benchmark(subjects, settings, progress=False)
    assert len(timings) == 2 * 3 * 2 * 4 * 2  # processes x rounds x models x option sets x threads
    assert (timings.groupby(["model", "options", "threads"]).size() == 2 * 3).all()
    assert sorted(timings["process"].unique()) == [0, 1] and (timings["latency_us"] > 0).all()
    order = ["process", "round", "position", "model", "options", "threads"]
    orders = timings.sort_values(order).groupby(["process", "round"])[["model", "options", "threads"]].apply(
        lambda block: tuple(map(tuple, block.to_numpy())))
    assert orders.nunique() > 1  # shuffled per round and process
    # each process is a fresh interpreter of its own, none of them this one
    import os

    pids = timings.groupby("process")["pid"].unique()
    assert all(len(p) == 1 for p in pids) and len({p[0] for p in pids}) == 2 and os.getpid() not in timings["pid"].values
    again = run_benchmark(subjects, settings, progress=False)
    assert again[order].equals(timings[order])  # the same order from the same seed
    # the trivial model is far cheaper than the network: it measures the binding's overhead
    medians = timings.groupby("model")["latency_us"].median()
    assert medians[OVERHEAD] < medians["mnist-bnn-0"] / 5
    assert set(timings["dataset"].dropna()) == {"mnist"}


def test_a_masked_cpu_name_carries_its_family_model_and_stepping():
    # Two cloud hosts both named "AMD EPYC" ran the study at different
    # speeds: a name without a model number gets the x86 identity added.
    from stages.benchmark import cpu_model

    masked = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
              "model name\t: AMD EPYC\nstepping\t: 1\n\nprocessor\t: 1\nmodel name\t: other\n")
    assert cpu_model(masked) == "AMD EPYC (family 25, model 17, stepping 1)"
    named = "cpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Platinum 8488C\nstepping\t: 8\n"
    assert cpu_model(named) == "Intel(R) Xeon(R) Platinum 8488C"
    assert cpu_model("model name\t: AMD EPYC\n") == "AMD EPYC"  # nothing to add
    assert cpu_model("")  # no cpuinfo at all: the platform's name, never empty


def test_the_benchmark_times_each_network_once_its_file_of_the_first_listed_seed():
    from stages.benchmark import timed_runs

    params = {"study": {"datasets": ["mnist", "fashion_mnist"], "variants": ["fp32", "bnn"], "seeds": [3, 1, 0]},
              "int8": {"variants": ["fp32"]}}
    assert timed_runs(params) == [("mnist", "fp32", 3), ("mnist", "bnn", 3), ("fashion_mnist", "fp32", 3),
                                  ("fashion_mnist", "bnn", 3), ("mnist", "fp32+int8", 3),
                                  ("fashion_mnist", "fp32+int8", 3)]


def test_benchmark_without_a_deployed_model_says_how_to_fix(tmp_path):
    from stages.benchmark import load_subjects
    from stages.lib.common import StudyError

    with pytest.raises(StudyError, match=r"mnist-bnn-0/record/deploy.json is missing: run `dvc repro deploy`"):
        load_subjects(tmp_path / "deployed", tmp_path / "deploy", [("mnist", "bnn", 0)])


def test_benchmark_with_damaged_sample_images_says_how_to_fix(tmp_path):
    from stages.benchmark import load_subjects
    from stages.lib.common import StudyError

    run = tmp_path / "deploy" / "fashion_mnist-bnn-0" / "record"
    run.mkdir(parents=True)
    (run / "deploy.json").write_text(json.dumps({"input_range": [0.0, 1.0], "options_agreeing": ["default"],
                                                 "input_quantization": None, "tflite_bytes": 6,
                                                 "tflite_sha256": hashlib.sha256(b"tflite").hexdigest()}))
    (tmp_path / "deployed" / "fashion_mnist-bnn-0" / "tflite").mkdir(parents=True)
    (tmp_path / "deployed" / "fashion_mnist-bnn-0" / "tflite" / "model.tflite").write_bytes(b"tflite")
    (run / "sample_images.npy").write_bytes(b"not numpy")
    with pytest.raises(StudyError, match=r"fashion_mnist-bnn-0/record is damaged \(.*\): run `dvc repro --force deploy`"):
        load_subjects(tmp_path / "deployed", tmp_path / "deploy", [("fashion_mnist", "bnn", 0)])
    np.save(run / "sample_images.npy", np.zeros((4, 28, 28), dtype=np.float32))
    with pytest.raises(StudyError, match=r"sample_images.npy holds no uint8 images: run `dvc repro --force deploy`"):
        load_subjects(tmp_path / "deployed", tmp_path / "deploy", [("fashion_mnist", "bnn", 0)])


def test_a_deployed_file_unlike_its_record_is_refused_before_it_is_loaded(tmp_path):
    # a truncated .tflite crashed LCE's interpreter with a signal and no message
    from stages.lib.common import StudyError
    from stages.lib.forms.deployed import read

    (tmp_path / "tflite").mkdir()
    (tmp_path / "record").mkdir()
    whole = b"\x1c\x00\x00\x00TFL3" + bytes(range(200))
    (tmp_path / "record" / "deploy.json").write_text(json.dumps(
        {"tflite_bytes": len(whole), "tflite_sha256": hashlib.sha256(whole).hexdigest()}))
    (tmp_path / "tflite" / "model.tflite").write_bytes(whole)
    assert read(tmp_path / "tflite", tmp_path / "record", "deploy")[0] == whole
    for damaged in (whole[:-50], b"", whole[:-1] + b"x"):
        (tmp_path / "tflite" / "model.tflite").write_bytes(damaged)
        with pytest.raises(StudyError, match=rf"tflite/model.tflite is not the file its record \(.*deploy.json\) "
                                             rf"describes \({len(damaged)} bytes\): it was damaged; `dvc checkout` "
                                             r"restores it, or rerun `dvc repro --force deploy`"):
            read(tmp_path / "tflite", tmp_path / "record", "deploy")
    (tmp_path / "record" / "deploy.json").write_text("{")
    with pytest.raises(StudyError, match=r"deploy.json is damaged \(JSONDecodeError\): run `dvc repro --force deploy`"):
        read(tmp_path / "tflite", tmp_path / "record", "deploy")


@pytest.mark.parametrize("content", [b"", b"not a zip archive", b"PK\x03\x04 truncated"])
def test_a_corrupt_model_is_one_line(tmp_path, content):
    from stages.lib.common import StudyError
    from stages.lib.training.trained import load_model

    (tmp_path / "model.keras").write_bytes(content)
    with pytest.raises(StudyError, match=r"model.keras is not a readable Keras model \(.*\): retrain it"):
        load_model(tmp_path)


@pytest.mark.slow
def test_robustness_stage_evaluates_keras_and_the_deployed_model_on_every_corruption(
        deployed_bnn, study_params, mnist_dir):
    import pandas as pd

    from stages.check import check_all
    from stages.corrupt import corrupt_dataset
    from stages.lib.common import StudyError
    from stages.lib.data.robustness import image_subset
    from stages.lib.settings.robustness import corrupt_slice
    from stages.robustness import evaluate_run
    from conftest import with_param

    tmp_path, _ = deployed_bnn
    params = with_param(with_param(study_params, "robustness.corruptions", ["stripe", "fog", "inversion"]),
                        "data.test_limit", 3000)
    check_all(params)
    corrupt_dataset(corrupt_slice(params), mnist_dir, tmp_path / "corrupted")
    out = tmp_path / "robustness" / "mnist-bnn-0"
    deployed, record = tmp_path / "deployed" / "mnist-bnn-0" / "tflite", tmp_path / "deploy" / "mnist-bnn-0" / "record"
    evaluation = evaluate_run(tmp_path / "model", deployed, record, mnist_dir, tmp_path / "corrupted", (0.0, 1.0),
                              "bgemm+xnnpack", out, test_limit=3000)
    assert list(evaluation["corruptions"]) == ["stripe", "fog", "inversion"]
    assert evaluation["test_images"] == 3000 and evaluation["options"] == "bgemm+xnnpack"
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.columns) == ["image", "label", "clean", "stripe", "fog", "inversion"]
    assert list(predictions["image"]) == list(range(3000))
    assert evaluation["clean_accuracy"] == pytest.approx((predictions["clean"] == predictions["label"]).mean())
    for name, result in evaluation["corruptions"].items():
        assert result["accuracy"] == pytest.approx((predictions[name] == predictions["label"]).mean())
        assert result["deployed_images"] == 2000 and result["images"] == 3000
        # inputs far from the training data: the converted thresholds still give Keras's answers
        assert result["deployed_agreement"] >= 0.999, name
    assert evaluation["corruptions"]["fog"]["level"] == 5 and evaluation["corruptions"]["stripe"]["level"] is None
    # robustness.test_images: the images drawn for every run alike, each answered as on the whole split
    subset = evaluate_run(tmp_path / "model", deployed, record, mnist_dir, tmp_path / "corrupted", (0.0, 1.0),
                          "bgemm+xnnpack", tmp_path / "subset", test_limit=3000, test_images=500, seed=0)
    drawn = pd.read_csv(tmp_path / "subset" / "predictions.csv")
    assert subset["test_images"] == 500 and subset["of_test_images"] == 3000
    assert list(drawn["image"]) == list(image_subset(3000, 500, 0))
    whole = predictions.set_index("image").loc[drawn["image"]].reset_index()
    assert drawn.equals(whole)
    assert all(result["images"] == 500 and result["deployed_images"] == 500
               for result in subset["corruptions"].values())
    # a corrupted file that no longer matches its manifest is one line, and leaves the finished evaluation
    finished = (out / "robustness.json").read_bytes()
    damaged = tmp_path / "corrupted" / "fog-images-idx3-ubyte"
    damaged.write_bytes(damaged.read_bytes()[:-10])
    with pytest.raises(StudyError, match="fog-images-idx3-ubyte does not match its checksum"):
        evaluate_run(tmp_path / "model", deployed, record, mnist_dir, tmp_path / "corrupted", (0.0, 1.0),
                     "bgemm+xnnpack", out, test_limit=3000)
    assert (out / "robustness.json").read_bytes() == finished
    # corruptions of another number of test images than the run's
    with pytest.raises(StudyError, match="holds corruptions of 3000 test images, the run uses 10000"):
        evaluate_run(tmp_path / "model", deployed, record, mnist_dir, tmp_path / "corrupted", (0.0, 1.0),
                     "bgemm+xnnpack", out)

