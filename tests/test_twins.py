"""Equal-flash twins: derived from the architecture alone (a deployed file's
bytes do not depend on the weights' values), the widest float network whose
file in a post-training form (int8, int4) fits the 1-bit network's file,
fixed before any run trains."""

import json

import pytest
import yaml

from conftest import DEFAULT_TWIN, INT4_TWIN, REPO, twins_file, with_param
from stages.lib.common import StudyError
from stages.lib.training.variants import variant_from_params, with_widths


def _variant(params, name):
    return variant_from_params(name, with_widths({**params, "study": {**params["study"], "variants": [name]}})["variants"])


def test_the_default_twin_is_derived_by_converting_the_networks(study_params):
    from stages.lib.forms.twins import derive

    twin = derive(_variant(study_params, "bnn"), _variant(study_params, "fp32"))
    assert twin.record() == {"one_bit": "bnn", "base": "fp32", **DEFAULT_TWIN}
    # the widest that fits: the next width's file is larger than the 1-bit file
    assert twin.twin_bytes <= twin.one_bit_bytes < twin.wider_bytes


def test_a_file_s_bytes_do_not_depend_on_the_weights(study_params):
    from stages.lib.forms import twins

    variant = _variant(study_params, "fp32_w0.352")
    sizes = set()
    for seed in (0, 1):
        original = twins._generic_weights
        twins._generic_weights = lambda model, seed=seed: original(model, seed)
        try:
            sizes.add(twins.int8_bytes(variant))
        finally:
            twins._generic_weights = original
    assert sizes == {DEFAULT_TWIN["twin_bytes"]}


def test_the_committed_study_s_trained_twin_deploys_to_the_derived_bytes():
    metrics = json.loads((REPO / "reports" / "metrics.json").read_text())
    same_flash = metrics["mnist"]["same_flash"]["bnn"]["int8"]
    assert same_flash["twin"] == DEFAULT_TWIN["name"] + "+int8"
    assert round(1024 * same_flash["twin_kib"]) == DEFAULT_TWIN["twin_bytes"]
    assert round(1024 * same_flash["one_bit_kib"]) == DEFAULT_TWIN["one_bit_bytes"]


def test_a_twin_is_named_by_the_shortest_width_that_builds_it():
    from stages.lib.forms.twins import STEPS, shortest_width
    from stages.lib.training.networks import hidden_units

    assert shortest_width(45) == 0.352 and hidden_units(0.352) == hidden_units(45 / STEPS) == (11, 23, 23, 23)
    assert shortest_width(32) == 0.25 and shortest_width(128) == 1.0
    for step in range(1, 2 * STEPS):
        assert hidden_units(shortest_width(step)) == hidden_units(step / STEPS)


@pytest.mark.parametrize("one_bit, base, message", [
    ("fp32", "fp32", "fp32 is not a 1-bit network"),
    ("bwn", "fp32", "bwn is not a 1-bit network"),
    ("bnn", "dorefa4", "dorefa4 is not a float network"),
    ("bnn", "fp32_w0.5", "name the float family at the article's width"),
])
def test_a_pair_that_is_no_1_bit_network_and_float_family_is_one_line(study_params, one_bit, base, message):
    from stages.lib.forms.twins import check_pair

    with pytest.raises(StudyError, match=message):
        check_pair(_variant(study_params, one_bit), _variant(study_params, base))


def test_a_1_bit_file_smaller_than_the_narrowest_int8_network_has_no_twin(study_params, monkeypatch):
    from stages.lib.forms import twins

    monkeypatch.setattr(twins, "one_bit_bytes", lambda variant: 1000)
    with pytest.raises(StudyError, match=r"smaller than the narrowest int8 network of fp32 \(4280 bytes"):
        twins.derive(_variant(study_params, "bnn"), _variant(study_params, "fp32"))


def test_check_refuses_a_study_without_its_twin_and_a_stale_derivation(study_params, tmp_path):
    from stages.check import check_all
    from stages.lib.settings.aggregate import twins

    twins_path = twins_file(tmp_path, study_params)
    records = json.loads(twins_path.read_text())
    check_all(study_params)
    assert twins(with_widths(study_params), records) == {"int8": {"bnn": "fp32_w0.352"}}
    without = with_param(study_params, "study.variants", ["fp32", "bnn"])
    with pytest.raises(StudyError, match=r"the equal-flash int8 twin of bnn is fp32_w0.352\+int8 \(19088 bytes against "
                                         r"19252; fp32_w0.36 would take 19328\): add fp32_w0.352 to study.variants"):
        twins(with_widths(without), records)
    no_int8 = with_param(study_params, "int8.variants", ["fp32"])
    with pytest.raises(StudyError, match=r"its twin fp32_w0.352 must be in int8.variants"):
        twins(with_widths(no_int8), records)
    changed = with_param(study_params, "variants.bnn.kernel_quantizer", "approx_sign")
    with pytest.raises(StudyError, match=r"its int8 twin was not derived from these variants; run the `twins` stage"):
        twins(with_widths(changed), records)
    # an int4 twin named, none derived: the stage must run again
    with pytest.raises(StudyError, match=r"its int4 twin was not derived from these variants"):
        twins(with_widths(with_param(study_params, "aggregate.twin_forms", ["int8", "int4"])), records)


@pytest.mark.parametrize("value, message", [
    (["bnn"], "aggregate.same_flash must map each 1-bit variant"),
    ({"bnn": "fp64"}, "aggregate.same_flash names fp64, not defined under variants"),
])
def test_a_bad_same_flash_is_one_line(study_params, value, message):
    from stages.check import check_all

    with pytest.raises(StudyError, match=message):
        check_all(with_param(study_params, "aggregate.same_flash", value))


@pytest.mark.parametrize("key, value, message", [
    ("data.validation_images", 0, "data.validation_images must be a positive whole number"),
    ("data.validation_images", 60000, "data.validation_images is 60000, not fewer than the 60000 training images"),
    ("aggregate.margin_pp", {"mnist": -0.5}, r"aggregate.margin_pp.mnist must be a positive number"),
    ("aggregate.margin_pp", None, "aggregate.margin_pp must map each dataset"),
    ("aggregate.primary", ["bnn_w2"], "aggregate.primary names bnn_w2, which study.variants leaves out"),
    ("study.seeds", [0, 2 ** 32], r"study.seeds: '4294967296' is not a whole number from 0 to 2\^32 - 1"),
])
def test_the_design_s_bad_values_stop_check_in_one_line(study_params, key, value, message):
    from stages.check import check_all

    with pytest.raises(StudyError, match=message):
        check_all(with_param(study_params, key, value))


def test_the_twins_stage_writes_nothing_but_its_record(tmp_path):
    from stages.lib.common import run_cli
    from stages.twins import main

    params = with_param(yaml.safe_load((REPO / "params.yaml").read_text()), "aggregate.same_flash", {})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_cli(main, ["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "twins")]) == 0
    assert json.loads((tmp_path / "twins" / "twins.json").read_text()) == {}
    bad = with_param(params, "aggregate.same_flash", {"bnn": "dorefa4"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    assert run_cli(main, ["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "other")]) == 1
    assert not (tmp_path / "other").exists()


def test_the_twins_stage_derives_a_twin_in_each_form_named(tmp_path):
    from stages.lib.common import run_cli
    from stages.twins import main

    params = with_param(yaml.safe_load((REPO / "params.yaml").read_text()), "aggregate.twin_forms", ["int4"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_cli(main, ["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "twins")]) == 0
    records = json.loads((tmp_path / "twins" / "twins.json").read_text())
    assert list(records) == ["int4"] and list(records["int4"]) == ["bnn"]
    record = records["int4"]["bnn"]
    assert {key: record[key] for key in INT4_TWIN} == INT4_TWIN
    assert record["twin_bytes"] <= record["one_bit_bytes"] < record["wider_bytes"]


def test_the_committed_study_s_int4_file_has_the_bytes_derived_for_its_width(study_params):
    from stages.lib.forms.twins import int4_bytes

    metrics = json.loads((REPO / "reports" / "metrics.json").read_text())
    assert round(1024 * metrics["mnist"]["fp32_w0.352+int4"]["tflite_kib"]) == int4_bytes(
        _variant(study_params, "fp32_w0.352")) == 13320


def test_the_forms_a_twin_may_take_are_the_registry_s_with_their_bytes():
    from stages.lib.forms.registry import BY_NAME
    from stages.lib.forms.twins import FORM_BYTES
    from stages.lib.settings.aggregate import DEFAULT_TWIN_FORMS, TWIN_FORMS

    assert tuple(FORM_BYTES) == TWIN_FORMS and set(DEFAULT_TWIN_FORMS) <= set(TWIN_FORMS)
    # settings name a form's params section by the form's name (they import nothing of forms)
    assert all(form in BY_NAME and BY_NAME[form].section == form for form in TWIN_FORMS)


def test_an_int4_twin_must_be_trained_and_converted_to_int4(study_params):
    from stages.lib.settings.aggregate import twins

    params = with_param(study_params, "aggregate.twin_forms", ["int8", "int4"])
    records = {form: {"bnn": {"one_bit": "bnn", "base": "fp32", **record, "one_bit_spec": params["variants"]["bnn"],
                              "base_spec": params["variants"]["fp32"]}}
               for form, record in (("int8", DEFAULT_TWIN), ("int4", INT4_TWIN))}
    with pytest.raises(StudyError, match=r"the equal-flash int4 twin of bnn is fp32_w0.49\+int4 \(19224 bytes against "
                                         r"19252; fp32_w0.5 would take 19936\): add fp32_w0.49 to study.variants "
                                         r"\(and fp32_w0.49 to int4.variants\)"):
        twins(with_widths(params), records)
    params = with_param(params, "study.variants", [*params["study"]["variants"], "fp32_w0.49"])
    with pytest.raises(StudyError, match=r"its twin fp32_w0.49 must be in int4.variants"):
        twins(with_widths(params), records)
    params = with_param(params, "int4.variants", ["fp32_w0.352", "fp32_w0.49"])
    assert twins(with_widths(params), records) == {"int8": {"bnn": "fp32_w0.352"}, "int4": {"bnn": "fp32_w0.49"}}


@pytest.mark.parametrize("value", [["int2"], [], ["int8", "int8"], "int8", [8]])
def test_a_bad_twin_form_is_one_line(study_params, value):
    from stages.check import check_all

    with pytest.raises(StudyError, match="aggregate.twin_forms must be a non-empty list of distinct forms among "
                                         "int8, int4"):
        check_all(with_param(study_params, "aggregate.twin_forms", value))
