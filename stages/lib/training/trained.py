"""A trained run's model on disk: the file `train` saves, how the stages
after it load it, and the batch every whole-split evaluation uses.

Here rather than in the `train` stage's module so that the stages that
read a trained model (`deploy`, `quantize`, `robustness`) depend on this
file, not on the training loop: editing how networks train retrains them,
and reconverts or re-evaluates only the models that changed.
"""

from __future__ import annotations

from pathlib import Path

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf
from stages.lib.common import StudyError

MODEL_FILE = "model.keras"
EVAL_BATCH_SIZE = 1000


def without_autograph(model):
    """``model`` with its train, test and predict steps traced as plain
    Python. Left to AutoGraph, tracing them converts thousands of tf_keras
    functions (about 15 s before a run's first step), though the steps hold
    no Python control flow over tensors that would need converting; the
    traced graphs compute the same numbers (a test pins it bit for bit)."""
    for name in ("train_step", "test_step", "predict_step"):
        setattr(model, name, tf.autograph.experimental.do_not_convert(getattr(model, name)))
    return model


def load_model(model_dir: str | Path):
    """Reload a trained model saved by the `train` stage."""
    import larq  # noqa: F401  (registers Larq's layers and quantizers)

    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise StudyError(f"{path} is missing: run `dvc repro` to train it")
    try:
        # the weights are what later stages use: the optimizer (a recipe's
        # schedule, Bop) is not restored
        # rebuilt without AutoGraph: rebuilding calls every layer on symbolic
        # inputs, and AutoGraph would convert Larq's and tf_keras's call
        # functions first (about 5 s a model; same layers, same weights)
        model = tf.autograph.experimental.do_not_convert(tf.keras.models.load_model)(path, compile=False)
    except Exception as err:  # Keras raises a different type for each way a file can be broken
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise StudyError(f"{path} is not a readable Keras model ({reason}): retrain it with "
                         "`dvc repro --force` on its train stage") from None
    return without_autograph(model)
