import pytest

from conftest import randomized
from stages.lib.common import StudyError
from stages.lib.forms.graph import Graph, Operator, Tensor, analyse, live_bytes, operator_macs, read_graph, weights_bytes
from stages.lib.forms.lce import convert
from stages.lib.forms.runtime import strip_names
from stages.lib.training.networks import build_model
from stages.lib.training.variants import variant_from_params


def _float(*shape, constant=False):
    size = 4
    for d in shape:
        size *= d
    return Tensor(tuple(shape), "FLOAT32", size if constant else 0)


def test_liveness_on_a_hand_built_graph():
    # t0 -> A -> t1 -> B -> t2 -> C(t1, t2) -> t3: t1 stays alive through C.
    tensors = (_float(1, 10), _float(1, 20), _float(1, 5), _float(1, 3), _float(20, 10, constant=True))
    graph = Graph(tensors, (
        Operator("A", (0, 4), (1,), {}),
        Operator("B", (1,), (2,), {}),
        Operator("C", (1, 2), (3,), {}),
    ), inputs=(0,), outputs=(3,))
    # A: input 40 + t1 80 (the weights are not activations); B: t1 80 + t2 20; C: t1 80 + t2 20 + t3 12
    assert live_bytes(graph) == [120, 100, 112]
    assert weights_bytes(graph) == 800


def test_the_graph_input_stays_alive_until_its_last_reader():
    tensors = (_float(1, 100), _float(1, 1), _float(1, 1))
    graph = Graph(tensors, (Operator("A", (0,), (1,), {}), Operator("B", (0, 1), (2,), {})), inputs=(0,),
                  outputs=(2,))
    assert live_bytes(graph) == [404, 408]


def test_macs_of_convolutions_and_dense_layers():
    conv = Graph((_float(1, 28, 28, 1), _float(32, 3, 3, 1, constant=True), _float(1, 26, 26, 32)),
                 (Operator("CONV_2D", (0, 1), (2,), {}),), (0,), (2,))
    assert operator_macs(conv, conv.operators[0]) == 26 * 26 * 32 * 9
    # a binary convolution's filter is bitpacked (2 int32 words for 64 channels): its options give the channels
    binary = Graph((Tensor((1, 5, 5, 2), "INT32", 0), Tensor((64, 3, 3, 2), "INT32", 4608), _float(1, 3, 3, 64)),
                   (Operator("LceBconv2d", (0, 1), (2,), {"channels_in": 64}),), (0,), (2,))
    assert operator_macs(binary, binary.operators[0]) == 3 * 3 * 64 * 9 * 64
    dense = Graph((_float(1, 576), _float(64, 576, constant=True), _float(1, 64)),
                  (Operator("FULLY_CONNECTED", (0, 1), (2,), {}),), (0,), (2,))
    assert operator_macs(dense, dense.operators[0]) == 576 * 64
    assert operator_macs(dense, Operator("SOFTMAX", (2,), (2,), {})) == 0


def test_fp32_census_macs_and_ram(study_params):
    flatbuffer = strip_names(convert(randomized(build_model(variant_from_params("fp32", study_params["variants"])))))
    facts = analyse(flatbuffer)
    assert facts["operators"] == {"ADD": 3, "CONV_2D": 3, "FULLY_CONNECTED": 2, "MAX_POOL_2D": 2, "MUL": 3,
                                  "RESHAPE": 1, "SOFTMAX": 1}
    assert facts["macs_total"] == 2794240 and facts["macs_binary"] == 0  # Larq's count of the same network
    # by hand: the first convolution holds a 28x28x1 float input and a 26x26x32 float output
    assert live_bytes(read_graph(flatbuffer))[0] == (28 * 28 * 1 + 26 * 26 * 32) * 4 == 89664
    # the peak: the first max-pool holds 26x26x32 in and 13x13x32 out
    assert facts["peak_activation_bytes"] == (26 * 26 * 32 + 13 * 13 * 32) * 4 == 108160
    assert facts["peak_activation_operator"] == "1: MAX_POOL_2D"
    assert facts["input_bytes"] == 3136
    # 93,770 float parameters, BN folded to per-channel MUL/ADD vectors, plus two reshape shapes
    assert 93770 * 4 - 2 * 64 * 4 <= facts["weights_bytes"] <= len(flatbuffer)


def test_bnn_census_macs_and_ram(study_params):
    flatbuffer = strip_names(convert(randomized(build_model(variant_from_params("bnn", study_params["variants"])))))
    facts = analyse(flatbuffer)
    assert facts["operators"]["LceBconv2d"] == 4 and facts["operators"]["CONV_2D"] == 1
    assert "FULLY_CONNECTED" not in facts["operators"]
    assert facts["macs_total"] == 2794240 and facts["macs_binary"] == 2599552  # Larq: 93.03% binarized
    assert facts["binary_mac_fraction_deployed"] == pytest.approx(0.930325240494732)
    # the first layer stays float (the image is not binarized): the same peak as the 32-bit net
    assert facts["peak_activation_bytes"] == 108160
    assert facts["weights_bytes"] < 16 * 1024


def test_bwn_deploys_without_a_binary_operator(study_params):
    facts = analyse(strip_names(convert(randomized(build_model(variant_from_params("bwn", study_params["variants"]))))))
    assert facts["macs_binary"] == 0 and "LceBconv2d" not in facts["operators"]
    assert facts["weights_bytes"] > 360 * 1024  # binary weights stored as floats


def test_a_damaged_flatbuffer_is_one_line():
    with pytest.raises(StudyError, match="not a readable .tflite flatbuffer"):
        read_graph(b"\x00\x01 not a model")
