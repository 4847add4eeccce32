"""What a converted ``.tflite`` graph holds, read from the flatbuffer itself:
its operators by type, the multiply-accumulates each performs and which of
them run in LCE's binary convolution, the bytes of its weights (flash) and
the peak bytes of activations alive at once during one inference (RAM).

RAM is computed by liveness over the operators in execution order: a
tensor without constant data (the input, every intermediate, the output)
is alive from the operator that writes it (the input: from the start) to
the last operator that reads it (the output: to the end); the figure is the
largest sum of the sizes of tensors alive at one operator. It is the arena
an ideal planner needs for activations. It leaves out what an interpreter
adds on top: kernels' scratch buffers (im2col, LCE's bitpacked copies of
float inputs), XNNPACK's repacked weights, alignment, the interpreter's own
structures and the program code; and it assumes no operator works in place
(TensorFlow Lite may alias a reshape's output to its input).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from stages.lib.common import StudyError

BINARY_CONVOLUTION = "LceBconv2d"

_ELEMENT_BYTES = {"FLOAT32": 4, "INT32": 4, "UINT32": 4, "FLOAT16": 2, "INT16": 2, "UINT16": 2, "INT8": 1,
                  "UINT8": 1, "BOOL": 1, "INT64": 8, "UINT64": 8, "FLOAT64": 8}


@dataclass(frozen=True)
class Tensor:
    shape: tuple[int, ...]
    dtype: str
    constant_bytes: int   # bytes of its data in the file; 0 for an activation

    @property
    def bytes(self) -> int:
        if self.dtype not in _ELEMENT_BYTES:
            raise StudyError(f"a tensor of type {self.dtype} in the converted graph has no known size")
        return math.prod(self.shape) * _ELEMENT_BYTES[self.dtype]

    @property
    def is_activation(self) -> bool:
        return self.constant_bytes == 0


@dataclass(frozen=True)
class Operator:
    name: str                  # TFLite's builtin name (CONV_2D, ...) or LCE's custom code (LceBconv2d, ...)
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict              # a custom operator's options (LCE's flexbuffer); {} for builtins


@dataclass(frozen=True)
class Graph:
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def read_graph(flatbuffer: bytes) -> Graph:
    """The first subgraph of a ``.tflite`` flatbuffer (the only one the
    study's models have)."""
    import flatbuffers.flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    builtin = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    types = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    try:
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
        subgraph = model.subgraphs[0]
    except Exception as err:  # the flatbuffer library raises anything on damaged bytes
        raise StudyError(f"not a readable .tflite flatbuffer ({type(err).__name__}: {err})") from err

    def constant_bytes(tensor) -> int:
        data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
        return 0 if data is None else len(data)

    tensors = tuple(Tensor(tuple(int(d) for d in (t.shape if t.shape is not None else ())), types[t.type],
                           constant_bytes(t)) for t in subgraph.tensors)
    operators = []
    for op in subgraph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        custom = code.customCode.decode() if code.customCode else None
        name = custom or builtin[max(code.builtinCode, code.deprecatedBuiltinCode)]
        options = {}
        if custom and op.customOptions is not None and len(op.customOptions):
            options = flatbuffers.flexbuffers.Loads(bytes(np.asarray(op.customOptions, dtype=np.uint8)))
        operators.append(Operator(name, tuple(int(i) for i in op.inputs), tuple(int(i) for i in op.outputs),
                                  options))
    return Graph(tensors, tuple(operators), tuple(int(i) for i in subgraph.inputs),
                 tuple(int(i) for i in subgraph.outputs))


def operator_macs(graph: Graph, op: Operator) -> int:
    """Multiply-accumulates one inference performs in ``op``; 0 for an
    operator that multiplies no weights (pooling, batch-norm's per-channel
    MUL and ADD, LCE's quantize, reshape, softmax)."""
    if op.name in ("CONV_2D", BINARY_CONVOLUTION):
        out = graph.tensors[op.outputs[0]].shape
        filters, kernel_h, kernel_w, channels_in = graph.tensors[op.inputs[1]].shape
        if op.name == BINARY_CONVOLUTION:
            channels_in = int(op.options["channels_in"])  # the filter holds them bitpacked, 32 to an int
        return out[0] * out[1] * out[2] * filters * kernel_h * kernel_w * channels_in
    if op.name == "DEPTHWISE_CONV_2D":
        out = graph.tensors[op.outputs[0]].shape
        _, kernel_h, kernel_w, _ = graph.tensors[op.inputs[1]].shape
        return math.prod(out) * kernel_h * kernel_w
    if op.name == "FULLY_CONNECTED":
        units, features = graph.tensors[op.inputs[1]].shape
        return math.prod(graph.tensors[op.outputs[0]].shape) * features
    return 0


def live_bytes(graph: Graph) -> list[int]:
    """Per operator, in execution order: the bytes of activation tensors
    alive while it runs (see the module's docstring for the method)."""
    first: dict[int, int] = {t: 0 for t in graph.inputs}
    last: dict[int, int] = {t: len(graph.operators) - 1 for t in graph.outputs}
    for i, op in enumerate(graph.operators):
        for t in op.outputs:
            if t >= 0 and graph.tensors[t].is_activation:
                first.setdefault(t, i)
                last[t] = max(last.get(t, i), i)
        for t in op.inputs:
            if t >= 0 and graph.tensors[t].is_activation:
                first.setdefault(t, 0)
                last[t] = max(last.get(t, i), i)
    return [sum(graph.tensors[t].bytes for t in first if first[t] <= i <= last[t])
            for i in range(len(graph.operators))]


def weights_bytes(graph: Graph) -> int:
    """Bytes of constant data (weights, biases, thresholds, shapes) the
    graph's tensors hold."""
    return sum(t.constant_bytes for t in graph.tensors)


def analyse(flatbuffer: bytes) -> dict:
    """The facts the study reports for one deployed model."""
    graph = read_graph(flatbuffer)
    macs = [operator_macs(graph, op) for op in graph.operators]
    binary = sum(m for m, op in zip(macs, graph.operators, strict=True) if op.name == BINARY_CONVOLUTION)
    live = live_bytes(graph)
    peak = int(np.argmax(live)) if live else 0
    return {
        "operators": dict(sorted(Counter(op.name for op in graph.operators).items())),
        "macs_total": sum(macs),
        "macs_binary": binary,
        "binary_mac_fraction_deployed": binary / sum(macs) if sum(macs) else 0.0,
        "weights_bytes": weights_bytes(graph),
        "peak_activation_bytes": max(live, default=0),
        "peak_activation_operator": f"{peak}: {graph.operators[peak].name}" if live else "",
        "input_bytes": sum(graph.tensors[t].bytes for t in graph.inputs),
    }
