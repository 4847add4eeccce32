import json

import numpy as np
import pytest

from stages.deploy import convert, deploy_run, interpreter, lce_ready, strip_names
from stages.lib.networks import build_model, variant_from_params
from stages.lib.params import TrainSettings
from stages.train import train_run


def _randomized(model, seed=0):
    """Random weights everywhere, BN statistics included, so that the
    equivalence check is not helped by identity BN layers."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([
                rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if "variance" in v.name
                else rng.normal(0, 0.5, w.shape).astype(np.float32)
                for w, v in zip(weights, layer.weights, strict=True)
            ])
    return model


def test_binary_dense_becomes_an_equivalent_1x1_conv(study_params):
    model = _randomized(build_model(variant_from_params("bnn", study_params["variants"])))
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
    model = _randomized(build_model(variant_from_params("bnn", study_params["variants"])))
    converted = convert(model)
    stripped = strip_names(converted)
    assert len(stripped) <= 20 * 1024 < len(converted) + 1024
    # the binary dense kernels are bitpacked: 64x576 and 10x64 weights in 32-bit words, not floats
    assert len(stripped) < (576 * 64 + 64 * 10) * 4 / 4


def test_stripping_names_keeps_the_outputs(study_params):
    model = _randomized(build_model(variant_from_params("bnn", study_params["variants"])))
    converted = convert(model)
    x = np.random.default_rng(2).uniform(0, 1, (32, 28, 28, 1)).astype(np.float32)
    options = {"use_indirect_bgemm": False, "use_xnnpack": False}
    np.testing.assert_array_equal(interpreter(converted, 1, options).predict(x),
                                  interpreter(strip_names(converted), 1, options).predict(x))


def test_ternary_converts_faithfully(study_params):
    # LCE reads tf.sign as binarization: Larq's ste_tern, converted as it is, turns its zeros into +1.
    model = _randomized(build_model(variant_from_params("ternary", study_params["variants"])))
    ready = lce_ready(model)
    x = np.random.default_rng(3).uniform(0, 1, (64, 28, 28, 1)).astype(np.float32)
    keras_out = model(x, training=False).numpy()
    np.testing.assert_array_equal(ready(x, training=False).numpy(), keras_out)
    options = {"use_indirect_bgemm": False, "use_xnnpack": False}
    lite_out = interpreter(convert(model), 1, options).predict(x)
    np.testing.assert_allclose(lite_out, keras_out, rtol=1e-4, atol=1e-5)


def test_ternary_form_matches_ste_tern_at_the_thresholds():
    import larq as lq
    import tensorflow as tf

    from stages.deploy import ternary_without_sign

    x = tf.constant([-1.0, -0.05, -0.0499, 0.0, 0.0499, 0.05, 0.7], dtype=tf.float32)
    for quantizer in (lq.quantizers.SteTern(), lq.quantizers.SteTern(ternary_weight_networks=True)):
        np.testing.assert_array_equal(ternary_without_sign(quantizer)(x).numpy(), quantizer(x).numpy())


@pytest.mark.slow
def test_deploy_stage_on_a_small_trained_model(study_params, mnist_dir, tmp_path):
    variant = variant_from_params("bnn", study_params["variants"])
    settings = TrainSettings(learning_rate=0.001, batch_size=64, epochs=1, steps_per_execution=8)
    train_run(variant, 0, settings, mnist_dir, tmp_path / "model", tmp_path / "live", train_limit=2000, verbose=0)
    report = deploy_run(tmp_path / "model", mnist_dir, variant.input_range, tmp_path / "deployed",
                        tmp_path / "deploy", timed_inferences=1000, warmup_inferences=50)
    assert (tmp_path / "deployed" / "model.tflite").stat().st_size == report["tflite_bytes"]
    assert report["tflite_kib"] <= 20
    assert report["agreement"] >= 0.999
    assert report["test_images"] == 10000
    assert abs(report["converted_accuracy"] - report["keras_accuracy"]) <= 0.001
    assert 0 < report["latency_median_us"] <= report["latency_p90_us"]
    assert report["throughput_images_per_s"] > 0
    assert set(report["best_options"]) == {"use_indirect_bgemm", "use_xnnpack"}
    assert len(report["candidates"]) == 4 and report["cpu"]
    assert json.loads((tmp_path / "deploy" / "deploy.json").read_text())["tflite_bytes"] == report["tflite_bytes"]


@pytest.mark.parametrize("content", [b"", b"not a zip archive", b"PK\x03\x04 truncated"])
def test_a_corrupt_model_is_one_line(tmp_path, content):
    from stages.lib.common import StudyError
    from stages.train import load_model

    (tmp_path / "model.keras").write_bytes(content)
    with pytest.raises(StudyError, match=r"model.keras is not a readable Keras model \(.*\): retrain it"):
        load_model(tmp_path)
