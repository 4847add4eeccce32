"""A deployed form: a trained run made into a ``.tflite`` file that a
runtime answers images with. Three forms today, each one module that says
how a trained Keras model becomes its file and which of its test results
it accepts: Larq Compute Engine's conversion (:mod:`stages.lib.forms.lce`, the
`deploy` stage; named as its run), int8 post-training quantization
(:mod:`stages.lib.forms.int8`, the `quantize` stage; named ``<variant>+int8``)
and int4 weights (:mod:`stages.lib.forms.int4`, the `quantize_int4` stage;
``<variant>+int4``, run by LiteRT's interpreter).

Everything else a form needs is the same for every form and lives here:

- :func:`deploy`: load the run, convert it with the form's function, check
  the file against Keras on the whole test set under every interpreter
  option set, let the form accept or refuse those checks, and write the
  file and its record (``deploy.json``: size, SHA-256, accuracy and
  agreement per option set, weights, peak RAM, operators, MACs) whole or
  not at all;
- :func:`read`: a deployed file with its record, refused in one line when
  its size or checksum is not the record's, before any runtime loads it
  (a truncated file would crash the interpreter without a message);
- :func:`answers`: a file's answers to images, whatever its input type;
- :func:`checked_drop`: the post-training forms' rule, a test accuracy no
  more than a set number of points below Keras's.

A third form (float16 weights, dynamic-range int8) is one more module with
its conversion and its acceptance rule, a stage that calls :func:`deploy`,
and its params section.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stages.lib.common import StudyError, atomic_directory, load_params, log, write_json_atomic
from stages.lib.data.datasets import load_split, load_training, scale_images
from stages.lib.forms.graph import analyse
from stages.lib.forms.runtime import INTERPRETER_OPTIONS, SAMPLE_FILE, SAMPLE_IMAGES, TFLITE_FILE, interpreter, strip_names
from stages.lib.params import Validation, data_limits, validation_settings
from stages.lib.spec import run_spec_path
from stages.lib.training.variants import Variant, variant_from_params
from stages.lib.training.trained import EVAL_BATCH_SIZE, load_model

RECORD_FILE = "deploy.json"
Checks = dict[str, dict[str, float]]
# A form's verdict on its checks: the option sets it may be timed under and
# what it adds to the record; or a StudyError.
Accept = Callable[[Checks, float], tuple[list[str], dict[str, Any]]]


def input_quantization(runner) -> tuple[float, int] | None:
    """The (scale, zero point) of an interpreter's int8 input; None for a
    float input."""
    if runner.input_types[0] != np.int8:
        return None
    return float(runner.input_scales[0]), int(runner.input_zero_points[0])


def model_inputs(images: np.ndarray, quantization: tuple[float, int] | list | None) -> np.ndarray:
    """Scaled float ``images`` as the model takes them: as they are for a
    float input, else quantized with the input's (scale, zero point)."""
    if quantization is None:
        return images.astype(np.float32, copy=False)
    scale, zero_point = quantization
    return np.clip(np.round(images / scale) + zero_point, -128, 127).astype(np.int8)


def answers(runner, images: np.ndarray) -> np.ndarray:
    """The class a deployed model answers for each of the scaled ``images``."""
    return runner.predict(model_inputs(images, input_quantization(runner))).argmax(axis=1)


def check_against_keras(flatbuffer: bytes, images: np.ndarray, keras_pred: np.ndarray,
                        labels: np.ndarray, runtime: str = "lce") -> tuple[Checks, tuple[float, int] | None]:
    """Agreement with Keras and accuracy of ``flatbuffer`` under every
    interpreter option set of ``runtime``, on one thread; and its input's
    quantization."""
    checks, quantization = {}, None
    for name in INTERPRETER_OPTIONS:
        runner = interpreter(flatbuffer, 1, name, runtime=runtime)
        quantization = input_quantization(runner)
        lite_pred = answers(runner, images)
        checks[name] = {"agreement": float(np.mean(lite_pred == keras_pred)),
                        "converted_accuracy": float(np.mean(lite_pred == labels))}
        log.info("  %s: agreement with Keras %.4f%%, accuracy %.4f", name, 100 * checks[name]["agreement"],
                 checks[name]["converted_accuracy"])
    return checks, quantization


def validation_accuracy(flatbuffer: bytes, images: np.ndarray, labels: np.ndarray, options: str,
                        runtime: str = "lce") -> float:
    """The deployed file's accuracy on the held-out validation images under
    the option set ``options``, on one thread: what choices among deployed
    networks read (the test accuracy confirms them)."""
    return float(np.mean(answers(interpreter(flatbuffer, 1, options, runtime=runtime), images) == labels))


def checked_drop(checks: Checks, keras_accuracy: float, limit_pp: float, form: str, source: str, key: str,
                 remedy: str) -> float:
    """The largest test-accuracy drop against Keras, in percentage points,
    under any option set; more than ``limit_pp`` (the params key ``key``)
    refuses ``form``'s file of ``source`` in one line ending in ``remedy``."""
    worst = min(checks, key=lambda name: checks[name]["converted_accuracy"])
    drop_pp = 100 * (keras_accuracy - checks[worst]["converted_accuracy"])
    if drop_pp > limit_pp:
        raise StudyError(f"the {form} model of {source} loses {drop_pp:.2f} pp of test accuracy against Keras "
                         f"(under {worst}), more than {key} = {limit_pp:g}: {remedy}")
    return drop_pp


def deploy(model_dir: str | Path, data_dir: str | Path, input_range: tuple[float, float],
           convert: Callable[[Any], bytes], accept: Accept, out_model_dir: str | Path, out_record_dir: str | Path,
           test_limit: int | None = None, what: str = "converted",
           validation: tuple[int | None, Validation] | None = None, runtime: str = "lce") -> dict[str, Any]:
    """Make the trained model in ``model_dir`` into a deployed file with
    ``convert`` (debug names stripped), check it against Keras on the test
    split, and write the file and its record if ``accept`` takes the
    checks; a refusal writes nothing. ``validation``: the training limit and
    held-out images the run was trained with; each accepted option set's
    accuracy on them is recorded too (``converted_validation_accuracy``).
    ``runtime``: the interpreter that runs the form's files."""
    model = load_model(model_dir)
    x_test, y_test = load_split(data_dir, "test", test_limit)
    images = scale_images(x_test, input_range)
    keras_pred = model.predict(images, batch_size=EVAL_BATCH_SIZE, verbose=0).argmax(axis=1)
    keras_accuracy = float(np.mean(keras_pred == y_test))
    converted = convert(model)
    flatbuffer = strip_names(converted)
    log.info("%s: %s to %d bytes, %d without debug names (%.2f KiB)", model_dir, what, len(converted),
             len(flatbuffer), len(flatbuffer) / 1024)
    checks, quantization = check_against_keras(flatbuffer, images, keras_pred, y_test, runtime)
    agreeing, extra = accept(checks, keras_accuracy)
    if validation is not None:
        _, _, x_val, y_val = load_training(data_dir, validation[0], validation[1].images, validation[1].seed)
        for name in agreeing:
            checks[name]["converted_validation_accuracy"] = validation_accuracy(
                flatbuffer, scale_images(x_val, input_range), y_val, name, runtime)
    graph = analyse(flatbuffer)
    record = {
        "tflite_bytes": len(flatbuffer),
        "tflite_kib": len(flatbuffer) / 1024,
        "tflite_sha256": hashlib.sha256(flatbuffer).hexdigest(),
        "converted_bytes_with_names": len(converted),
        "keras_accuracy": keras_accuracy,
        "converted_accuracy": checks[agreeing[0]]["converted_accuracy"],
        "agreement": min(checks[name]["agreement"] for name in agreeing),
        "options_agreeing": agreeing,
        "checks": checks,
        "input_range": list(input_range),
        "input_quantization": quantization,
        "test_images": len(images),
        **extra,
        **graph,
    }
    with atomic_directory(out_model_dir) as tmp:
        (tmp / TFLITE_FILE).write_bytes(flatbuffer)
    with atomic_directory(out_record_dir) as tmp:
        write_json_atomic(tmp / RECORD_FILE, record)
        np.save(tmp / SAMPLE_FILE, x_test[:SAMPLE_IMAGES])
    log.info("%s: %s %.2f KiB file, %.2f KiB peak activations, %.1f%% of MACs in binary operators, accuracy %.4f "
             "(Keras %.4f)", model_dir, what, record["tflite_kib"], graph["peak_activation_bytes"] / 1024,
             100 * graph["binary_mac_fraction_deployed"], record["converted_accuracy"], keras_accuracy)
    if len(agreeing) < len(checks):
        log.info("%s: not timed under %s (predictions disagree with Keras)", model_dir,
                 ", ".join(name for name in checks if name not in agreeing))
    return record


def read_record(record_dir: str | Path, stage: str) -> dict[str, Any]:
    """A deployed file's record (``deploy.json``); missing or unreadable is
    one line naming the ``stage`` that writes it."""
    import json

    path = Path(record_dir) / RECORD_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro {stage}` to produce it") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise StudyError(f"{path} is damaged ({type(err).__name__}): run `dvc repro --force {stage}` to rewrite it") \
            from None
    if not isinstance(record, dict):
        raise StudyError(f"{path} is damaged (not a mapping): run `dvc repro --force {stage}` to rewrite it")
    return record


def read(model_dir: str | Path, record_dir: str | Path, stage: str) -> tuple[bytes, dict[str, Any]]:
    """A deployed file and its record. A file whose size or SHA-256 is not
    the record's is refused in one line before any runtime loads it."""
    record = read_record(record_dir, stage)
    path = Path(model_dir) / TFLITE_FILE
    try:
        flatbuffer = path.read_bytes()
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro {stage}` to produce it") from None
    if len(flatbuffer) != record.get("tflite_bytes") or \
            hashlib.sha256(flatbuffer).hexdigest() != record.get("tflite_sha256"):
        raise StudyError(f"{path} is not the file its record ({Path(record_dir) / RECORD_FILE}) describes "
                         f"({len(flatbuffer)} bytes): it was damaged; `dvc checkout` restores it, or rerun "
                         f"`dvc repro --force {stage}`")
    return flatbuffer, record


def command_line(prog: str, doc: str, argv: Sequence[str] | None,
                 *arguments: tuple[str, bool, str]) -> argparse.Namespace:
    """The arguments of a stage that reads one trained run: ``--variant``,
    ``--params`` (its slice), ``--data``, ``--model``, then ``arguments``
    as (flag, required, help)."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--variant", required=True, help="the trained run's variant")
    parser.add_argument("--params", required=True, help="the slice of params.yaml it reads (data/spec/...)")
    parser.add_argument("--data", required=True, help="folder of the run's dataset")
    parser.add_argument("--model", required=True, help="folder of the trained model")
    for flag, required, help_ in arguments:
        parser.add_argument(flag, required=required, help=help_)
    return parser.parse_args(argv)


def trained_run(model_dir: str | Path, variant: str) -> tuple[Variant, int | None, int | None, Validation]:
    """A trained run's variant, its training and test limits and its
    held-out validation images, as the record it keeps beside its model
    says it was trained."""
    record = load_params(run_spec_path(model_dir))
    train_limit, test_limit = data_limits(record)
    return (variant_from_params(variant, record.get("variants")), train_limit, test_limit,
            validation_settings(record))
