"""The graph every converter reads: a trained Keras model written as a
SavedModel of one serving function, traced without AutoGraph.

Keras's own ``model.save`` (what ``lce.convert_keras_model`` and
``TFLiteConverter.from_keras_model`` call) traces every layer's call
functions through AutoGraph, converting thousands of tf_keras and Larq
functions that hold no Python control flow over tensors: about 9-11 s a
model on a 2-core EPYC, for a graph that converts in under 1 s. Written
here, only the inference function is traced, as plain Python, with the
model's variables. LCE makes byte-for-byte the same file of it (a test pins
it for the 1-bit network); TensorFlow Lite's int8 file differs in one byte,
the conversion metadata's record of what it was converted from (a SavedModel
rather than a Keras model): the same operators, weights, scales and answers
(measured on the default study's int8 files: every accuracy and agreement
as before).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)


@contextmanager
def saved_model(model) -> Iterator[Path]:
    """A temporary SavedModel directory holding ``model``'s inference
    (``training=False``) as its default serving signature, any batch size;
    removed when the block ends."""
    import tensorflow as tf

    function = tf.function(lambda images: model(images, training=False), autograph=False)
    signature = function.get_concrete_function(tf.TensorSpec([None, *model.input_shape[1:]], tf.float32))
    holder = tf.Module()
    holder.variables_ = list(model.variables)  # the weights the signature reads, saved with it
    holder.serve = function
    with tempfile.TemporaryDirectory(prefix="bnn-study-export-") as directory:
        tf.saved_model.save(holder, directory, signatures={"serving_default": signature})
        yield Path(directory)
