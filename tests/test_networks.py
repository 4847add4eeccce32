import copy

import pytest

from stages.lib.common import StudyError
from stages.lib.training.networks import build_model, constraint_names, make_quantizer, quantizer_names
from stages.lib.training.variants import ACTIVATIONS, CONSTRAINTS, LARQ_QUANTIZERS, variant_from_params
from stages.profile import profile_figures, summary_text

import tensorflow as tf  # after stages: Keras 2 is selected first


def _profile(study_params, name):
    return profile_figures(build_model(variant_from_params(name, study_params["variants"])))


def test_fp32_profile_is_the_articles(study_params):
    figures = _profile(study_params, "fp32")
    assert figures["params_total"] == 93770
    assert figures["params_32bit"] == 93770 and figures["params_1bit"] == 0
    assert figures["params_by_bitwidth"] == {"32": 93770}
    assert round(figures["memory_kib"], 2) == 366.29
    assert figures["memory_kib"] == 93770 * 32 / 8 / 1024
    assert figures["fp32_equivalent_kib"] == figures["memory_kib"]
    assert figures["macs_total"] == 2794240
    assert figures["macs_by_precision"] == {"32": 2794240}
    assert figures["binarized_mac_fraction"] == 0.0


def test_bnn_profile_is_the_articles(study_params):
    figures = _profile(study_params, "bnn")
    assert figures["params_total"] == 93556
    assert figures["params_32bit"] == 468
    assert figures["params_1bit"] == 93088
    assert round(figures["memory_kib"], 2) == 13.19
    assert figures["memory_kib"] == (93088 + 468 * 32) / 8 / 1024
    assert figures["fp32_equivalent_kib"] == 93556 * 32 / 8 / 1024
    assert figures["macs_total"] == 2794240
    assert figures["macs_1bit"] == 2599552
    assert figures["macs_32bit"] == 194688
    assert round(figures["binarized_mac_fraction"], 4) == 0.9303


def test_layer_shapes_follow_the_article(study_params):
    for name in ("fp32", "bnn"):
        model = build_model(variant_from_params(name, study_params["variants"]))
        shapes = [tuple(layer.output_shape[1:]) for layer in model.layers]
        assert shapes[:11] == [
            (26, 26, 32), (13, 13, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (5, 5, 64),
            (3, 3, 64), (3, 3, 64), (576,), (64,), (64,),
        ]
        assert shapes[-1] == (10,) and model.layers[-1].activation.__name__ == "softmax"


def test_bnn_quantizes_all_but_the_first_input(study_params):
    model = build_model(variant_from_params("bnn", study_params["variants"]))
    quantized = [layer for layer in model.layers if hasattr(layer, "kernel_quantizer")]
    assert [layer.name for layer in quantized] == ["conv1", "conv2", "conv3", "dense1", "dense2"]
    assert quantized[0].input_quantizer is None
    for layer in quantized:
        assert type(layer.kernel_quantizer).__name__ == "SteSign"
        assert type(layer.kernel_constraint).__name__ == "weight_clip"
        assert not layer.use_bias
    for layer in quantized[1:]:
        assert type(layer.input_quantizer).__name__ == "SteSign"
    bns = [layer for layer in model.layers if layer.name.startswith("bn")]
    assert len(bns) == 5 and not any(bn.scale for bn in bns)


def test_summary_text_is_larqs_table(study_params):
    text = summary_text(build_model(variant_from_params("bnn", study_params["variants"])))
    assert "bnn stats" in text and "Ratio of MACs that are binarized  0.9303" in text


def test_quantizer_with_arguments(study_params):
    variants = copy.deepcopy(study_params["variants"])
    variants["bnn"]["kernel_quantizer"] = {"name": "dorefa_quantizer", "k_bit": 4, "mode": "weights"}
    model = build_model(variant_from_params("bnn", variants))
    assert model.get_layer("conv2").kernel_quantizer.precision == 4


def test_known_quantizer_names():
    names = quantizer_names()
    for name in ("ste_sign", "approx_sign", "ste_tern", "dorefa_quantizer", "swish_sign"):
        assert name in names


def test_the_names_check_knows_are_those_of_the_installed_larq_and_keras():
    # `check` validates variants without loading TensorFlow (about a second
    # instead of six): its written-out tables must be what Larq and Keras accept
    import inspect

    import tensorflow as tf

    assert list(LARQ_QUANTIZERS) == quantizer_names()
    for name, arguments in LARQ_QUANTIZERS.items():
        cls = tf.keras.utils.get_custom_objects()[name]
        own = [p for p in inspect.signature(cls.__init__).parameters.values()
               if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in ("self", "metrics")]
        assert tuple(p.name for p in own) == arguments, name
    assert list(CONSTRAINTS) == constraint_names()
    keras = {name for name in dir(tf.keras.activations) if not name.startswith("_")
             and name not in ("get", "serialize", "deserialize") and callable(getattr(tf.keras.activations, name))}
    assert set(ACTIVATIONS) == keras
    for name in ACTIVATIONS:
        tf.keras.activations.get(name)


def test_a_checked_quantizer_builds_in_larq(study_params):
    # every argument the check lets through is one Larq's constructor takes
    for name, arguments in LARQ_QUANTIZERS.items():
        values = {"k_bit": 2, "mode": "weights", "clip_value": 1.0, "threshold_value": 0.05,
                  "ternary_weight_networks": False, "beta": 5.0}
        variants = copy.deepcopy(study_params["variants"])
        variants["bnn"]["kernel_quantizer"] = {"name": name, **{a: values[a] for a in arguments}, "metrics": []}
        make_quantizer(variant_from_params("bnn", variants).kernel_quantizer)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("kernel_quantizer", "ste_sing", r"variants\.bnn\.kernel_quantizer: unknown quantizer 'ste_sing'; Larq knows .*approx_sign.*ste_sign"),
        ("input_quantizer", 3, r"variants\.bnn\.input_quantizer must be a quantizer name"),
        ("kernel_constraint", "clip", r"variants\.bnn\.kernel_constraint: unknown constraint 'clip'; valid: .*weight_clip"),
        ("activation", "relux", r"variants\.bnn\.activation: unknown activation 'relux'"),
        ("use_bias", "no", r"variants\.bnn\.use_bias must be true or false"),
        ("input_range", [1, 0], r"variants\.bnn\.input_range must be \[low, high\]"),
    ],
)
def test_bad_variant_values_name_the_param(study_params, key, value, message):
    variants = copy.deepcopy(study_params["variants"])
    variants["bnn"][key] = value
    with pytest.raises(StudyError, match=message):
        variant_from_params("bnn", variants)


def test_quantizer_arguments_larq_rejects(study_params):
    variants = copy.deepcopy(study_params["variants"])
    variants["bnn"]["kernel_quantizer"] = {"name": "dorefa_quantizer", "bits": 4}
    with pytest.raises(StudyError, match=r"variants\.bnn\.kernel_quantizer: Larq rejects"):
        variant_from_params("bnn", variants)


def test_unknown_and_missing_variant_keys(study_params):
    variants = copy.deepcopy(study_params["variants"])
    variants["bnn"]["kernel_quantiser"] = "ste_sign"
    with pytest.raises(StudyError, match=r"variants\.bnn has unknown keys kernel_quantiser"):
        variant_from_params("bnn", variants)
    del variants["bnn"]["kernel_quantiser"], variants["bnn"]["use_bias"]
    with pytest.raises(StudyError, match=r"variants\.bnn lacks use_bias"):
        variant_from_params("bnn", variants)


def test_unknown_variant_lists_the_defined_ones(study_params):
    with pytest.raises(StudyError, match=r"unknown variant 'bnm': params.yaml defines bnn, bnn_bop, bnn_cosine, "
                                         r"bnn_fp_edges, bnn_fp_edges_bop, bnn_fp_edges_cosine, bnn_full, bwn, dorefa4, "
                                         r"dorefa8, fp32, fp32_cosine, ternary under `variants`"):
        variant_from_params("bnm", study_params["variants"])


# The frontier variants' own profiles. Larq counts k-bit MACs by the larger
# bit width of their two inputs; only 1-bit MACs count as binarized.
@pytest.mark.parametrize(
    "name, params_by_bitwidth, memory_kib, macs_by_precision",
    [
        ("dorefa8", {"8": 93088, "32": 468}, (93088 * 8 + 468 * 32) / 8192, {"8": 2599552, "32": 194688}),
        ("dorefa4", {"4": 93088, "32": 468}, (93088 * 4 + 468 * 32) / 8192, {"4": 2599552, "32": 194688}),
        ("ternary", {"2": 93088, "32": 468}, (93088 * 2 + 468 * 32) / 8192, {"2": 2599552, "32": 194688}),
        ("bwn", {"1": 93088, "32": 468}, (93088 + 468 * 32) / 8192, {"32": 2794240}),
        ("bnn_fp_edges", {"1": 92160, "32": 1396}, (92160 + 1396 * 32) / 8192, {"1": 2598912, "32": 195328}),
        ("bnn_full", {"1": 93088, "32": 468}, (93088 + 468 * 32) / 8192, {"1": 2794240}),
    ],
)
def test_frontier_variant_profiles(study_params, name, params_by_bitwidth, memory_kib, macs_by_precision):
    figures = _profile(study_params, name)
    assert figures["params_total"] == 93556
    assert figures["params_by_bitwidth"] == params_by_bitwidth
    assert figures["memory_kib"] == memory_kib
    assert figures["fp32_equivalent_kib"] == 93556 * 32 / 8192
    assert figures["macs_total"] == 2794240
    assert figures["macs_by_precision"] == macs_by_precision
    assert figures["binarized_mac_fraction"] == macs_by_precision.get("1", 0) / 2794240


def test_frontier_rounded_figures(study_params):
    rounded = {name: (round(_profile(study_params, name)["memory_kib"], 2),
                      round(_profile(study_params, name)["binarized_mac_fraction"], 4))
               for name in ("dorefa8", "dorefa4", "ternary", "bwn", "bnn_fp_edges", "bnn_full")}
    assert rounded == {"dorefa8": (92.73, 0.0), "dorefa4": (47.28, 0.0), "ternary": (24.55, 0.0),
                       "bwn": (13.19, 0.0), "bnn_fp_edges": (16.70, 0.9301), "bnn_full": (13.19, 1.0)}


def test_extended_set_names_defined_variants(study_params):
    from stages.lib.params import extended_variants

    assert extended_variants(study_params) == [
        "fp32", "dorefa8", "dorefa4", "bwn", "ternary", "bnn_fp_edges", "bnn", "bnn_full", "fp32_cosine", "bnn_bop",
        "bnn_cosine", "bnn_fp_edges_bop", "bnn_fp_edges_cosine"]
    broken = copy.deepcopy(study_params)
    broken["study"]["extended"] = ["fp32", "bnn4"]
    with pytest.raises(StudyError, match=r"study.extended names bnn4, not defined under `variants`"):
        extended_variants(broken)


def test_bnn_full_binarizes_the_image(study_params):
    variant = variant_from_params("bnn_full", study_params["variants"])
    assert variant.input_range == (-1.0, 1.0)
    model = build_model(variant)
    assert type(model.get_layer("conv1").input_quantizer).__name__ == "SteSign"


def test_bnn_fp_edges_keeps_first_and_last_layers_float(study_params):
    model = build_model(variant_from_params("bnn_fp_edges", study_params["variants"]))
    for name in ("conv1", "dense2"):
        layer = model.get_layer(name)
        assert layer.kernel_quantizer is None and layer.input_quantizer is None and layer.kernel_constraint is None
    assert type(model.get_layer("conv2").kernel_quantizer).__name__ == "SteSign"


def test_the_recipe_s_batchnorm_momentum_reaches_every_batch_norm(study_params):
    variant = variant_from_params("bnn", study_params["variants"])
    assert variant.recipe == "article"
    momenta = {layer.momentum for layer in build_model(variant, 0.9).layers
               if isinstance(layer, tf.keras.layers.BatchNormalization)}
    assert momenta == {0.9}
    assert {layer.momentum for layer in build_model(variant).layers
            if isinstance(layer, tf.keras.layers.BatchNormalization)} == {0.99}


def _at(study_params, name):
    from stages.lib.training.variants import with_widths

    params = copy.deepcopy(study_params)
    params["study"]["variants"] = [name]
    return variant_from_params(name, with_widths(params)["variants"])


@pytest.mark.parametrize("name", ["fp32", "bnn"])
def test_width_1_is_the_article_s_network_weight_for_weight(study_params, name):
    """A variant read from a slice that spells width 1 out builds the
    article's network, and a seed draws the same initial weights as the
    width-less build (training from them is the same computation)."""
    plain = variant_from_params(name, study_params["variants"])
    spelled = {name: {**study_params["variants"][name], "width": 1.0}}
    explicit = variant_from_params(name, spelled)
    assert plain.width == explicit.width == 1.0 and plain == explicit
    weights = []
    for variant in (plain, explicit):
        tf.keras.utils.set_random_seed(7)
        weights.append(build_model(variant).get_weights())
    assert [w.shape for w in weights[0]] == [w.shape for w in weights[1]]
    assert all((a == b).all() for a, b in zip(*weights, strict=True))
    assert profile_figures(build_model(explicit))["params_total"] == {"fp32": 93770, "bnn": 93556}[name]


def test_a_quarter_width_network_s_layers(study_params):
    from stages.lib.training.networks import hidden_units

    assert hidden_units(0.25) == (8, 16, 16, 16) and hidden_units(0.125) == (4, 8, 8, 8)
    assert hidden_units(2) == (64, 128, 128, 128) and hidden_units(0.01) == (1, 1, 1, 1)
    model = build_model(_at(study_params, "fp32_w0.25"))
    shapes = [tuple(layer.output_shape[1:]) for layer in model.layers]
    assert shapes == [(26, 26, 8), (13, 13, 8), (13, 13, 8), (11, 11, 16), (5, 5, 16), (5, 5, 16),
                      (3, 3, 16), (3, 3, 16), (144,), (16,), (16,), (10,), (10,)]
    # conv 3*3*1*8+8, its batch norm's 2*8 trained values (Larq counts no moving statistics), conv 3*3*8*16+16,
    # 2*16, conv 3*3*16*16+16, 2*16, dense 144*16+16, 2*16, dense 16*10+10
    expected = (80 + 16) + (1168 + 32) + (2320 + 32) + (2320 + 32) + 170
    assert profile_figures(model)["params_total"] == expected
    wide = profile_figures(build_model(_at(study_params, "bnn_w2")))
    assert wide["params_1bit"] == 3 * 3 * 64 + 3 * 3 * 64 * 128 + 3 * 3 * 128 * 128 + 1152 * 128 + 128 * 10


@pytest.mark.parametrize("name, message", [
    ("fp32_w1", "width 1 is the article's network; call it fp32"),
    ("fp32_w0.50", r"write the width as 0.5 \(fp32_w0.5\)"),
    ("bnn_w0", "a width must be above 0"),
    ("bnn_w17", "at most 16"),
    ("bnm_w2", r"unknown variant 'bnm' \(in bnm_w2\)"),
])
def test_bad_widths_are_one_line_naming_the_name_to_use(study_params, name, message):
    from stages.check import check_all

    params = copy.deepcopy(study_params)
    params["study"]["variants"] = ["fp32", name]
    with pytest.raises(StudyError, match=message):
        check_all(params)


def test_a_width_is_written_in_the_name_never_as_a_key(study_params):
    from stages.check import check_all

    params = copy.deepcopy(study_params)
    params["variants"]["fp32"]["width"] = 0.5
    with pytest.raises(StudyError, match=r"write fp32_w0.5 in study.variants rather than variants.fp32.width"):
        check_all(params)
    params = copy.deepcopy(study_params)
    params["variants"]["bnn_w2"] = dict(params["variants"]["bnn"])
    with pytest.raises(StudyError, match=r"variants.bnn_w2.width must be 2"):
        check_all(params)
