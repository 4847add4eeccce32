"""The study's tables as files: written by `aggregate`, read by `plots` and
`report` (and the JSON files the table stages read), each through one
checked reader so that a damaged file is a one-line error."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from stages.lib.common import StudyError, atomic_directory

# (dataset, variant, seed), as stages.lib.params.study_runs lists them
Runs = Sequence[tuple[str, str, int]]

# The dataset the reference article's figures are about.
ARTICLE_DATASET = "mnist"
# The article's 1-bit network, the one the report's answer is about when the study has it.
ARTICLE_ONE_BIT = "bnn"


@dataclass(frozen=True)
class Kind:
    """What a field of a results file must hold."""
    meaning: str
    accepts: Callable[[Any], bool]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


FRACTION = Kind("a number from 0 to 1", lambda v: _finite(v) and 0 <= v <= 1)
POSITIVE = Kind("a positive number", lambda v: _finite(v) and v > 0)
NON_NEGATIVE = Kind("a number >= 0", lambda v: _finite(v) and v >= 0)
COUNT = Kind("a whole number >= 0", lambda v: _whole(v) and v >= 0)
POSITIVE_COUNT = Kind("a whole number >= 1", lambda v: _whole(v) and v >= 1)
TEXT = Kind("a non-empty text", lambda v: isinstance(v, str) and bool(v))
MAPPING = Kind("a mapping", lambda v: isinstance(v, dict))
COUNTS = Kind("a mapping of names to whole numbers >= 0",
              lambda v: isinstance(v, dict) and all(isinstance(k, str) and _whole(n) and n >= 0 for k, n in v.items()))


def read_json(path: Path, fields: Mapping[str, Kind]) -> dict[str, Any]:
    """The JSON object in ``path``, whose ``fields`` must each hold what its
    :class:`Kind` says; anything else (a missing file or field, a value of
    the wrong type or out of range) is a one-line error naming the file and
    the field."""
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro` to produce it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StudyError(f"{path} is not valid JSON ({err}): rerun the stage that writes it") from None
    if not isinstance(obj, dict):
        raise StudyError(f"{path} holds {type(obj).__name__}, not a JSON object: rerun the stage that writes it")
    missing = [k for k in fields if k not in obj]
    if missing:
        raise StudyError(f"{path} lacks {', '.join(missing)}: rerun the stage that writes it")
    for field, kind in fields.items():
        if not kind.accepts(obj[field]):
            raise StudyError(f"{path}: {field} must be {kind.meaning}, got {obj[field]!r}: "
                             "rerun the stage that writes it")
    return obj


@dataclass(frozen=True)
class ColumnKind:
    """What every cell of a table column must hold: text, true/false, or a
    number (whole or not) within [low, high]; ``nullable`` where an empty
    cell has a meaning (no baseline to compare with, no interval)."""
    kind: str  # "text", "bool" or "number"
    low: float = -math.inf
    high: float = math.inf
    whole: bool = False
    nullable: bool = False

    @property
    def meaning(self) -> str:
        if self.kind != "number":
            return {"text": "a text", "bool": "True or False"}[self.kind]
        what = "a whole number" if self.whole else "a number"
        if self.low > -math.inf and self.high < math.inf:
            what += f" from {self.low:g} to {self.high:g}"
        elif self.low > -math.inf:
            what += f" >= {self.low:g}"
        return what + (" or empty" if self.nullable else "")


_TEXT = ColumnKind("text")
_BOOL = ColumnKind("bool")
_FRACTION = ColumnKind("number", 0, 1)
_COUNT = ColumnKind("number", 0, whole=True)
_AMOUNT = ColumnKind("number", 0)  # sizes, times, rates, ratios
_MAYBE_AMOUNT = ColumnKind("number", 0, nullable=True)
_GAP = ColumnKind("number", -1, 1, nullable=True)
_ANY = ColumnKind("number", nullable=True)  # interval bounds, differences, shares
_P_VALUE = ColumnKind("number", 0, 1, nullable=True)  # empty where no test applies
_NAMES = ("dataset", "variant", "recipe", "architecture", "operators", "params_by_bitwidth", "macs_by_precision",
          "options", "cpu", "figure", "class_name", "baseline", "split", "reference_dataset", "cpu_popcount",
          "lce_kernels", "corruption", "pixels", "one_bit", "int8")
COLUMN_KINDS: dict[str, ColumnKind] = {
    **dict.fromkeys(_NAMES, _TEXT),
    **dict.fromkeys(("latency_options", "article_recipe_variant", "matched_baseline"), ColumnKind("text", nullable=True)),
    **dict.fromkeys(("at_chance", "is_baseline", "on_pareto_frontier", "on_deployed_pareto_frontier", "headline"),
                    _BOOL),
    **dict.fromkeys(("validation_accuracy", "validation_accuracy_mean", "test_accuracy", "chance_accuracy",
                     "converted_accuracy", "agreement", "binarized_mac_fraction",
                     "binary_mac_fraction_deployed", "test_accuracy_mean", "converted_accuracy_mean", "agreement_min",
                     "accuracy_mean", "baseline_accuracy_mean", "p_value", "accuracy", "one_bit_accuracy_mean",
                     "int8_accuracy_mean", "one_bit_agreement_min", "int8_agreement_min"), _FRACTION),
    "tflite_bytes": ColumnKind("number", 1, whole=True),
    **dict.fromkeys(("clean_accuracy_mean", "deployed_accuracy_mean", "deployed_agreement_min",
                     "deployed_agreement_mean"), _FRACTION),
    **dict.fromkeys(("deployed_images", "corruptions", "ce_undefined", "image"), _COUNT),
    "level": ColumnKind("number", 1, 5, whole=True, nullable=True),  # empty: a corruption without levels
    "drop": ColumnKind("number", -1, 1),
    "robustness_gap": ColumnKind("number", -2, 2, nullable=True),
    "mce": _MAYBE_AMOUNT,
    **dict.fromkeys(("seed", "train_images", "validation_images", "test_images", "weights_bytes", "peak_activation_bytes", "macs_binary",
                     "epochs", "params_total", "params_1bit", "params_32bit", "macs_total", "macs_1bit", "macs_32bit",
                     "seeds", "threads", "rounds", "processes", "cpu_cores", "class", "label", "predicted",
                     "runs_at_chance"), _COUNT),
    **dict.fromkeys(("variant_ahead", "baseline_ahead", "article_recipe_epochs"),
                    ColumnKind("number", 0, whole=True, nullable=True)),
    "test_loss": _MAYBE_AMOUNT,  # not measured for an int8 form (its test accuracy is the int8 model's)
    "images": _MAYBE_AMOUNT,  # the tax table's images test: none for an int8 form (no per-image answers kept)
    "images_difference": _ANY,  # a confusion cell's count minus the baseline's (empty for the baseline)
    **dict.fromkeys(("one_bit_tflite_kib", "int8_tflite_kib", "flash_ratio", "one_bit_ram_kib", "int8_ram_kib",
                     "ram_ratio", "one_bit_latency_us", "int8_latency_us"), _AMOUNT),
    **dict.fromkeys(("int8_speedup_vs_one_bit", "int8_speedup_rerun95_low", "int8_speedup_rerun95_high"),
                    _MAYBE_AMOUNT),
    "int8_minus_one_bit": _GAP,
    **dict.fromkeys(("train_time_s", "train_images_per_s", "tflite_kib", "memory_kib",
                     "fp32_equivalent_kib", "train_images_per_s_mean", "train_time_s_mean",
                     "weights_kib", "ram_kib", "latency_median_us", "latency_rerun95_low", "latency_rerun95_high",
                     "article", "ours", "loss"), _AMOUNT),
    "epoch": ColumnKind("number", 1, whole=True),
    "latency_threads": ColumnKind("number", 1, whole=True, nullable=True),
    **dict.fromkeys(("net_latency_median_us", "net_latency_rerun95_low", "net_latency_rerun95_high", "speedup_vs_baseline",
                     "speedup_rerun95_low", "speedup_rerun95_high", "net_speedup_vs_baseline", "net_speedup_rerun95_low",
                     "net_speedup_rerun95_high", "effective_macs_per_s", "compression_vs_baseline",
                     "time_vs_article_recipe", "test_accuracy_std"), _MAYBE_AMOUNT),  # a spread needs two seeds
    **dict.fromkeys(("accuracy_gap_vs_baseline", "gap_vs_baseline", "matched_gap", "article_recipe_gap", "effect"),
                    _GAP),
    "gap_change": ColumnKind("number", -2, 2, nullable=True),
    # networks across widths (stages.lib.analysis.iso_size)
    **dict.fromkeys(("family", "precision", "widths"), _TEXT),
    **dict.fromkeys(("candidates", "pick", "tied", "twin", "matching_variant", "int8_variant"),
                    ColumnKind("text", nullable=True)),
    "width": ColumnKind("number", 0, 16, nullable=True),
    "larq_kib": _AMOUNT,
    "one_bit_kib": _AMOUNT,
    **dict.fromkeys(("pick_accuracy_mean", "twin_accuracy_mean", "matching_accuracy_mean", "int8_match_accuracy_mean"),
                    ColumnKind("number", 0, 1, nullable=True)),
    **dict.fromkeys(("pick_kib", "twin_kib", "twin_width", "matching_tflite_kib", "matching_ram_kib", "matching_latency_us",
                     "int8_match_tflite_kib", "int8_match_ram_kib", "int8_match_latency_us"), _MAYBE_AMOUNT),
    **dict.fromkeys(("difference", "recovered_fraction", "recovered_ci95_low", "recovered_ci95_high"), _ANY),
}


def column_kind(column: str) -> ColumnKind | None:
    """What ``column`` holds in whichever table has it; an interval's or a
    spread's bounds (``..._ci95_low``, ``..._pi95_high``) may fall outside
    the range of what they bound, and are empty where there is no interval; a
    p-value (``..._p_value``, ``..._p_holm``, ``..._p_adjusted``) is empty
    where no test applies; the verdict columns are named by their suffixes."""
    if column in COLUMN_KINDS:
        return COLUMN_KINDS[column]
    if column.endswith(("p_value", "p_holm", "_p_adjusted", "_level")):
        return _P_VALUE
    if column.endswith(("_family", "_verdict")):  # the verdicts' (stages.lib.analysis.verdicts)
        return _TEXT
    if column.endswith("_family_size"):
        return _COUNT
    if column.endswith("_seeds_for_margin"):
        return ColumnKind("number", 0, whole=True, nullable=True)
    if column.endswith(("_detectable", "_tost_p_adjusted", "_margin", "_df")):
        return ColumnKind("number", 0, nullable=True)
    if column.endswith(("_adj_low", "_adj_high")):
        return _ANY
    for suffix in ("_ci95_low", "_ci95_high", "_pi95_low", "_pi95_high"):
        if column.endswith(suffix):
            return _ANY
    return None


def _check_column(path: Path, table: pd.DataFrame, column: str) -> pd.Series:
    """``table[column]`` as its kind says, or a one-line error naming the
    first cell that is not."""
    kind = column_kind(column)
    if kind is None:
        raise StudyError(f"{path} has a column {column} this study does not know: rerun `dvc repro aggregate`")
    cells = table[column]
    empty = cells.isna()
    if kind.kind == "text":
        values, bad = cells, pd.Series(False, index=cells.index)
    elif kind.kind == "bool":
        values = cells.map({True: True, False: False, "True": True, "False": False})
        bad = values.isna() & ~empty
    else:
        values = pd.to_numeric(cells, errors="coerce")
        bad = (values.isna() & ~empty) | (values < kind.low) | (values > kind.high)
        bad |= values.isin([math.inf, -math.inf])
        if kind.whole:
            bad |= values.notna() & (values != values.round())
    if not kind.nullable:
        bad |= empty
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise StudyError(f"{path}: {column} in row {row + 1} must be {kind.meaning}, got {cells.iloc[row]!r}: "
                         "rerun `dvc repro aggregate`")
    return values.astype(bool) if kind.kind == "bool" else values


def read_table(tables_dir: str | Path, name: str, may_be_empty: bool = False) -> pd.DataFrame:
    """One of the tables `aggregate` writes, for the stages that draw and
    report them, every column checked against its kind (:data:`COLUMN_KINDS`):
    a missing or unreadable table, a cell that is not what its column holds,
    or a table without rows unless ``may_be_empty`` (a study of the baseline
    alone has no McNemar pairs), is a one-line error."""
    path = Path(tables_dir) / f"{name}.csv"
    text_columns = {column: str for column, kind in COLUMN_KINDS.items() if kind.kind == "text"}
    try:
        table = pd.read_csv(path, dtype=text_columns)
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro aggregate`") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StudyError(f"{path} is not a readable table ({reason}): rerun `dvc repro aggregate`") from None
    if not {"variant", "dataset"} & set(table.columns) or (table.empty and not may_be_empty):
        raise StudyError(f"{path} holds no rows of variants: rerun `dvc repro aggregate`")
    for column in table.columns:
        table[column] = _check_column(path, table, column)
    return table


@contextlib.contextmanager
def table_errors(tables_dir: str | Path) -> Iterator[None]:
    """Turn what a damaged table makes pandas raise (a missing column, a
    value of the wrong type) into one line, for the stages that read them."""
    try:
        yield
    except (KeyError, ValueError, TypeError) as err:
        raise StudyError(f"the tables in {tables_dir} do not hold what this stage needs "
                         f"({type(err).__name__}: {err}): rerun `dvc repro aggregate`") from None


def to_markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, floatfmt=".6g") + "\n"


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> None:
    with atomic_directory(out_dir) as tmp:
        for name, table in tables.items():
            table.to_csv(tmp / f"{name}.csv", index=False)
            if name not in ("curves", "mean_curves", "confusion", "corruption_examples"):  # for tools, not for reading
                (tmp / f"{name}.md").write_text(to_markdown(table))


def of_dataset(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The rows of ``frame`` about ``dataset``, without the dataset column:
    what the per-dataset functions take."""
    return frame[frame["dataset"] == dataset].drop(columns="dataset")


def per_dataset(datasets: Sequence[str], table) -> pd.DataFrame:
    """``table(dataset)`` for every dataset, one table with a leading
    ``dataset`` column."""
    parts = [table(dataset).assign(dataset=dataset) for dataset in datasets]
    whole = pd.concat(parts, ignore_index=True)
    return whole[["dataset", *[c for c in whole.columns if c != "dataset"]]]
