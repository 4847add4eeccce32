"""The study's name grammar (stages/lib/names.py): every module that writes
or reads a network's or a run's name asks it."""

import pytest

from stages.lib.common import StudyError
from stages.lib.names import (
    check_name, family, is_width_name, run_name, split_form, split_width, width_name, with_form,
)


@pytest.mark.parametrize("network, trained, form, variant, width, family_name", [
    ("bnn", "bnn", None, "bnn", 1.0, "bnn"),
    ("fp32_w0.25", "fp32_w0.25", None, "fp32", 0.25, "fp32"),
    ("fp32_w0.352+int8", "fp32_w0.352", "int8", "fp32", 0.352, "fp32+int8"),
    ("bnn_fp_edges_cosine_w2", "bnn_fp_edges_cosine_w2", None, "bnn_fp_edges_cosine", 2.0, "bnn_fp_edges_cosine"),
    ("fp32+int8", "fp32", "int8", "fp32", 1.0, "fp32+int8"),
])
def test_a_network_s_name_splits_into_its_parts_and_back(network, trained, form, variant, width, family_name):
    assert split_form(network) == (trained, form) and with_form(trained, form) == network
    assert split_width(trained) == (variant, width) and width_name(variant, width) == trained
    assert family(network) == (family_name, width)
    assert is_width_name(trained) == (width != 1)


def test_a_run_is_its_dataset_network_and_seed():
    assert run_name("mnist", "fp32_w0.352+int8", 3) == "mnist-fp32_w0.352+int8-3"


@pytest.mark.parametrize("name, message", [
    ("fp32_w1", "width 1 is the article's network; call it fp32"),
    ("fp32_w0.50", r"write the width as 0.5 \(fp32_w0.5\)"),
    ("fp32_w32", "a width must be above 0 and at most 16"),
    ("fp32_w0", "a width must be above 0"),
])
def test_one_network_has_one_name(name, message):
    with pytest.raises(StudyError, match=message):
        check_name("study.variants", name)


@pytest.mark.parametrize("name", ["../x", "bnn-1", "a b", "", 3, None, "fp32+int8"])
def test_a_name_that_could_reach_outside_its_folder_or_misread_a_stage_key_is_refused(name):
    with pytest.raises(StudyError, match=r"^study.variants: .* is not a valid name; use letters, digits"):
        check_name("study.variants", name)
