"""What every deployed form runs on: the ``.tflite`` file a form's stage
writes, the runtimes that answer images with it and their option sets, the
check that a file is whole before a runtime loads it, and the debug names
every form strips.

Two runtimes, both TensorFlow Lite interpreters: LCE's (``lce``), which runs
LCE's binary operators and TensorFlow Lite's builtin float and int8 kernels,
and runs every form but int4; and LiteRT's (``litert``, the ``ai_edge_litert``
package), whose builtin kernels run int4 weights, which LCE 0.16's refuses.
A form module (:mod:`stages.lib.forms.lce`, :mod:`stages.lib.forms.int8`,
:mod:`stages.lib.forms.int4`) says how a trained model becomes its file and
the registry which runtime runs it; nothing here depends on one form, so
changing one form's conversion reconverts only that form's files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import StudyError

# What a form's stage writes for each run: the deployed file, and its
# dataset's first test images as uint8 pixels, the inputs the `benchmark`
# stage times it on (so that stage needs no dataset of its own).
TFLITE_FILE = "model.tflite"
SAMPLE_FILE = "sample_images.npy"
SAMPLE_IMAGES = 64

# The interpreter's option sets, by the names params.yaml and the tables
# use: LCE's indirect BGEMM kernels for binary convolutions, and TensorFlow
# Lite's XNNPACK delegate for the float and int8 operators. Every form's file
# is checked under each and timed under those it agrees under.
INTERPRETER_OPTIONS = {
    "default": {"use_indirect_bgemm": False, "use_xnnpack": False},
    "bgemm": {"use_indirect_bgemm": True, "use_xnnpack": False},
    "xnnpack": {"use_indirect_bgemm": False, "use_xnnpack": True},
    "bgemm+xnnpack": {"use_indirect_bgemm": True, "use_xnnpack": True},
}


# LiteRT under the same names: XNNPACK is its default delegate (its builtin
# resolver) or none (builtin kernels only). LiteRT has no binary kernels; the
# indirect BGEMM option selects LCE's binary convolution kernels, which a file
# without binary operators never runs, so under LiteRT it changes nothing and
# every form is checked and timed under the same four names.
LITERT_RESOLVERS = {"default": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "bgemm": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
                    "xnnpack": "BUILTIN", "bgemm+xnnpack": "BUILTIN"}


@dataclass(frozen=True)
class Runtime:
    """A runtime deployed files run on: its name (as the forms registry and
    the timings give it), its name in prose, and the benchmark's trivial
    model (no weights, the study's input and output) timed through its call:
    the per-call overhead the tables subtract from the networks it runs."""
    name: str
    title: str
    overhead: str


RUNTIMES = {runtime.name: runtime for runtime in (Runtime("lce", "LCE", "overhead"),
                                                  Runtime("litert", "LiteRT", "overhead_litert"))}
OVERHEAD_MODELS = tuple(runtime.overhead for runtime in RUNTIMES.values())


def strip_names(flatbuffer: bytes) -> bytes:
    """``flatbuffer`` without its debug strings (tensor and subgraph names,
    signature defs), by TensorFlow Lite's own ``strip_strings``: the
    interpreter addresses tensors by index, so the model computes the same;
    on the 1-bit net the names are about a quarter of the file."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


REDO = "rerun the stage that wrote it (`dvc repro --force` on its deploy or quantize stage)"


def check_structure(flatbuffer: bytes, source: str = "the converted model") -> None:
    """Refuse in one line, naming ``source``, a flatbuffer that is not a
    whole TensorFlow Lite model. The interpreter does not verify what it
    loads: a file cut short (whose record was edited to match) makes it read
    past the end and die by a signal. So every table, vector and buffer of
    the model is read here first, in Python, where each read is checked
    against the file's length (about 4 ms for the 32-bit network)."""
    from tensorflow.lite.python import schema_py_generated as schema

    if len(flatbuffer) < 8 or flatbuffer[4:8] != b"TFL3":
        raise StudyError(f"{source} is not a model TensorFlow Lite can load (no TFL3 identifier): {REDO}")
    try:
        schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    except Exception as err:  # noqa: BLE001  (whatever a damaged file makes the reader raise)
        raise StudyError(f"{source} is not a model TensorFlow Lite can load (cut short or damaged: "
                         f"{type(err).__name__} reading its {len(flatbuffer)} bytes): {REDO}") from None


def interpreter(flatbuffer: bytes, threads: int, options: str, source: str = "the converted model",
                runtime: str = "lce"):
    """The ``runtime``'s interpreter for ``flatbuffer`` (one of
    :data:`RUNTIMES`) with ``threads`` threads and the named option set (a
    key of :data:`INTERPRETER_OPTIONS`): LCE's, or :class:`LiteRT`, which
    answers like it. A flatbuffer that is not a whole model
    (:func:`check_structure`) or that the interpreter refuses is a one-line
    error naming ``source``; so is a runtime the study does not know."""
    if runtime not in RUNTIMES:
        raise StudyError(f"unknown runtime {runtime!r} for {source}: one of {', '.join(RUNTIMES)}")
    check_structure(flatbuffer, source)
    try:
        if runtime == "litert":
            return LiteRT(flatbuffer, threads, options)
        import larq_compute_engine as lce

        return lce.tflite.python.interpreter.Interpreter(flatbuffer, num_threads=threads,
                                                         **INTERPRETER_OPTIONS[options])
    except (RuntimeError, ValueError) as err:
        reason = str(err).strip().splitlines()[-1][:160] if str(err).strip() else type(err).__name__
        raise StudyError(f"{source} is not a model TensorFlow Lite can load ({reason}): {REDO}") from None


def timed_call(runner):
    """The one call the benchmark times for a batch of one image (a list
    holding one array, as the model takes it): LCE's binding itself (its
    Python ``predict`` adds a loop and a copy per image), LiteRT's
    set-invoke-get."""
    return runner.call if isinstance(runner, LiteRT) else runner.interpreter.predict


class LiteRT:
    """LiteRT's interpreter for one model, answering like LCE's: ``predict``
    on a batch of images (one call per image, as the benchmark times it),
    and the input's types, scales and zero points."""

    def __init__(self, flatbuffer: bytes, threads: int, options: str):
        from ai_edge_litert import interpreter as litert

        resolver = getattr(litert.OpResolverType, LITERT_RESOLVERS[options])
        self.interpreter = litert.Interpreter(model_content=bytes(flatbuffer), num_threads=threads,
                                              experimental_op_resolver_type=resolver)
        self.interpreter.allocate_tensors()
        (entry,), (exit_,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        self._input, self._output = entry["index"], exit_["index"]
        self.input_types = [entry["dtype"]]
        self.input_scales = [entry["quantization"][0]]
        self.input_zero_points = [entry["quantization"][1]]

    def call(self, sample: list[np.ndarray]) -> np.ndarray:
        self.interpreter.set_tensor(self._input, sample[0])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.concatenate([self.call([image[np.newaxis]]) for image in images])
