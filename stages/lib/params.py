"""Checked views of ``params.yaml``: each function reads one section and
returns plain values, or raises a one-line :class:`StudyError` naming the
param that is wrong. Each stage checks what it reads; the `check` stage
checks the whole file before DVC runs any stage whose outputs it would
delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stages.lib.common import StudyError
from stages.lib.names import check_name
from stages.lib.data.datasets import DATASETS, dataset

# Every section and key of the sections checked here (the others are checked
# by their own modules under stages/lib/settings/): a misspelt key (`-S
# recipes.article.epoch=3`) would otherwise be added silently and change nothing.
SECTIONS: dict[str, tuple[str, ...] | None] = {
    "data": ("sources", "retries", "timeout_s", "train_limit", "test_limit", "validation_images", "validation_seed"),
    "study": ("datasets", "variants", "seeds", "extended"),
    "train": ("steps_per_execution",),
    "recipes": None,  # names of the user's choosing, checked one by one
    "variants": None,
    "benchmark": ("threads", "processes", "rounds", "calls_per_block", "warmup_calls", "seed", "headline_options"),
}

# The fewest benchmark processes whose figures give a Student-t interval
# (the process is the replication unit: a fresh interpreter each).
MIN_PROCESSES = 3
OPTION_SETS = ("default", "bgemm", "xnnpack", "bgemm+xnnpack")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def positive_int(where: str, value: Any) -> int:
    if not is_int(value) or value <= 0:
        raise StudyError(f"{where} must be a positive whole number, got {value!r}")
    return value


def section(params: dict[str, Any], name: str, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The section ``name`` of params.yaml, a mapping holding no key but
    ``keys`` (any key when None: names of the user's choosing)."""
    found = params.get(name)
    if not isinstance(found, dict):
        raise StudyError(f"params.yaml has no `{name}` section")
    extra = [str(key) for key in found if keys is not None and key not in keys]
    if extra:
        raise StudyError(f"{name} has unknown keys {', '.join(extra)}; valid keys: {', '.join(keys)}")
    return found


def name_list(where: str, names: Any, known: Any = None, what: str = "name", empty: bool = False) -> list[str]:
    """``names``: a list of valid names (:func:`check_name`), each once, each
    in ``known`` when given, non-empty unless ``empty``; anything else is one
    line naming ``where``."""
    if not isinstance(names, list) or not (names or empty):
        choices = f" ({', '.join(known)})" if known is not None else ""
        raise StudyError(f"{where} must be a {'' if empty else 'non-empty '}list of {what} names{choices}, got {names!r}")
    for name in names:
        if known is not None and (not isinstance(name, str) or name not in known):
            raise StudyError(f"{where}: unknown {what} {str(name)[:60]!r}; known {what}s: {', '.join(known)}")
        check_name(where, name)
    if len(set(names)) != len(names):
        raise StudyError(f"{where} lists a {what} twice: {names!r}")
    return list(names)


def check_keys(params: dict[str, Any]) -> None:
    """Every section present, and no section or key the study does not know."""
    unknown = [name for name in params if name not in SECTIONS]
    if unknown:
        raise StudyError(f"params.yaml has unknown sections {', '.join(map(str, unknown))}; "
                         f"valid: {', '.join(SECTIONS)}")
    for name, keys in SECTIONS.items():
        section(params, name, keys)


@dataclass(frozen=True)
class TrainSettings:
    """How every run trains, whatever its recipe (speed only, the same
    maths): training steps per compiled call."""
    steps_per_execution: int


def train_settings(params: dict[str, Any]) -> TrainSettings:
    train = section(params, "train")
    return TrainSettings(
        steps_per_execution=positive_int("train.steps_per_execution", train.get("steps_per_execution", 1)),
    )


def data_limits(params: dict[str, Any]) -> tuple[int | None, int | None]:
    """``data.train_limit`` and ``data.test_limit``: None for the whole split."""
    data = section(params, "data")
    limits = []
    for key in ("train_limit", "test_limit"):
        value = data.get(key)
        limits.append(None if value is None else positive_int(f"data.{key}", value))
    return limits[0], limits[1]


# numpy's and TensorFlow's seeds are 32-bit: a larger one fails deep inside training
MAX_SEED = 2 ** 32 - 1


@dataclass(frozen=True)
class Validation:
    """The held-out validation images: ``images`` of the training images
    the runs use, drawn by ``seed``, the same for every run and seed. They
    make every choice the study makes from data (curves, budget picks,
    width match); the test images confirm, once per run."""
    images: int
    seed: int


def validation_settings(params: dict[str, Any]) -> Validation:
    """``data.validation_images`` and ``data.validation_seed``, checked: at
    least one image, fewer than the training images the runs use (every
    dataset's split and ``data.train_limit``), a seed from 0 to 2^32 - 1."""
    data = section(params, "data")
    count, seed = data.get("validation_images"), data.get("validation_seed")
    if not is_int(count) or count < 1:
        raise StudyError(f"data.validation_images must be a positive whole number of held-out training images, "
                         f"got {count!r}")
    if not is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise StudyError(f"data.validation_seed must be a whole number from 0 to 2^32 - 1, got {seed!r}")
    train_limit = data.get("train_limit")
    datasets = section(params, "study").get("datasets") if isinstance(params.get("study"), dict) else None
    splits = [dataset(name).train_images for name in datasets or [] if name in DATASETS]
    available = min(splits + ([train_limit] if is_int(train_limit) else []), default=None)
    if available is not None and count >= available:
        raise StudyError(f"data.validation_images is {count}, not fewer than the {available} training images the "
                         "runs use (data.train_limit and each dataset's split): nothing would be left to train on")
    return Validation(count, seed)


@dataclass(frozen=True)
class DownloadSettings:
    sources: list[str]
    retries: int
    timeout_s: float


def download_settings(params: dict[str, Any], name: str) -> DownloadSettings:
    """How to fetch dataset ``name``: its sources in ``data.sources``, tried
    in order, and the retry and timeout settings shared by every dataset."""
    dataset(name)
    data = section(params, "data")
    by_dataset = data.get("sources")
    if not isinstance(by_dataset, dict):
        raise StudyError(f"data.sources must map each dataset ({', '.join(DATASETS)}) to its list of URLs or "
                         f"folders, got {by_dataset!r}")
    unknown = [str(key) for key in by_dataset if key not in DATASETS]
    if unknown:
        raise StudyError(f"data.sources names unknown datasets {', '.join(unknown)}; known datasets: "
                         f"{', '.join(DATASETS)}")
    if name not in by_dataset:
        raise StudyError(f"data.sources has no sources for {name}: list its mirrors and shipped folder under "
                         f"data.sources.{name}")
    sources = by_dataset[name]
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s for s in sources):
        raise StudyError(f"data.sources.{name} must be a non-empty list of URLs or folders, got {sources!r}")
    retries = data.get("retries", 2)
    if not is_int(retries) or retries < 0:
        raise StudyError(f"data.retries must be a whole number >= 0, got {retries!r}")
    timeout_s = data.get("timeout_s", 30)
    if not is_number(timeout_s) or timeout_s <= 0:
        raise StudyError(f"data.timeout_s must be a positive number of seconds, got {timeout_s!r}")
    return DownloadSettings(list(sources), retries, float(timeout_s))


def study_datasets(params: dict[str, Any]) -> list[str]:
    """``study.datasets``: registered dataset names, each once; an unknown
    name is refused before anything runs."""
    return name_list("study.datasets", section(params, "study").get("datasets"), DATASETS, "dataset")


def study_variants(params: dict[str, Any]) -> list[str]:
    return name_list("study.variants", section(params, "study").get("variants"), what="variant")


def study_seeds(params: dict[str, Any]) -> list[int]:
    seeds = section(params, "study").get("seeds")
    if not isinstance(seeds, list) or not seeds:
        raise StudyError(f"study.seeds must be a non-empty list of whole numbers, got {seeds!r}")
    for seed in seeds:
        if not is_int(seed) or not 0 <= seed <= MAX_SEED:
            raise StudyError(f"study.seeds: {str(seed)[:40]!r} is not a whole number from 0 to 2^32 - 1")
    if len(set(seeds)) != len(seeds):
        raise StudyError(f"study.seeds lists a seed twice: {seeds!r}")
    return list(seeds)


def study_runs(params: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (dataset, variant, seed) of the study, in the order of its
    params: the training runs, as DVC's stage matrix spells them."""
    return [(name, variant, seed) for name in study_datasets(params) for variant in study_variants(params)
            for seed in study_seeds(params)]


def extended_variants(params: dict[str, Any]) -> list[str]:
    """``study.extended``: the named set of variants for the frontier study
    (run with ``dvc exp run -S 'study.variants=[...]'``); every name must be
    defined under ``variants``."""
    extended = section(params, "study").get("extended", [])
    defined = params.get("variants") or {}
    if not isinstance(extended, list):
        raise StudyError(f"study.extended must be a list of variant names, got {extended!r}")
    unknown = [str(name)[:60] for name in extended if not isinstance(name, str) or name not in defined]
    if unknown:
        raise StudyError(
            f"study.extended names {', '.join(unknown)}, not defined under `variants` ({', '.join(sorted(defined))})"
        )
    return [str(name) for name in extended]


@dataclass(frozen=True)
class BenchmarkSettings:
    threads: tuple[int, ...]
    processes: int
    rounds: int
    calls_per_block: int
    warmup_calls: int
    seed: int


def benchmark_settings(params: dict[str, Any]) -> BenchmarkSettings:
    found = section(params, "benchmark")
    threads = found.get("threads")
    if not isinstance(threads, list) or not threads:
        raise StudyError(f"benchmark.threads must be a non-empty list of thread counts, got {threads!r}")
    for count in threads:
        positive_int("benchmark.threads", count)
    if len(set(threads)) != len(threads):
        raise StudyError(f"benchmark.threads lists a thread count twice: {threads!r}")
    processes = positive_int("benchmark.processes", found.get("processes"))
    if processes < MIN_PROCESSES:
        raise StudyError(f"benchmark.processes must be at least {MIN_PROCESSES} for an interval across processes, "
                         f"got {processes}")
    seed = found.get("seed")
    if not is_int(seed) or seed < 0:
        raise StudyError(f"benchmark.seed must be a whole number >= 0, got {seed!r}")
    return BenchmarkSettings(
        threads=tuple(threads),
        processes=processes,
        rounds=positive_int("benchmark.rounds", found.get("rounds")),
        calls_per_block=positive_int("benchmark.calls_per_block", found.get("calls_per_block")),
        warmup_calls=positive_int("benchmark.warmup_calls", found.get("warmup_calls")),
        seed=seed,
    )


def headline_options(params: dict[str, Any]) -> str:
    """``benchmark.headline_options``: the interpreter option set the
    headline latencies and speedups use (`aggregate` reads it; the
    benchmark times every option set)."""
    headline = section(params, "benchmark").get("headline_options")
    if headline not in OPTION_SETS:
        raise StudyError(f"benchmark.headline_options must be one of {', '.join(OPTION_SETS)}, got {headline!r}")
    return headline
