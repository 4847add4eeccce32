"""Stage `aggregate`: every run's metrics and every variant's profile, as
pandas tables (CSV for tools, Markdown for people) and DVC metrics.

- ``runs``: one row per (variant, seed): accuracy, loss, training time and
  throughput, the deployed model's size, accuracy and latency, with the
  variant's profile figures.
- ``summary``: one row per variant: seeds, mean, standard deviation and 95%
  Student-t interval of test accuracy; size and MAC figures; compression and
  accuracy gap against the baseline variant, the gap's interval from the
  seed-paired differences; the deployed size, converted accuracy, latency and
  speedup against the baseline; how many of its runs are at chance level
  (their accuracy not significantly above always answering the most
  frequent test class: one-sided exact binomial test, p >= 0.01); whether
  the variant is on the Pareto frontier of mean accuracy against memory
  (a variant with a run at chance level never is).
- ``article``: the reference article's published figures beside ours.
- ``curves``: per-epoch accuracy and loss of every run (long form), and per
  variant the mean across seeds (for ``dvc plots``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.params import baseline as checked_baseline
from stages.lib.params import study_seeds, study_variants

# The reference article (Larq's "Introduction to BNNs with Larq" MNIST
# example): its printed profiles and its single-run test accuracies.
ARTICLE = {
    "fp32": {
        "params_total": 93770, "params_32bit": 93770, "memory_kib": 366.29,
        "macs_total": 2794240, "binarized_mac_fraction": 0.0, "test_accuracy": 0.9906,
    },
    "bnn": {
        "params_total": 93556, "params_32bit": 468, "memory_kib": 13.19,
        "macs_total": 2794240, "binarized_mac_fraction": 0.9303, "test_accuracy": 0.9813,
    },
}

RUN_METRICS = ("test_accuracy", "test_loss", "chance_accuracy", "train_time_s", "train_images_per_s", "train_images",
               "test_images")
CHANCE_P_VALUE = 0.01
DEPLOY_FIGURES = (
    "tflite_bytes", "tflite_kib", "converted_accuracy", "agreement", "latency_median_us", "latency_p90_us",
    "throughput_images_per_s",
)
PROFILE_FIGURES = (
    "params_total", "params_1bit", "params_32bit", "memory_kib", "fp32_equivalent_kib",
    "macs_total", "macs_1bit", "macs_32bit", "binarized_mac_fraction",
)


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of ``values``; the
    bounds are NaN when there are fewer than two values."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def _read_json(path: Path, keys: Sequence[str]) -> dict[str, Any]:
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


def read_table(tables_dir: str | Path, name: str) -> pd.DataFrame:
    """One of the tables this stage writes, for the stages that draw and
    report them; a missing, empty or unreadable one is a one-line error."""
    path = Path(tables_dir) / f"{name}.csv"
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro aggregate`") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StudyError(f"{path} is not a readable table ({reason}): rerun `dvc repro aggregate`") from None
    if table.empty or "variant" not in table.columns:
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


def run_name(variant: str, seed: int) -> str:
    return f"{variant}-{seed}"


def load_runs(runs_dir: str | Path, variants: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    rows = []
    for variant in variants:
        for seed in seeds:
            metrics = _read_json(Path(runs_dir) / run_name(variant, seed) / "metrics.json", RUN_METRICS)
            rows.append({"variant": variant, "seed": seed, **{k: metrics[k] for k in RUN_METRICS}})
    runs = pd.DataFrame(rows)
    runs["at_chance"] = [at_chance(acc, chance, n) for acc, chance, n in
                         zip(runs["test_accuracy"], runs["chance_accuracy"], runs["test_images"], strict=True)]
    return runs


def at_chance(accuracy: float, chance_accuracy: float, images: int) -> bool:
    """Whether ``accuracy`` on ``images`` test images is not significantly
    above ``chance_accuracy`` (always answering the most frequent class):
    one-sided exact binomial test at p < CHANCE_P_VALUE."""
    from scipy import stats

    correct = round(accuracy * images)
    return bool(stats.binomtest(correct, images, chance_accuracy, alternative="greater").pvalue >= CHANCE_P_VALUE)


def load_deployments(deploy_dir: str | Path, variants: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    rows = []
    for variant in variants:
        for seed in seeds:
            report = _read_json(Path(deploy_dir) / run_name(variant, seed) / "deploy.json",
                                (*DEPLOY_FIGURES, "best_options", "cpu"))
            options = ", ".join(k.removeprefix("use_") for k, on in report["best_options"].items() if on) or "default"
            rows.append({"variant": variant, "seed": seed, **{k: report[k] for k in DEPLOY_FIGURES},
                         "best_options": options, "cpu": report["cpu"]})
    return pd.DataFrame(rows)


def by_bits(counts: dict[str, int]) -> str:
    """``{"1": 93088, "32": 468}`` as ``1-bit: 93088; 32-bit: 468``."""
    return "; ".join(f"{bits}-bit: {count}" for bits, count in sorted(counts.items(), key=lambda kv: int(kv[0])))


def load_profiles(profiles_dir: str | Path, variants: Sequence[str]) -> pd.DataFrame:
    """Larq's figures per variant; the breakdowns by bit width keep every
    precision Larq reports (2-bit for ternary, k-bit for DoReFa), while the
    binarized fraction counts 1-bit MACs only, as Larq's summary does."""
    rows = []
    for variant in variants:
        profile = _read_json(Path(profiles_dir) / variant / "profile.json",
                             (*PROFILE_FIGURES, "params_by_bitwidth", "macs_by_precision"))
        rows.append({"variant": variant, **{k: profile[k] for k in PROFILE_FIGURES},
                     "params_by_bitwidth": by_bits(profile["params_by_bitwidth"]),
                     "macs_by_precision": by_bits(profile["macs_by_precision"])})
    return pd.DataFrame(rows).set_index("variant")


def load_curves(runs_dir: str | Path, variants: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """Per-epoch accuracy and loss of every run, from DVCLive's logs: columns
    variant, seed, epoch (from 1), split (train/test), accuracy, loss."""
    frames = []
    for variant in variants:
        for seed in seeds:
            base = Path(runs_dir) / run_name(variant, seed) / "plots" / "metrics"
            for split, folder in (("train", "train"), ("test", "eval")):
                columns = {}
                for metric in ("accuracy", "loss"):
                    path = base / folder / f"{metric}.tsv"
                    try:
                        columns[metric] = pd.read_csv(path, sep="\t")[["step", metric]].set_index("step")[metric]
                    except FileNotFoundError:
                        raise StudyError(f"{path} is missing: run `dvc repro` to produce it") from None
                frame = pd.DataFrame(columns).reset_index()
                frame.insert(0, "split", split)
                frame.insert(0, "seed", seed)
                frame.insert(0, "variant", variant)
                frames.append(frame)
    curves = pd.concat(frames, ignore_index=True)
    curves["epoch"] = curves.pop("step") + 1
    return curves[["variant", "seed", "epoch", "split", "accuracy", "loss"]]


def runs_table(runs: pd.DataFrame, profiles: pd.DataFrame, deployments: pd.DataFrame) -> pd.DataFrame:
    return runs.merge(deployments, on=["variant", "seed"], how="left").join(profiles, on="variant")


def summary_table(runs: pd.DataFrame, profiles: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """One row per variant (see the module doc) from the runs table (runs
    with their deployment figures). Latencies are medians across seeds.
    Compression, gap and speedup columns are NaN when the baseline is not in
    the study."""
    by_seed = runs.pivot(index="seed", columns="variant", values="test_accuracy")
    rows = []
    for variant, group in runs.groupby("variant", sort=False):
        mean, low, high = t_interval(group["test_accuracy"])
        row = {
            "variant": variant,
            "seeds": len(group),
            "test_accuracy_mean": mean,
            "test_accuracy_std": float(group["test_accuracy"].std(ddof=1)) if len(group) > 1 else math.nan,
            "test_accuracy_ci95_low": low,
            "test_accuracy_ci95_high": high,
            "params_total": int(profiles.at[variant, "params_total"]),
            "params_32bit": int(profiles.at[variant, "params_32bit"]),
            "memory_kib": float(profiles.at[variant, "memory_kib"]),
            "compression_vs_baseline": math.nan,
            "macs_total": int(profiles.at[variant, "macs_total"]),
            "binarized_mac_fraction": float(profiles.at[variant, "binarized_mac_fraction"]),
            "params_by_bitwidth": profiles.at[variant, "params_by_bitwidth"],
            "macs_by_precision": profiles.at[variant, "macs_by_precision"],
            "accuracy_gap_vs_baseline": math.nan,
            "accuracy_gap_ci95_low": math.nan,
            "accuracy_gap_ci95_high": math.nan,
            "train_images_per_s_mean": float(group["train_images_per_s"].mean()),
            "tflite_kib": float(group["tflite_kib"].mean()),
            "converted_accuracy_mean": float(group["converted_accuracy"].mean()),
            "agreement_min": float(group["agreement"].min()),
            "latency_median_us": float(group["latency_median_us"].median()),
            "latency_p90_us": float(group["latency_p90_us"].median()),
            "throughput_images_per_s": float(group["throughput_images_per_s"].median()),
            "speedup_vs_baseline": math.nan,
            "best_options": group["best_options"].mode().iloc[0],
            "chance_accuracy": float(group["chance_accuracy"].max()),
            "runs_at_chance": int(group["at_chance"].sum()),
        }
        if baseline in profiles.index:
            row["compression_vs_baseline"] = float(profiles.at[baseline, "memory_kib"] / profiles.at[variant, "memory_kib"])
            paired = (by_seed[variant] - by_seed[baseline]).dropna()
            gap, gap_low, gap_high = t_interval(paired)
            row.update(accuracy_gap_vs_baseline=gap, accuracy_gap_ci95_low=gap_low, accuracy_gap_ci95_high=gap_high)
            baseline_latency = runs.loc[runs["variant"] == baseline, "latency_median_us"].median()
            row["speedup_vs_baseline"] = float(baseline_latency / row["latency_median_us"])
        rows.append(row)
    summary = pd.DataFrame(rows)
    sound = summary["runs_at_chance"] == 0
    summary["on_pareto_frontier"] = False
    summary.loc[sound, "on_pareto_frontier"] = pareto_frontier(summary.loc[sound, "memory_kib"],
                                                               summary.loc[sound, "test_accuracy_mean"])
    return summary


def pareto_frontier(memory: Sequence[float], accuracy: Sequence[float]) -> list[bool]:
    """For each point, whether no other point is at least as small and at
    least as accurate, and strictly better in one of the two."""
    points = list(zip(memory, accuracy, strict=True))
    return [
        not any(m <= mem and a >= acc and (m < mem or a > acc) for m, a in points)
        for mem, acc in points
    ]


def article_table(summary: pd.DataFrame) -> pd.DataFrame:
    """For each variant the article published: its figure, ours, and the
    difference (ours minus article)."""
    ours_column = {"test_accuracy": "test_accuracy_mean"}
    rows = []
    for _, row in summary.iterrows():
        published = ARTICLE.get(row["variant"])
        if published is None:
            continue
        for figure, article_value in published.items():
            ours = float(row[ours_column.get(figure, figure)])
            rows.append({
                "variant": row["variant"], "figure": figure,
                "article": article_value, "ours": ours, "difference": ours - article_value,
            })
    return pd.DataFrame(rows, columns=["variant", "figure", "article", "ours", "difference"])


def mean_curves(curves: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per variant, the mean across seeds per epoch, one column per
    (split, metric): ``train_accuracy``, ``test_accuracy``, ..."""
    means = curves.groupby(["variant", "epoch", "split"], sort=False)[["accuracy", "loss"]].mean().reset_index()
    result = {}
    for variant, group in means.groupby("variant", sort=False):
        wide = group.pivot(index="epoch", columns="split", values=["accuracy", "loss"])
        wide.columns = [f"{split}_{metric}" for metric, split in wide.columns]
        result[variant] = wide.reset_index()[["epoch", "train_accuracy", "test_accuracy", "train_loss", "test_loss"]]
    return result


def dvc_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    """What `dvc metrics show` and `dvc exp show` list, per variant."""
    keep = ("seeds", "test_accuracy_mean", "test_accuracy_ci95_low", "test_accuracy_ci95_high", "memory_kib",
            "compression_vs_baseline", "binarized_mac_fraction", "accuracy_gap_vs_baseline", "tflite_kib",
            "converted_accuracy_mean", "latency_median_us", "speedup_vs_baseline")
    return {
        row["variant"]: {k: (None if isinstance(row[k], float) and math.isnan(row[k]) else row[k]) for k in keep}
        for row in summary.to_dict("records")
    }


def to_markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, floatfmt=".6g") + "\n"


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> None:
    with atomic_directory(out_dir) as tmp:
        for name, table in tables.items():
            table.to_csv(tmp / f"{name}.csv", index=False)
            if name != "curves":
                (tmp / f"{name}.md").write_text(to_markdown(table))


def aggregate(params: dict[str, Any], runs_dir: str | Path, profiles_dir: str | Path, deploy_dir: str | Path,
              tables_dir: str | Path, curves_dir: str | Path, metrics_path: str | Path) -> pd.DataFrame:
    variants, seeds, baseline = study_variants(params), study_seeds(params), checked_baseline(params)
    profiles = load_profiles(profiles_dir, variants)
    runs = runs_table(load_runs(runs_dir, variants, seeds), profiles, load_deployments(deploy_dir, variants, seeds))
    curves = load_curves(runs_dir, variants, seeds)
    summary = summary_table(runs, profiles, baseline)
    write_tables({"runs": runs, "summary": summary, "article": article_table(summary), "curves": curves}, tables_dir)
    with atomic_directory(curves_dir) as tmp:
        for variant, frame in mean_curves(curves).items():
            frame.to_csv(tmp / f"{variant}.csv", index=False)
    write_json_atomic(metrics_path, dvc_metrics(summary))
    for row in summary.to_dict("records"):
        log.info("%s: %d seeds, test accuracy %.2f%% (95%% CI %.2f-%.2f%%), %.2f KiB",
                 row["variant"], row["seeds"], 100 * row["test_accuracy_mean"],
                 100 * row["test_accuracy_ci95_low"], 100 * row["test_accuracy_ci95_high"], row["memory_kib"])
        if row["runs_at_chance"]:
            log.info("%s: %d of %d runs at chance level (%.2f%% by always answering the most frequent class)",
                     row["variant"], row["runs_at_chance"], row["seeds"], 100 * row["chance_accuracy"])
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.aggregate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--runs", default="reports/runs", help="DVCLive folders of the training runs")
    parser.add_argument("--profiles", default="reports/profiles")
    parser.add_argument("--deployments", default="reports/deploy", help="deploy.json of every converted run")
    parser.add_argument("--tables-out", default="reports/tables")
    parser.add_argument("--curves-out", default="reports/curves")
    parser.add_argument("--metrics-out", default="reports/metrics.json")
    args = parser.parse_args(argv)
    aggregate(load_params(args.params), args.runs, args.profiles, args.deployments, args.tables_out, args.curves_out,
              args.metrics_out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
