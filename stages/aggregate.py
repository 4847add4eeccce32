"""Stage `aggregate`: every run's metrics and every variant's profile, as
pandas tables (CSV for tools, Markdown for people) and DVC metrics.

Every table but the profiles' has a ``dataset`` column: a network trained on
one dataset is compared only with networks trained on the same one, so
summaries, Pareto flags, per-class figures and tests are per dataset.

- ``runs``: one row per (dataset, variant, seed): accuracy, loss, training time and
  throughput, the deployed model's size and accuracy, with the variant's
  profile figures.
- ``summary``: one row per (dataset, variant): seeds, mean, standard deviation and 95%
  interval of test accuracy (Student t on the logit scale, so that it stays
  within 0-100%), and the 95% prediction interval for one more run (what a
  single published run is compared with); size and MAC figures; compression
  and accuracy gap against the baseline variant, the gap's interval and
  p-value from the seed-paired differences (Student t), the p-value
  Holm-adjusted over the dataset's variants, and how many seeds would tell a
  gap of the measured size from zero (80% power at the measured spread);
  what the deployed file holds (flash, weights, peak activation RAM,
  operators, share of MACs in binary operators); the headline latency and
  paired speedup against the baseline (the benchmark's headline option set
  at its first thread count); how many of its runs are at chance level
  (their accuracy not significantly above always answering the most
  frequent test class: one-sided exact binomial test, p >= 0.01); whether
  the variant is on the Pareto frontier of mean accuracy against memory
  (a variant with a run at chance level never is), and on the frontier of
  mean accuracy against the deployed file's size.
- ``latency``: one row per (dataset, variant, interpreter option set,
  threads), the overhead model included. The replication unit is the
  benchmark process (a fresh interpreter): each gives its median across
  its rounds; the latency and the speedup against the baseline (paired
  within each round) are geometric means across processes with the 95%
  interval a rerun of the benchmark on this machine would land in (a
  prediction interval on the log scale); the same minus the binding's overhead
  measured in the same rounds; effective multiply-accumulates per second;
  the speedups' p-values Holm-adjusted over the dataset's family of speed
  verdicts.
- ``per_class``: one row per (dataset, variant, class): test accuracy on
  that class, mean over seeds with its logit-scale interval, and the gap to
  the baseline on the same class, paired by seed, with its interval and
  p-value, Holm-adjusted over the variant's classes.
- ``confusion``: the confusion matrix of every (dataset, variant), mean over
  seeds (long form: dataset, variant, label, predicted, images).
- ``paired_images``: one row per (dataset, variant other than the
  baseline): on the same test images, all seeds at once, how many images
  lean to the variant and how many to the baseline, and the exact sign test
  of the two (McNemar's test generalized to several seeds), Holm-adjusted
  over the variants.
- ``tax``: the 1-bit tax by dataset: one row per (dataset, variant other
  than the baseline): the paired accuracy gap to the baseline with its
  interval and adjusted p-value, and the paired-images test.
- ``tax_change``: how each variant's gap changes from the first dataset to
  each other one: the difference of the gaps with Welch's interval.
- ``recipes``: the recipe's share of the cost, per (dataset, variant other
  than the baseline): recipe, epochs, training time, the gap to the
  baseline, the recipe's effect against the article's recipe (paired), the
  share of the article recipe's gap it recovers (Fieller's interval, only
  where that gap is told from zero), and the gap under matched recipes (see
  :func:`recipe_table`).
- ``article``: the reference article's published figures beside ours (MNIST
  only, the article's dataset).
- ``curves``: per-epoch accuracy and loss of every run (long form), and per
  (dataset, variant) the mean across seeds (for ``dvc plots``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.lib.common import (
    StudyError, atomic_directory, load_params, log, profile_folder, run_cli, run_name, write_json_atomic,
)
from stages.lib.datasets import dataset as registered_dataset
from stages.lib.params import baseline as checked_baseline
from stages.lib.params import OPTION_SETS, headline_options, study_datasets, study_runs, study_variants
from stages.lib.recipes import DEFAULT_RECIPE
from stages.lib.tables import (
    ARTICLE_DATASET, COUNT, COUNTS, FRACTION, MAPPING, NON_NEGATIVE, OVERHEAD, POSITIVE, POSITIVE_COUNT, TEXT,
    of_dataset, per_dataset, read_json, write_tables,
)
from stages.lib.stats import (
    ALPHA, Estimate, accuracy_interval, at_chance, fieller_ratio, holm, image_sign_test, rerun_interval,
    paired_difference, prediction_interval, seeds_needed, welch_difference,
)

# The dataset of the reference article, "Binary Neural Network Part 2" by Mohamad Moawad,
# whose two networks follow Larq's MNIST example ("Introduction to BNNs with
# Larq", which shows only the 1-bit network): the article's printed profiles
# and its single-run test accuracies.
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

# What each per-run file must hold, field by field.
RUN_METRICS = {
    "test_accuracy": FRACTION, "test_loss": NON_NEGATIVE, "chance_accuracy": FRACTION, "train_time_s": POSITIVE,
    "train_images_per_s": POSITIVE, "train_images": POSITIVE_COUNT, "test_images": POSITIVE_COUNT,
}
DEPLOY_FIGURES = {
    "tflite_bytes": POSITIVE_COUNT, "tflite_kib": POSITIVE, "converted_accuracy": FRACTION, "agreement": FRACTION,
    "weights_bytes": COUNT, "peak_activation_bytes": COUNT, "macs_binary": COUNT,
    "binary_mac_fraction_deployed": FRACTION,
}
PROFILE_FIGURES = {
    "params_total": POSITIVE_COUNT, "params_1bit": COUNT, "params_32bit": COUNT, "memory_kib": POSITIVE,
    "fp32_equivalent_kib": POSITIVE, "macs_total": POSITIVE_COUNT, "macs_1bit": COUNT, "macs_32bit": COUNT,
    "binarized_mac_fraction": FRACTION,
}


Runs = Sequence[tuple[str, str, int]]  # (dataset, variant, seed), as stages.lib.params.study_runs lists them


def load_runs(runs_dir: str | Path, study: Runs) -> pd.DataFrame:
    rows = []
    for dataset, variant, seed in study:
        metrics = read_json(Path(runs_dir) / run_name(dataset, variant, seed) / "metrics.json", RUN_METRICS)
        rows.append({"dataset": dataset, "variant": variant, "seed": seed, **{k: metrics[k] for k in RUN_METRICS}})
    runs = pd.DataFrame(rows)
    runs["at_chance"] = [at_chance(acc, chance, n) for acc, chance, n in
                         zip(runs["test_accuracy"], runs["chance_accuracy"], runs["test_images"], strict=True)]
    return runs


def census(operators: dict[str, int]) -> str:
    """``{"CONV_2D": 1, "LceBconv2d": 4}`` as ``LceBconv2d 4, CONV_2D 1``:
    most frequent first."""
    return ", ".join(f"{name} {count}" for name, count in sorted(operators.items(), key=lambda kv: (-kv[1], kv[0])))


def load_deployments(deploy_dir: str | Path, study: Runs) -> pd.DataFrame:
    rows = []
    for dataset, variant, seed in study:
        report = read_json(Path(deploy_dir) / run_name(dataset, variant, seed) / "deploy.json",
                           {**DEPLOY_FIGURES, "operators": COUNTS})
        rows.append({"dataset": dataset, "variant": variant, "seed": seed, **{k: report[k] for k in DEPLOY_FIGURES},
                     "operators": census(report["operators"])})
    return pd.DataFrame(rows)


def load_predictions(runs_dir: str | Path, study: Runs) -> pd.DataFrame:
    """Every run's answer to every test image (long form: dataset, variant,
    seed, image, label, predicted)."""
    frames = []
    for dataset, variant, seed in study:
        path = Path(runs_dir) / run_name(dataset, variant, seed) / "predictions.csv"
        try:
            frame = pd.read_csv(path)
        except FileNotFoundError:
            raise StudyError(f"{path} is missing: run `dvc repro` to produce it") from None
        except (ValueError, pd.errors.ParserError) as err:
            raise StudyError(f"{path} is damaged ({err}): retrain it with `dvc repro --force` on its train "
                             "stage") from None
        if list(frame.columns) != ["label", "predicted"] or frame.empty:
            raise StudyError(f"{path} is damaged (not label,predicted rows): retrain it with "
                             "`dvc repro --force` on its train stage")
        classes = len(registered_dataset(dataset).class_names)
        if not all(pd.api.types.is_integer_dtype(frame[c]) and frame[c].between(0, classes - 1).all()
                   for c in frame.columns):
            raise StudyError(f"{path} is damaged (labels and answers must be classes 0 to {classes - 1}): retrain "
                             "it with `dvc repro --force` on its train stage")
        frames.append(frame.assign(dataset=dataset, variant=variant, seed=seed, image=np.arange(len(frame))))
    return pd.concat(frames, ignore_index=True)[["dataset", "variant", "seed", "image", "label", "predicted"]]


def per_class_table(predictions: pd.DataFrame, variants: Sequence[str], baseline: str,
                    class_names: Sequence[str]) -> pd.DataFrame:
    """One row per (variant, class) of one dataset, see the module doc.
    The gaps of one variant's classes are one family: their p-values (paired
    t-test over seeds) are Holm-adjusted together."""
    correct = predictions.assign(correct=predictions["label"] == predictions["predicted"])
    accuracy = correct.groupby(["variant", "label", "seed"])["correct"].mean()
    images = correct[correct["seed"] == correct["seed"].iloc[0]].groupby(["variant", "label"]).size()
    rows = []
    for variant in variants:
        family = []
        for label in sorted(correct["label"].unique()):
            by_seed = accuracy.loc[(variant, label)]
            count = int(images.loc[(variant, label)])
            mean = accuracy_interval(by_seed, count)
            row = {"variant": variant, "class": int(label),
                   "class_name": class_names[label] if label < len(class_names) else str(label),
                   "images": count, "seeds": mean.n, "accuracy_mean": mean.value, "accuracy_ci95_low": mean.low,
                   "accuracy_ci95_high": mean.high, "gap_vs_baseline": math.nan, "gap_ci95_low": math.nan,
                   "gap_ci95_high": math.nan, "gap_p_value": math.nan, "gap_p_holm": math.nan}
            if baseline in variants and variant != baseline:
                base = accuracy.loc[(baseline, label)].reindex(by_seed.index)
                gap = paired_difference(by_seed, base)
                row.update(gap_vs_baseline=gap.value, gap_ci95_low=gap.low, gap_ci95_high=gap.high,
                           gap_p_value=gap.p_value)
            rows.append(row)
            family.append(len(rows) - 1)
        adjusted = holm([rows[i]["gap_p_value"] for i in family])
        for i, p_holm in zip(family, adjusted, strict=True):
            rows[i]["gap_p_holm"] = p_holm
    return pd.DataFrame(rows)


def confusion_table(predictions: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """Mean over seeds of how many test images of each label got each
    answer, every (label, predicted) pair listed."""
    classes = sorted(set(predictions["label"]) | set(predictions["predicted"]))
    counts = predictions.groupby(["variant", "seed", "label", "predicted"]).size()
    seeds = predictions.groupby("variant")["seed"].nunique()
    index = pd.MultiIndex.from_product([variants, classes, classes], names=["variant", "label", "predicted"])
    total = counts.groupby(["variant", "label", "predicted"]).sum().reindex(index, fill_value=0)
    mean = total / seeds.reindex(total.index.get_level_values("variant")).to_numpy()
    return mean.rename("images").reset_index()


PAIRED_IMAGES_COLUMNS = ("variant", "seeds", "images", "variant_ahead", "baseline_ahead", "p_value", "p_holm")


def paired_images_table(predictions: pd.DataFrame, variants: Sequence[str], baseline: str) -> pd.DataFrame:
    """One row per variant other than the baseline: on the same test
    images, all seeds at once, how many images the variant's seeds get right
    more often than the baseline's and how many less, and the exact sign
    test of the two (:func:`stages.lib.stats.image_sign_test`; McNemar's
    test when there is one seed), Holm-adjusted over the variants."""
    correct = predictions.assign(correct=predictions["label"] == predictions["predicted"])
    right = correct.pivot_table(index=["seed", "image"], columns="variant", values="correct", aggfunc="sum")
    rows = []
    for variant in variants if baseline in variants else []:
        if variant == baseline:
            continue
        pairs = right[[variant, baseline]].dropna()
        if pairs.empty or len(pairs) < right[variant].notna().sum():
            raise StudyError(f"{variant} and {baseline} answered different test sets: rerun `dvc repro`")
        by_image = pairs.groupby(level="image").sum()
        ahead, behind, p_value = image_sign_test(by_image[variant], by_image[baseline])
        rows.append({"variant": variant, "seeds": pairs.index.get_level_values("seed").nunique(),
                     "images": len(by_image), "variant_ahead": ahead, "baseline_ahead": behind, "p_value": p_value})
    table = pd.DataFrame(rows, columns=PAIRED_IMAGES_COLUMNS[:-1])
    table["p_holm"] = holm(table["p_value"])
    return table


TIMING_COLUMNS = ("process", "round", "model", "variant", "seed", "options", "threads", "latency_us")


def load_timings(benchmark_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The benchmark's timings and its description (CPU, settings)."""
    info = read_json(Path(benchmark_dir) / "benchmark.json", {"cpu": TEXT, "settings": MAPPING, "lce_kernels": TEXT})
    popcount = info.get("cpu_popcount")
    if not isinstance(popcount, list) or not all(isinstance(item, str) for item in popcount):
        raise StudyError(f"{Path(benchmark_dir) / 'benchmark.json'} has no list of the CPU's popcount instructions: "
                         "run `dvc repro --force benchmark`")
    path = Path(benchmark_dir) / "timings.csv"
    try:
        timings = pd.read_csv(path)
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro benchmark` to produce it") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise StudyError(f"{path} is damaged ({err}): run `dvc repro --force benchmark`") from None
    missing = [c for c in TIMING_COLUMNS if c not in timings.columns]
    if missing or timings.empty:
        raise StudyError(f"{path} is damaged (no rows or no column {', '.join(missing)}): "
                         "run `dvc repro --force benchmark`")
    return timings, info


def _per_process(values: pd.Series) -> pd.Series:
    """Each benchmark process's median of its rounds: the process is the
    replication unit (a fresh interpreter, its own memory layout)."""
    return values.groupby(level="process").median()


def latency_table(timings: pd.DataFrame, variants: Sequence[str], baseline: str, macs: dict[str, int],
                  headline_options: str) -> pd.DataFrame:
    """One row per (variant, option set, threads), see the module doc. In
    each round a variant's latency is the mean of its seeds' block medians;
    the overhead-free latency subtracts the overhead model's block of the
    same round, options and threads; the speedup is the baseline's latency
    over the variant's in the same round. Each process contributes the
    median of its rounds; latencies and speedups are geometric means across
    processes with the 95% interval a rerun of the benchmark on this machine
    would land in (:func:`stages.lib.stats.rerun_interval`, on the log
    scale, so that no interval reaches below zero). The speed verdicts of one dataset are one family: the
    speedups' p-values (that the ratio is 1) are Holm-adjusted together."""
    per_round = timings.groupby(["variant", "options", "threads", "process", "round"])["latency_us"].mean()
    combos = per_round.index.droplevel(["process", "round"])
    rows = []
    for variant in [*variants, OVERHEAD]:
        for options in OPTION_SETS:
            for threads in sorted(timings["threads"].unique()):
                key = (variant, options, threads)
                if key not in combos:
                    continue
                latency = per_round.loc[key]
                overhead = per_round.loc[(OVERHEAD, options, threads)].reindex(latency.index)
                figure = rerun_interval(_per_process(latency))
                # the overhead model's own figures minus themselves would read as a free model
                net = (rerun_interval(_per_process(latency - overhead)) if variant != OVERHEAD else
                       Estimate(math.nan, math.nan, math.nan, figure.n))
                row = {"variant": variant, "options": options, "threads": int(threads), "processes": figure.n,
                       "rounds": int(latency.groupby(level="process").size().min()),
                       "headline": options == headline_options,
                       "latency_median_us": figure.value, "latency_rerun95_low": figure.low,
                       "latency_rerun95_high": figure.high, "net_latency_median_us": net.value,
                       "net_latency_rerun95_low": net.low, "net_latency_rerun95_high": net.high,
                       "speedup_vs_baseline": math.nan, "speedup_rerun95_low": math.nan, "speedup_rerun95_high": math.nan,
                       "speedup_p_value": math.nan, "speedup_p_holm": math.nan,
                       "net_speedup_vs_baseline": math.nan, "net_speedup_rerun95_low": math.nan,
                       "net_speedup_rerun95_high": math.nan,
                       "effective_macs_per_s": (macs[variant] / (net.value / 1e6)
                                                if variant in macs and net.value > 0 else math.nan)}
                if variant not in (OVERHEAD, baseline) and (baseline, options, threads) in combos:
                    base = per_round.loc[(baseline, options, threads)].reindex(latency.index)
                    speedup = rerun_interval(_per_process(base / latency))
                    net_speedup = rerun_interval(_per_process((base - overhead) / (latency - overhead)))
                    row.update(speedup_vs_baseline=speedup.value, speedup_rerun95_low=speedup.low,
                               speedup_rerun95_high=speedup.high, speedup_p_value=speedup.p_value,
                               net_speedup_vs_baseline=net_speedup.value, net_speedup_rerun95_low=net_speedup.low,
                               net_speedup_rerun95_high=net_speedup.high)
                elif variant == baseline:
                    row.update(speedup_vs_baseline=1.0, net_speedup_vs_baseline=1.0)
                rows.append(row)
    table = pd.DataFrame(rows)
    table["speedup_p_holm"] = holm(table["speedup_p_value"])
    return table


def by_bits(counts: dict[str, int]) -> str:
    """``{"1": 93088, "32": 468}`` as ``1-bit: 93088; 32-bit: 468``."""
    return "; ".join(f"{bits}-bit: {count}" for bits, count in sorted(counts.items(), key=lambda kv: int(kv[0])))


def load_profiles(profiles_dir: str | Path, variants: Sequence[str]) -> pd.DataFrame:
    """Larq's figures per variant; the breakdowns by bit width keep every
    precision Larq reports (2-bit for ternary, k-bit for DoReFa), while the
    binarized fraction counts 1-bit MACs only, as Larq's summary does."""
    rows = []
    for variant in variants:
        profile = read_json(Path(profiles_dir) / profile_folder(variant) / "profile.json",
                            {**PROFILE_FIGURES, "params_by_bitwidth": COUNTS, "macs_by_precision": COUNTS})
        rows.append({"variant": variant, **{k: profile[k] for k in PROFILE_FIGURES},
                     "params_by_bitwidth": by_bits(profile["params_by_bitwidth"]),
                     "macs_by_precision": by_bits(profile["macs_by_precision"])})
    return pd.DataFrame(rows).set_index("variant")


def load_curves(runs_dir: str | Path, study: Runs) -> pd.DataFrame:
    """Per-epoch accuracy and loss of every run, from DVCLive's logs: columns
    dataset, variant, seed, epoch (from 1), split (train/test), accuracy,
    loss."""
    frames = []
    for dataset, variant, seed in study:
        base = Path(runs_dir) / run_name(dataset, variant, seed) / "plots" / "metrics"
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
            frame.insert(0, "dataset", dataset)
            frames.append(frame)
    curves = pd.concat(frames, ignore_index=True)
    curves["epoch"] = curves.pop("step") + 1
    return curves[["dataset", "variant", "seed", "epoch", "split", "accuracy", "loss"]]


def training_table(variants_section: dict[str, Any], recipes_section: dict[str, Any],
                   variants: Sequence[str]) -> pd.DataFrame:
    """Per variant of the study: its recipe, its epochs, and its
    architecture, named after the study's variant of the same network
    trained with the article's recipe (the first such variant when none
    is): variants that differ only in their recipe share an architecture."""
    def network(name: str) -> dict[str, Any]:
        return {key: value for key, value in variants_section[name].items() if key != "recipe"}

    def recipe(name: str) -> str:
        return variants_section[name].get("recipe", DEFAULT_RECIPE)

    rows = []
    for variant in variants:
        twins = [other for other in variants if network(other) == network(variant)]
        named = [other for other in twins if recipe(other) == DEFAULT_RECIPE] or twins
        rows.append({"variant": variant, "recipe": recipe(variant), "architecture": named[0],
                     "epochs": int(recipes_section[recipe(variant)]["epochs"])})
    return pd.DataFrame(rows).set_index("variant")


def runs_table(runs: pd.DataFrame, profiles: pd.DataFrame, deployments: pd.DataFrame,
               training: pd.DataFrame) -> pd.DataFrame:
    return (runs.merge(deployments, on=["dataset", "variant", "seed"], how="left").join(training, on="variant")
            .join(profiles, on="variant"))


HEADLINE_COLUMNS = ("latency_median_us", "latency_rerun95_low", "latency_rerun95_high", "net_latency_median_us",
                    "speedup_vs_baseline", "speedup_rerun95_low", "speedup_rerun95_high", "speedup_p_holm",
                    "net_speedup_vs_baseline", "effective_macs_per_s", "processes")


def summary_table(runs: pd.DataFrame, profiles: pd.DataFrame, baseline: str,
                  latency: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per variant (see the module doc) from the runs table (runs
    with their deployment figures) and the latency table; the headline
    latency is its ``headline`` option set at the first thread count timed.
    Compression, gap and speedup columns are NaN when the baseline is not in
    the study."""
    by_seed = runs.pivot(index="seed", columns="variant", values="test_accuracy")
    rows = []
    for variant, group in runs.groupby("variant", sort=False):
        accuracy = accuracy_interval(group["test_accuracy"], int(group["test_images"].max()))
        row = {
            "variant": variant,
            "recipe": group["recipe"].iloc[0],
            "architecture": group["architecture"].iloc[0],
            "epochs": int(group["epochs"].iloc[0]),
            "seeds": len(group),
            "test_accuracy_mean": accuracy.value,
            "test_accuracy_std": float(group["test_accuracy"].std(ddof=1)) if len(group) > 1 else math.nan,
            "test_accuracy_ci95_low": accuracy.low,
            "test_accuracy_ci95_high": accuracy.high,
            **dict(zip(("test_accuracy_pi95_low", "test_accuracy_pi95_high"),
                       prediction_interval(group["test_accuracy"], int(group["test_images"].max())), strict=True)),
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
            "accuracy_gap_p_value": math.nan,
            "accuracy_gap_p_holm": math.nan,
            "accuracy_gap_seeds_needed": math.nan,
            "train_images_per_s_mean": float(group["train_images_per_s"].mean()),
            "train_time_s_mean": float(group["train_time_s"].mean()),
            "tflite_kib": float(group["tflite_kib"].max()),
            "weights_kib": float(group["weights_bytes"].max()) / 1024,
            "ram_kib": float(group["peak_activation_bytes"].max()) / 1024,
            "binary_mac_fraction_deployed": float(group["binary_mac_fraction_deployed"].min()),
            "operators": group["operators"].iloc[0],
            "converted_accuracy_mean": float(group["converted_accuracy"].mean()),
            "agreement_min": float(group["agreement"].min()),
            "latency_threads": math.nan,
            "latency_options": "",
            **{column: math.nan for column in HEADLINE_COLUMNS},
            "chance_accuracy": float(group["chance_accuracy"].max()),
            "runs_at_chance": int(group["at_chance"].sum()),
        }
        if baseline in profiles.index:
            row["compression_vs_baseline"] = float(profiles.at[baseline, "memory_kib"] / profiles.at[variant, "memory_kib"])
            gap = paired_difference(by_seed[variant], by_seed[baseline])
            row.update(accuracy_gap_vs_baseline=gap.value, accuracy_gap_ci95_low=gap.low,
                       accuracy_gap_ci95_high=gap.high)
            if variant != baseline:
                # what more seeds would buy, asked only where these cannot tell the gap from zero
                needed = seeds_needed(by_seed[variant] - by_seed[baseline]) if not gap.p_value < ALPHA else None
                row.update(accuracy_gap_p_value=gap.p_value,
                           accuracy_gap_seeds_needed=math.nan if needed is None else needed)
        if latency is not None and not latency.empty:
            headline = latency[latency["headline"] & (latency["variant"] == variant)
                               & (latency["threads"] == latency["threads"].iloc[0])]
            if not headline.empty:
                first = headline.iloc[0]
                row.update({column: float(first[column]) for column in HEADLINE_COLUMNS},
                           latency_threads=int(first["threads"]), latency_options=first["options"])
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary["accuracy_gap_p_holm"] = holm(summary["accuracy_gap_p_value"])
    summary["is_baseline"] = summary["variant"] == baseline
    sound = summary["runs_at_chance"] == 0
    for column, size in (("on_pareto_frontier", "memory_kib"), ("on_deployed_pareto_frontier", "tflite_kib")):
        summary[column] = False
        if sound.any():  # a study whose every variant is at chance has no frontier
            summary.loc[sound, column] = pareto_frontier(summary.loc[sound, size],
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
    """For each variant the article published: its figure, ours on the
    article's dataset, and the difference (ours minus article); no rows when
    the study leaves that dataset out."""
    ours_column = {"test_accuracy": "test_accuracy_mean"}
    rows = []
    for _, row in summary[summary["dataset"] == ARTICLE_DATASET].iterrows():
        published = ARTICLE.get(row["variant"])
        if published is None:
            continue
        for figure, article_value in published.items():
            ours = float(row[ours_column.get(figure, figure)])
            rows.append({
                "dataset": ARTICLE_DATASET, "variant": row["variant"], "figure": figure,
                "article": article_value, "ours": ours, "difference": ours - article_value,
            })
    return pd.DataFrame(rows, columns=["dataset", "variant", "figure", "article", "ours", "difference"])


TAX_COLUMNS = ("dataset", "variant", "baseline", "seeds", "baseline_accuracy_mean", "test_accuracy_mean",
               "accuracy_gap_vs_baseline", "accuracy_gap_ci95_low", "accuracy_gap_ci95_high", "accuracy_gap_p_holm",
               "accuracy_gap_seeds_needed", "images", "variant_ahead", "baseline_ahead", "images_p_holm")


def tax_table(summary: pd.DataFrame, paired_images: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The 1-bit tax by dataset, see the module doc: from the summary (the
    seed-paired gap, its interval and Holm-adjusted p-value) and the paired
    images table (the sign test over the same test images, all seeds at
    once, Holm-adjusted over the variants)."""
    rows = []
    for dataset, group in summary.groupby("dataset", sort=False):
        base = group[group["variant"] == baseline]
        if base.empty:
            continue
        tests = of_dataset(paired_images, dataset).set_index("variant")
        for row in group[group["variant"] != baseline].to_dict("records"):
            test = tests.loc[row["variant"]] if row["variant"] in tests.index else None
            rows.append({
                "dataset": dataset, "variant": row["variant"], "baseline": baseline, "seeds": row["seeds"],
                "baseline_accuracy_mean": float(base["test_accuracy_mean"].iloc[0]),
                **{column: row[column] for column in TAX_COLUMNS[5:11]},
                "images": math.nan if test is None else int(test["images"]),
                "variant_ahead": math.nan if test is None else int(test["variant_ahead"]),
                "baseline_ahead": math.nan if test is None else int(test["baseline_ahead"]),
                "images_p_holm": math.nan if test is None else float(test["p_holm"]),
            })
    return pd.DataFrame(rows, columns=TAX_COLUMNS)


TAX_CHANGE_COLUMNS = ("dataset", "variant", "baseline", "reference_dataset", "gap_change", "gap_change_ci95_low",
                      "gap_change_ci95_high", "gap_change_p_value", "gap_change_p_holm", "seeds")


def tax_change_table(runs: pd.DataFrame, datasets: Sequence[str], variants: Sequence[str],
                     baseline: str) -> pd.DataFrame:
    """How a variant's gap to the baseline changes from the study's first
    dataset to each other one: the difference of the two mean seed-paired
    gaps, in accuracy, with Welch's interval (the seeds of two datasets are
    separate runs, not pairs), one row per (later dataset, variant). A
    difference, never a ratio: a ratio of two gaps depends on the scale and
    explodes near a zero gap. The changes of one dataset are one family
    (Holm)."""
    rows = []
    if baseline not in variants or len(datasets) < 2:
        return pd.DataFrame(rows, columns=TAX_CHANGE_COLUMNS)

    def gaps(dataset: str, variant: str) -> pd.Series:
        by_seed = of_dataset(runs, dataset).pivot(index="seed", columns="variant", values="test_accuracy")
        return (by_seed[variant] - by_seed[baseline]).dropna()

    reference = datasets[0]
    for dataset in datasets[1:]:
        family = []
        for variant in variants:
            if variant == baseline:
                continue
            change = welch_difference(gaps(dataset, variant), gaps(reference, variant))
            rows.append({"dataset": dataset, "variant": variant, "baseline": baseline,
                         "reference_dataset": reference, "gap_change": change.value,
                         "gap_change_ci95_low": change.low, "gap_change_ci95_high": change.high,
                         "gap_change_p_value": change.p_value, "gap_change_p_holm": math.nan, "seeds": change.n})
            family.append(len(rows) - 1)
        for i, p_holm in zip(family, holm([rows[i]["gap_change_p_value"] for i in family]), strict=True):
            rows[i]["gap_change_p_holm"] = p_holm
    return pd.DataFrame(rows, columns=TAX_CHANGE_COLUMNS)


RECIPE_COLUMNS = ("variant", "architecture", "recipe", "epochs", "seeds", "test_accuracy_mean",
                  "accuracy_gap_vs_baseline", "accuracy_gap_ci95_low", "accuracy_gap_ci95_high", "train_time_s_mean",
                  "time_vs_article_recipe", "article_recipe_variant", "article_recipe_gap",
                  "article_recipe_gap_ci95_low", "article_recipe_gap_ci95_high", "effect", "effect_ci95_low",
                  "effect_ci95_high", "effect_p_value", "effect_p_holm", "recovered_fraction", "recovered_ci95_low",
                  "recovered_ci95_high", "matched_baseline", "matched_gap", "matched_gap_ci95_low",
                  "matched_gap_ci95_high")


def recipe_table(summary: pd.DataFrame, runs: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The recipe's share of the cost on one dataset: one row per variant
    other than the baseline, with its recipe and epochs, mean accuracy, the
    seed-paired gap to the baseline, mean training time (and as a multiple of
    the same architecture's time under the article's recipe), and:

    - the recipe's effect: its gap minus the gap of the same architecture
      trained with the article's recipe, paired by seed (the baseline's
      accuracy cancels: the seed-paired difference of the two variants),
      Holm-adjusted over the recipe variants of the dataset;
    - the share of that architecture's article-recipe gap the effect
      recovers, only where that gap is a cost whose interval excludes zero,
      with Fieller's interval (the gap in the denominator is as noisy as
      the effect); NaN bounds when it cannot be bounded;
    - the gap under matched recipes: against the baseline's architecture
      trained with the same recipe (the baseline itself for the article's),
      paired by seed, when the study has it."""
    by_seed = runs.pivot(index="seed", columns="variant", values="test_accuracy")
    info = summary.set_index("variant")
    rows = []
    if baseline not in info.index:
        return pd.DataFrame(rows, columns=RECIPE_COLUMNS)
    for name, row in info.iterrows():
        if name == baseline:
            continue
        twins = info[(info["architecture"] == row["architecture"]) & (info["recipe"] == DEFAULT_RECIPE)].index
        matched = info[(info["architecture"] == info.at[baseline, "architecture"])
                       & (info["recipe"] == row["recipe"]) & (info.index != name)].index
        out = {"variant": name, **{column: row[column] for column in RECIPE_COLUMNS[1:10]},
               **{column: math.nan for column in RECIPE_COLUMNS[10:]},
               "article_recipe_variant": twins[0] if len(twins) else "",
               "matched_baseline": matched[0] if len(matched) else ""}
        if len(twins):
            twin = twins[0]
            out["time_vs_article_recipe"] = row["train_time_s_mean"] / info.at[twin, "train_time_s_mean"]
            out.update(article_recipe_gap=info.at[twin, "accuracy_gap_vs_baseline"],
                       article_recipe_gap_ci95_low=info.at[twin, "accuracy_gap_ci95_low"],
                       article_recipe_gap_ci95_high=info.at[twin, "accuracy_gap_ci95_high"])
            if twin != name:
                effect = paired_difference(by_seed[name], by_seed[twin])
                out.update(effect=effect.value, effect_ci95_low=effect.low, effect_ci95_high=effect.high,
                           effect_p_value=effect.p_value)
                if info.at[twin, "accuracy_gap_ci95_high"] < 0:  # a cost the seeds tell from zero
                    share = fieller_ratio(by_seed[name] - by_seed[twin], by_seed[baseline] - by_seed[twin])
                    out.update(recovered_fraction=share.value,
                               recovered_ci95_low=share.low if math.isfinite(share.low) else math.nan,
                               recovered_ci95_high=share.high if math.isfinite(share.high) else math.nan)
        if len(matched):
            gap = paired_difference(by_seed[name], by_seed[matched[0]])
            out.update(matched_gap=gap.value, matched_gap_ci95_low=gap.low, matched_gap_ci95_high=gap.high)
        rows.append(out)
    table = pd.DataFrame(rows, columns=RECIPE_COLUMNS)
    table["effect_p_holm"] = holm(table["effect_p_value"])
    return table


def mean_curves(curves: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per (dataset, variant), named ``<dataset>-<variant>``, the mean across
    seeds per epoch, one column per (split, metric): ``train_accuracy``,
    ``test_accuracy``, ..."""
    means = curves.groupby(["dataset", "variant", "epoch", "split"], sort=False)[["accuracy", "loss"]].mean()
    result = {}
    for (dataset, variant), group in means.reset_index().groupby(["dataset", "variant"], sort=False):
        wide = group.pivot(index="epoch", columns="split", values=["accuracy", "loss"])
        wide.columns = [f"{split}_{metric}" for metric, split in wide.columns]
        result[f"{dataset}-{variant}"] = wide.reset_index()[["epoch", "train_accuracy", "test_accuracy", "train_loss",
                                                             "test_loss"]]
    return result


def dvc_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    """What `dvc metrics show` and `dvc exp show` list, per dataset and
    variant."""
    keep = ("seeds", "test_accuracy_mean", "test_accuracy_ci95_low", "test_accuracy_ci95_high", "memory_kib",
            "compression_vs_baseline", "binarized_mac_fraction", "accuracy_gap_vs_baseline", "tflite_kib",
            "converted_accuracy_mean", "ram_kib", "binary_mac_fraction_deployed", "latency_median_us",
            "speedup_vs_baseline")
    metrics: dict[str, Any] = {}
    for row in summary.to_dict("records"):
        metrics.setdefault(row["dataset"], {})[row["variant"]] = {
            k: (None if isinstance(row[k], float) and math.isnan(row[k]) else row[k]) for k in keep}
    return metrics


def aggregate(params: dict[str, Any], runs_dir: str | Path, profiles_dir: str | Path, deploy_dir: str | Path,
              benchmark_dir: str | Path, tables_dir: str | Path, curves_dir: str | Path,
              metrics_path: str | Path) -> pd.DataFrame:
    datasets, variants, baseline = study_datasets(params), study_variants(params), checked_baseline(params)
    study = study_runs(params)
    headline = headline_options(params)
    profiles = load_profiles(profiles_dir, variants)
    training = training_table(params["variants"], params["recipes"], variants)
    runs = runs_table(load_runs(runs_dir, study), profiles, load_deployments(deploy_dir, study), training)
    timings, info = load_timings(benchmark_dir)
    if "dataset" not in timings:
        raise StudyError(f"{benchmark_dir} predates datasets in the study: run `dvc repro --force benchmark`")
    timed = set(zip(timings["dataset"], timings["variant"], strict=True))
    untimed = [f"{dataset} {variant}" for dataset, variant, _ in study if (dataset, variant) not in timed]
    if untimed:
        raise StudyError(f"{benchmark_dir} has no timings of {', '.join(dict.fromkeys(untimed))}: "
                         "run `dvc repro benchmark`")
    macs = {variant: int(profiles.at[variant, "macs_total"]) for variant in variants}

    def dataset_timings(dataset: str) -> pd.DataFrame:
        return timings[(timings["dataset"] == dataset) | (timings["variant"] == OVERHEAD)]

    latency = per_dataset(datasets, lambda dataset: latency_table(dataset_timings(dataset), variants, baseline, macs,
                                                                  headline))
    latency["cpu"] = info["cpu"]
    latency["cpu_cores"] = info.get("cpu_cores")
    latency["cpu_popcount"] = ", ".join(info["cpu_popcount"]) or "none reported"
    latency["lce_kernels"] = info["lce_kernels"]
    curves = load_curves(runs_dir, study)
    predictions = load_predictions(runs_dir, study)

    summary = per_dataset(datasets, lambda dataset: summary_table(of_dataset(runs, dataset), profiles, baseline,
                                                                  of_dataset(latency, dataset)))
    paired_images = per_dataset(datasets, lambda dataset: paired_images_table(of_dataset(predictions, dataset),
                                                                              variants, baseline))
    per_class = per_dataset(datasets, lambda dataset: per_class_table(
        of_dataset(predictions, dataset), variants, baseline, registered_dataset(dataset).class_names))
    confusion = per_dataset(datasets, lambda dataset: confusion_table(of_dataset(predictions, dataset), variants))
    recipes = per_dataset(datasets, lambda dataset: recipe_table(of_dataset(summary, dataset),
                                                                 of_dataset(runs, dataset), baseline))
    write_tables({"runs": runs, "summary": summary, "latency": latency, "per_class": per_class,
                  "confusion": confusion, "paired_images": paired_images, "tax": tax_table(summary, paired_images, baseline),
                  "tax_change": tax_change_table(runs, datasets, variants, baseline),
                  "recipes": recipes,
                  "article": article_table(summary), "curves": curves}, tables_dir)
    with atomic_directory(curves_dir) as tmp:
        for name, frame in mean_curves(curves).items():
            frame.to_csv(tmp / f"{name}.csv", index=False)
    write_json_atomic(metrics_path, dvc_metrics(summary))
    for row in summary.to_dict("records"):
        log.info("%s %s: %d seeds, test accuracy %.2f%% (95%% CI %.2f-%.2f%%), %.2f KiB; deployed %.2f KiB flash, "
                 "%.2f KiB RAM, %.1f µs", row["dataset"], row["variant"], row["seeds"],
                 100 * row["test_accuracy_mean"],
                 100 * row["test_accuracy_ci95_low"], 100 * row["test_accuracy_ci95_high"], row["memory_kib"],
                 row["tflite_kib"], row["ram_kib"], row["latency_median_us"])
        if row["runs_at_chance"]:
            log.info("%s %s: %d of %d runs at chance level (%.2f%% by always answering the most frequent class)",
                     row["dataset"], row["variant"], row["runs_at_chance"], row["seeds"], 100 * row["chance_accuracy"])
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.aggregate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="data/spec/aggregate.json", help="the slice of params.yaml it reads")
    parser.add_argument("--runs", default="reports/runs", help="DVCLive folders of the training runs")
    parser.add_argument("--profiles", default="reports/profiles")
    parser.add_argument("--deployments", default="reports/deploy", help="deploy.json of every converted run")
    parser.add_argument("--benchmark", default="reports/benchmark", help="the benchmark's timings")
    parser.add_argument("--tables-out", default="reports/tables")
    parser.add_argument("--curves-out", default="reports/curves")
    parser.add_argument("--metrics-out", default="reports/metrics.json")
    args = parser.parse_args(argv)
    aggregate(load_params(args.params), args.runs, args.profiles, args.deployments, args.benchmark, args.tables_out,
              args.curves_out, args.metrics_out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
