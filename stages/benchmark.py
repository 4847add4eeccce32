"""Stage `benchmark`: every deployed model timed side by side, interleaved,
in several fresh processes one after another, so that whatever else the
machine does falls on all of them alike, and what changes from one process
to the next (memory layout, caches, the core it runs on) shows in the
intervals.

Every network of the study is timed once, its file of the study's first
seed (:func:`timed_runs`). Each of P processes (``benchmark.processes``) is a fresh Python interpreter.
In it, every (model, interpreter option set, threads) combination gets its
own interpreter, warmed up before the first round. In each of R rounds every
combination runs one block of batch-1 calls on its dataset's first test
images (kept by `deploy`), in an order shuffled per round from a seed of its
own; the block's median call latency is recorded. A trivial model with the
same input and output as the study's models (one slice operator, no
weights) is timed in the same rounds: its latency is the Python binding's
per-call overhead, which the tables subtract. Option sets under which a
model's predictions disagree with Keras (see `deploy`) are not timed for
that model.

Every call goes through the Python binding of the runtime that runs the
model: LCE's, or LiteRT's for the int4 form (set the input, invoke, read the
output); the trivial model is timed through each runtime in use, and each
model's overhead is its own runtime's. LCE's hand-optimized binary
kernels target Arm; elsewhere (x86-64) it runs its portable reference
kernels, whatever the CPU offers. The CPU's model, and whether it has the
popcount instructions binary kernels could use, are recorded with the
timings.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.forms.deployed import model_inputs, read
from stages.lib.layout import DEPLOY_RECORDS, DEPLOYED, output
from stages.lib.names import run_name
from stages.lib.data.datasets import scale_images
from stages.lib.forms.registry import post_training_runs, runtime_of, writing_stage
from stages.lib.forms.runtime import INTERPRETER_OPTIONS, RUNTIMES, SAMPLE_FILE, TFLITE_FILE, interpreter, timed_call
from stages.lib.params import BenchmarkSettings, benchmark_settings, study_runs, study_seeds



@dataclass(frozen=True)
class Subject:
    """One model to time: a study run, or the trivial overhead model."""
    name: str
    dataset: str | None
    variant: str
    seed: int | None
    flatbuffer: bytes
    images: np.ndarray       # the inputs the calls cycle through, each of shape (1, 28, 28, 1), as the model takes them
    options: tuple[str, ...]  # the option sets it may be timed under
    runtime: str = "lce"     # the runtime that runs it (stages.lib.forms.runtime.RUNTIMES)


def overhead_flatbuffer() -> bytes:
    """A model with the study's input (28x28x1 floats) and output (10
    floats) and next to no work: one slice, no weights."""
    from stages.lib.forms.lce import convert
    import tensorflow as tf

    image = tf.keras.Input(shape=(28, 28, 1), name="image")
    flat = tf.keras.layers.Reshape((784,))(image)
    first_ten = tf.keras.layers.Lambda(lambda x: x[:, :10])(flat)
    return convert(tf.keras.Model(image, first_ten, name="overhead"))


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name from /proc/cpuinfo. A cloud host may mask it to
    a bare family name ("AMD EPYC"), which two CPUs of different speeds
    share; then the x86 family, model and stepping are added, so that
    figures from two such hosts are not mistaken for one CPU's."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            break  # the first processor's block is enough
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine()
    identity = [f"{label} {fields[key]}" for key, label in
                (("cpu family", "family"), ("model", "model"), ("stepping", "stepping")) if fields.get(key)]
    if not any(character.isdigit() for character in name) and identity:
        return f"{name} ({', '.join(identity)})"
    return name


# What each architecture calls the instructions that count set bits, the
# heart of a binary convolution (XOR, then popcount): scalar, then SIMD.
POPCOUNT_FLAGS = {"popcnt": "scalar POPCNT", "avx512_vpopcntdq": "SIMD AVX-512 VPOPCNTDQ",
                  "avx512_bitalg": "SIMD AVX-512 BITALG", "asimd": "SIMD NEON CNT"}


def cpu_popcount() -> list[str]:
    """The popcount instructions the CPU reports (/proc/cpuinfo flags),
    described; empty when it reports none or the file is unreadable."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("flags", "Features"):
                flags = set(line.split(":", 1)[1].split())
                return [label for flag, label in POPCOUNT_FLAGS.items() if flag in flags]
    except OSError:
        pass
    return []


def lce_kernels(machine: str) -> str:
    """Which of LCE's kernels run on ``machine`` (platform.machine())."""
    if machine.lower() in ("aarch64", "arm64") or machine.lower().startswith("armv7"):
        return "optimized Arm kernels"
    return f"portable reference kernels, its optimized ones being for Arm only, not {machine}"


def load_subjects(deployed_dir: str | Path, deploy_reports_dir: str | Path,
                  runs: Sequence[tuple[str, str, int]]) -> list[Subject]:
    """The deployed model of every (dataset, variant, seed) in ``runs``
    (a post-training form's is ``<variant>+<form>``), each with its test
    images scaled as it was trained (and quantized for an int8 input), and
    the overhead model once per runtime they run on."""
    subjects = []
    for dataset, variant, seed in runs:
        run = run_name(dataset, variant, seed)
        stage = writing_stage(variant)
        record_dir = output(deploy_reports_dir, run, DEPLOY_RECORDS)
        flatbuffer, report = read(output(deployed_dir, run, DEPLOYED), record_dir, stage)
        sample_path = record_dir / SAMPLE_FILE
        try:
            sample = np.load(sample_path)
            input_range = tuple(report["input_range"])
            options = tuple(report["options_agreeing"])
            quantization = report["input_quantization"]
        except FileNotFoundError as err:
            raise StudyError(f"{err.filename} is missing: run `dvc repro {stage}` to produce it") from None
        except (ValueError, KeyError, TypeError, OSError) as err:
            raise StudyError(f"{record_dir} is damaged ({type(err).__name__}: {err}): "
                             f"run `dvc repro --force {stage}` to rewrite it") from None
        if sample.dtype != np.uint8 or sample.ndim != 3 or not len(sample):
            raise StudyError(f"{sample_path} holds no uint8 images: run `dvc repro --force {stage}` to rewrite it")
        # a file the interpreter refuses stops before any timing
        runtime = runtime_of(variant)
        interpreter(flatbuffer, 1, "default", source=str(output(deployed_dir, run, DEPLOYED) / TFLITE_FILE),
                    runtime=runtime)
        subjects.append(Subject(run, dataset, variant, seed, flatbuffer,
                                model_inputs(scale_images(sample, input_range), quantization)[:, np.newaxis],
                                options, runtime))
    if not subjects:
        raise StudyError("the study has no runs to time: list datasets, variants and seeds under `study`")
    # the overhead model ignores what the pixels hold: any float input will do
    images = next((subject.images for subject in subjects if subject.images.dtype == np.float32),
                  np.zeros((1, 1, 28, 28, 1), np.float32))
    flatbuffer = overhead_flatbuffer()
    for runtime in dict.fromkeys(subject.runtime for subject in subjects):
        model = RUNTIMES[runtime].overhead
        subjects.append(Subject(model, None, model, None, flatbuffer, images,
                                tuple(INTERPRETER_OPTIONS), runtime))
    return subjects


def time_block(call, images: np.ndarray, calls: int) -> float:
    """Median latency in microseconds of ``calls`` batch-1 calls, cycling
    through ``images``."""
    latencies = np.empty(calls)
    for i in range(calls):
        sample = [images[i % len(images)]]
        start = time.perf_counter_ns()
        call(sample)
        latencies[i] = time.perf_counter_ns() - start
    return float(np.median(latencies)) / 1000


def time_in_process(subjects: Sequence[Subject], settings: BenchmarkSettings, process: int,
                    progress: bool = False) -> pd.DataFrame:
    """One process's timings, one row per (round, combination): process,
    its pid, round, position in the round, model, dataset, variant, seed, options,
    threads, latency_us (the block's median)."""
    # an array unpickled in a fresh process carries a dtype object of its own,
    # which LCE's binding does not recognize ("NumPy type info missing for
    # Pc"): rebuild each with NumPy's own float32 (int8 for an int8 input)
    subjects = [replace(subject, images=subject.images.astype(np.int8 if subject.images.dtype.kind == "i" else
                                                              np.float32, copy=True)) for subject in subjects]
    combos = [(subject, options, threads) for subject in subjects for options in subject.options
              for threads in settings.threads]
    calls, keep_alive = {}, []
    for subject, options, threads in combos:
        runner = interpreter(subject.flatbuffer, threads, options, runtime=subject.runtime)
        calls[subject.name, options, threads] = timed_call(runner)
        keep_alive.append(runner)
        time_block(calls[subject.name, options, threads], subject.images, settings.warmup_calls)
    from tqdm import tqdm

    rng = np.random.default_rng([settings.seed, process])
    rows = []
    for round_index in tqdm(range(settings.rounds), desc=f"process {process + 1} rounds", disable=not progress):
        for position, index in enumerate(rng.permutation(len(combos))):
            subject, options, threads = combos[index]
            latency = time_block(calls[subject.name, options, threads], subject.images, settings.calls_per_block)
            rows.append({"process": process, "pid": os.getpid(), "round": round_index, "position": position, "model": subject.name,
                         "dataset": subject.dataset, "variant": subject.variant, "seed": subject.seed,
                         "options": options, "threads": threads, "latency_us": latency})
    return pd.DataFrame(rows)


def run_benchmark(subjects: Sequence[Subject], settings: BenchmarkSettings, progress: bool | None = None) -> pd.DataFrame:
    """``settings.processes`` fresh processes, one after another (never two
    at once: they would compete for the cores), each timing every
    combination (:func:`time_in_process`); their timings together."""
    from tqdm import tqdm

    combos = sum(len(subject.options) for subject in subjects) * len(settings.threads)
    log.info("timing %d combinations (%d models, option sets, threads %s) in %d processes of %d rounds of %d calls",
             combos, len(subjects), ",".join(map(str, settings.threads)), settings.processes, settings.rounds,
             settings.calls_per_block)
    disable = not sys.stderr.isatty() if progress is None else not progress
    frames = []
    for process in tqdm(range(settings.processes), desc="benchmark processes", disable=disable):
        # spawn: a fresh interpreter, not a copy of this one's memory
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                frames.append(pool.submit(time_in_process, subjects, settings, process).result())
            except BrokenProcessPool:
                raise StudyError(f"benchmark process {process + 1} of {settings.processes} died before it finished "
                                 "(killed, or out of memory): rerun `dvc repro benchmark`") from None
    return pd.concat(frames, ignore_index=True)


def timed_runs(params: dict[str, Any]) -> list[tuple[str, str, int]]:
    """The runs whose files are timed: every network of the study (each
    variant and form, per dataset) once, its file of the study's first seed.
    A deployed network's speed is its shapes' and its runtime's, not its
    trained weights': timed per seed, the five seeds of the default study
    agreed within 4% (within 1% for all but the smallest network), about
    the rounds' own noise, and the benchmark took five times as long."""
    first = study_seeds(params)[0]
    study = study_runs(params)
    return [run for run in study + post_training_runs(params, study) if run[2] == first]


def benchmark(params: dict[str, Any], deployed_dir: str | Path, deploy_reports_dir: str | Path,
              out_dir: str | Path) -> pd.DataFrame:
    settings = benchmark_settings(params)
    subjects = load_subjects(deployed_dir, deploy_reports_dir, timed_runs(params))
    start = time.perf_counter()
    timings = run_benchmark(subjects, settings)
    elapsed = time.perf_counter() - start
    import larq_compute_engine as lce

    info = {
        "settings": asdict(settings),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_popcount": cpu_popcount(),
        "machine": platform.machine(),
        "lce_kernels": lce_kernels(platform.machine()),
        "larq_compute_engine": lce.__version__,
        "models": [subject.name for subject in subjects],
        "overhead_model": "28x28x1 float input, its first 10 values as output: one slice, no weights",
        "seconds": elapsed,
    }
    with atomic_directory(out_dir) as tmp:
        timings.to_csv(tmp / "timings.csv", index=False)
        write_json_atomic(tmp / "benchmark.json", info)
    log.info("benchmark: %d blocks in %.0f s on %s", len(timings), elapsed, info["cpu"])
    return timings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="data/spec/benchmark.json", help="the slice of params.yaml it reads")
    parser.add_argument("--deployed", default="data/deployed", help="folders of the .tflite files")
    parser.add_argument("--deploy-reports", default="reports/deploy", help="folders of deploy.json")
    parser.add_argument("--out", default="reports/benchmark")
    args = parser.parse_args(argv)
    benchmark(load_params(args.params), args.deployed, args.deploy_reports, args.out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
