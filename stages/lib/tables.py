"""The study's tables as files: written by `aggregate`, read by `plots` and
`report` (and the JSON files the table stages read), each through one
checked reader so that a damaged file is a one-line error."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from stages.lib.common import StudyError, atomic_directory

# The dataset the reference article's figures are about.
ARTICLE_DATASET = "mnist"
# The benchmark's trivial model, as stages.benchmark names it in its timings
# (that stage loads TensorFlow, which the table stages do not import).
OVERHEAD = "overhead"


def read_json(path: Path, keys: Sequence[str]) -> dict[str, Any]:
    """The JSON object in ``path``, which must hold ``keys``."""
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro` to produce it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StudyError(f"{path} is not valid JSON ({err}): rerun the stage that writes it") from None
    if not isinstance(obj, dict):
        raise StudyError(f"{path} holds {type(obj).__name__}, not a JSON object: rerun the stage that writes it")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise StudyError(f"{path} lacks {', '.join(missing)}: rerun the stage that writes it")
    return obj


def read_table(tables_dir: str | Path, name: str, may_be_empty: bool = False) -> pd.DataFrame:
    """One of the tables this stage writes, for the stages that draw and
    report them; a missing or unreadable one, or one without rows unless
    ``may_be_empty`` (a study of the baseline alone has no McNemar pairs),
    is a one-line error."""
    path = Path(tables_dir) / f"{name}.csv"
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro aggregate`") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StudyError(f"{path} is not a readable table ({reason}): rerun `dvc repro aggregate`") from None
    if "variant" not in table.columns or (table.empty and not may_be_empty):
        raise StudyError(f"{path} holds no rows of variants: rerun `dvc repro aggregate`")
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
            if name not in ("curves", "confusion"):  # long tables for tools, not for reading
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
