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
  within each round) are geometric means across processes with their 95%
  interval within this run of the benchmark (a prediction interval on the
  log scale for another as many processes of the same run); the same minus the binding's overhead
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
- ``curves``: per-epoch accuracy and loss of every run (long form);
  ``mean_curves``: per (dataset, variant, epoch) the mean across seeds, what
  the ``plots:`` of ``dvc.yaml`` draw (one file, so that ``dvc plots show``
  follows the study's datasets and variants).
- ``robustness``, ``robustness_gap``, ``mce`` and ``corruption_examples``:
  accuracy under each corruption, the robustness gap against the baseline,
  the mean corruption error, and what each corruption does to one image
  (see :mod:`stages.lib.analysis.robustness_tables`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from stages.lib.analysis.accuracy import summary_table, tax_change_table
from stages.lib.analysis.judged import judge_tables
from stages.lib.analysis.article import article_table
from stages.lib.analysis.classes import confusion_table, load_predictions, paired_images_table, per_class_table
from stages.lib.common import (
    StudyError, load_params, log, run_cli, write_json_atomic,
)
from stages.lib.layout import PROFILES, RUNS, output
from stages.lib.names import run_name
from stages.lib.data.datasets import dataset as registered_dataset
from stages.lib.analysis.deployment import load_deployments
from stages.lib.forms.runtime import OVERHEAD_MODELS
from stages.lib.forms.registry import (
    BY_NAME, form_of, is_post_training, post_training_networks, post_training_runs, source_variant,
)
from stages.lib.analysis import post_training
from stages.lib.analysis.int8_tables import comparison_table
from stages.lib.settings.aggregate import baseline as checked_baseline
from stages.lib.settings.aggregate import primary as checked_primary
from stages.lib.settings.aggregate import margins, twin_names
from stages.lib.params import headline_options, study_datasets, study_runs, study_variants
from stages.lib.analysis.recipe_effects import recipe_table, training_table
from stages.lib.analysis.robustness_tables import accuracy_table as robustness_table
from stages.lib.analysis.robustness_tables import examples_table, gap_table, load_evaluations, mce_table
from stages.lib.analysis.speed import latency_table, load_timings
from stages.lib.analysis.stats import at_chance
from stages.lib.analysis.tables import (
    ARTICLE_ONE_BIT, COUNT, COUNTS, FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_COUNT, Runs, of_dataset,
    per_dataset, read_json, write_tables,
)


# What each per-run file must hold, field by field.
RUN_METRICS = {
    "validation_accuracy": FRACTION, "test_accuracy": FRACTION, "test_loss": NON_NEGATIVE, "chance_accuracy": FRACTION, "train_time_s": POSITIVE,
    "train_images_per_s": POSITIVE, "train_images": POSITIVE_COUNT, "validation_images": POSITIVE_COUNT,
    "test_images": POSITIVE_COUNT,
}
PROFILE_FIGURES = {
    "params_total": POSITIVE_COUNT, "params_1bit": COUNT, "params_32bit": COUNT, "memory_kib": POSITIVE,
    "fp32_equivalent_kib": POSITIVE, "macs_total": POSITIVE_COUNT, "macs_1bit": COUNT, "macs_32bit": COUNT,
    "binarized_mac_fraction": FRACTION,
}




def load_runs(runs_dir: str | Path, study: Runs) -> pd.DataFrame:
    rows = []
    for dataset, variant, seed in study:
        metrics = read_json(output(runs_dir, run_name(dataset, variant, seed), RUNS) / "metrics.json", RUN_METRICS)
        rows.append({"dataset": dataset, "variant": variant, "seed": seed, **{k: metrics[k] for k in RUN_METRICS}})
    runs = pd.DataFrame(rows)
    runs["at_chance"] = [at_chance(acc, chance, n) for acc, chance, n in
                         zip(runs["test_accuracy"], runs["chance_accuracy"], runs["test_images"], strict=True)]
    return runs


def by_bits(counts: dict[str, int]) -> str:
    """``{"1": 93088, "32": 468}`` as ``1-bit: 93088; 32-bit: 468``."""
    return "; ".join(f"{bits}-bit: {count}" for bits, count in sorted(counts.items(), key=lambda kv: int(kv[0])))


def load_profiles(profiles_dir: str | Path, variants: Sequence[str]) -> pd.DataFrame:
    """Larq's figures per variant; the breakdowns by bit width keep every
    precision Larq reports (2-bit for ternary, k-bit for DoReFa), while the
    binarized fraction counts 1-bit MACs only, as Larq's summary does."""
    rows = []
    for variant in variants:
        profile = read_json(output(profiles_dir, variant, PROFILES) / "profile.json",
                            {**PROFILE_FIGURES, "params_by_bitwidth": COUNTS, "macs_by_precision": COUNTS})
        rows.append({"variant": variant, **{k: profile[k] for k in PROFILE_FIGURES},
                     "params_by_bitwidth": by_bits(profile["params_by_bitwidth"]),
                     "macs_by_precision": by_bits(profile["macs_by_precision"])})
    return pd.DataFrame(rows).set_index("variant")


def load_curves(runs_dir: str | Path, study: Runs) -> pd.DataFrame:
    """Per-epoch accuracy and loss of every run, from DVCLive's logs: columns
    dataset, variant, seed, epoch (from 1), split (train/validation),
    accuracy, loss. A missing, empty or damaged curve file is one line
    naming it."""
    frames = []
    for dataset, variant, seed in study:
        base = output(runs_dir, run_name(dataset, variant, seed), RUNS) / "plots" / "metrics"
        for split, folder in (("train", "train"), ("validation", "eval")):
            columns = {}
            for metric in ("accuracy", "loss"):
                path = base / folder / f"{metric}.tsv"
                redo = f"rerun its training (`dvc repro --force train@{run_name(dataset, variant, seed)}`)"
                try:
                    read = pd.read_csv(path, sep="\t")[["step", metric]]
                except FileNotFoundError:
                    raise StudyError(f"{path} is missing: run `dvc repro` to produce it") from None
                except (pd.errors.ParserError, pd.errors.EmptyDataError, KeyError, UnicodeDecodeError, ValueError):
                    raise StudyError(f"{path} is damaged (no step and {metric} columns): {redo}") from None
                values = pd.to_numeric(read[metric], errors="coerce")
                steps = pd.to_numeric(read["step"], errors="coerce")
                if read.empty or values.isna().any() or steps.isna().any() or steps.duplicated().any():
                    raise StudyError(f"{path} is damaged (empty, or a step or {metric} that is not a number): {redo}")
                columns[metric] = pd.Series(values.to_numpy(), index=steps.astype(int).to_numpy())
            frame = pd.DataFrame(columns).rename_axis("step").reset_index()
            frame.insert(0, "split", split)
            frame.insert(0, "seed", seed)
            frame.insert(0, "variant", variant)
            frame.insert(0, "dataset", dataset)
            frames.append(frame)
    curves = pd.concat(frames, ignore_index=True)
    curves["epoch"] = curves.pop("step") + 1
    return curves[["dataset", "variant", "seed", "epoch", "split", "accuracy", "loss"]]


def runs_table(runs: pd.DataFrame, profiles: pd.DataFrame, deployments: pd.DataFrame,
               training: pd.DataFrame) -> pd.DataFrame:
    return (runs.merge(deployments, on=["dataset", "variant", "seed"], how="left").join(training, on="variant")
            .join(profiles, on="variant"))


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """The mean across seeds per (dataset, variant, epoch), one column per
    (split, metric): ``train_accuracy``, ``validation_accuracy``, ...; rows in
    the study's order."""
    means = curves.groupby(["dataset", "variant", "epoch", "split"], sort=False)[["accuracy", "loss"]].mean()
    wide = means.unstack("split").reindex(means.index.droplevel("split").unique())  # unstack sorts
    wide.columns = [f"{split}_{metric}" for metric, split in wide.columns]
    return wide.reset_index()[["dataset", "variant", "epoch", "train_accuracy", "validation_accuracy",
                               "train_loss", "validation_loss"]]


def dvc_metrics(summary: pd.DataFrame, mce: pd.DataFrame | None = None,
                same_flash: pd.DataFrame | None = None) -> dict[str, Any]:
    """What `dvc metrics show` and `dvc exp show` list, per dataset and
    variant (with the gap's verdict interval, adjusted p and the seeds it
    would need); with the mean corruption error of each variant but the
    baseline and its interval when ``mce`` is given; and per dataset, under
    ``same_flash``, each same-flash comparison by 1-bit network and twin
    form (``same_flash.bnn.int8``: the network, its twin of equal flash in
    that form, the difference with the interval its verdict is read from,
    its margin and the seeds the margin needs)."""
    keep = ("seeds", "test_accuracy_mean", "test_accuracy_ci95_low", "test_accuracy_ci95_high", "memory_kib",
            "compression_vs_baseline", "binarized_mac_fraction", "accuracy_gap_vs_baseline", "tflite_kib",
            "converted_accuracy_mean", "ram_kib", "binary_mac_fraction_deployed", "latency_median_us",
            "speedup_vs_baseline", "accuracy_gap_adj_low", "accuracy_gap_adj_high", "accuracy_gap_p_adjusted",
            "accuracy_gap_verdict", "accuracy_gap_detectable", "accuracy_gap_tost_p_adjusted",
            "accuracy_gap_seeds_for_margin")
    metrics: dict[str, Any] = {}
    for row in summary.to_dict("records"):
        metrics.setdefault(row["dataset"], {})[row["variant"]] = {
            k: (None if isinstance(row.get(k), float) and math.isnan(row[k]) else row.get(k)) for k in keep}
    for row in ([] if mce is None else mce.to_dict("records")):
        metrics[row["dataset"]][row["variant"]].update(
            {k: None if math.isnan(row[k]) else row[k] for k in ("mce", "mce_adj_low", "mce_adj_high")})
    flash_keys = ("one_bit_kib", "twin", "twin_kib", "difference", "same_flash_adj_low", "same_flash_adj_high",
                  "same_flash_p_adjusted", "same_flash_verdict", "same_flash_detectable", "same_flash_margin",
                  "same_flash_tost_p_adjusted", "same_flash_seeds_for_margin")
    for row in ([] if same_flash is None else same_flash.to_dict("records")):
        form = form_of(row["twin"]).name
        metrics[row["dataset"]].setdefault("same_flash", {}).setdefault(row["one_bit"], {})[form] = {
            k: None if not isinstance(row[k], str) and pd.isna(row[k]) else row[k] for k in flash_keys}
    return metrics


def aggregate(params: dict[str, Any], runs_dir: str | Path, profiles_dir: str | Path, deploy_dir: str | Path,
              benchmark_dir: str | Path, tables_dir: str | Path, metrics_path: str | Path, robustness_dir: str | Path = "reports/robustness",
              corrupted_dir: str | Path = "data/corrupted") -> pd.DataFrame:
    datasets, variants, baseline = study_datasets(params), study_variants(params), checked_baseline(params)
    study = study_runs(params)
    headline = headline_options(params)
    # the post-training forms (stages.lib.analysis.post_training): deployed networks of their own, trained as
    # their sources
    formed_study = post_training_runs(params, study)
    forms = post_training_networks(params)
    deployed = [*variants, *forms]
    profiles = load_profiles(profiles_dir, variants)
    training = training_table(params["variants"], params["recipes"], variants)
    trained = load_runs(runs_dir, study)
    all_profiles = pd.concat([profiles, post_training.profiles(profiles, forms)])
    runs = runs_table(
        pd.concat([trained, post_training.load_runs(deploy_dir, formed_study, trained, headline)],
                  ignore_index=True),
        all_profiles,
        load_deployments(deploy_dir, [*study, *formed_study]),   # a form's folder is named as a run's
        pd.concat([training, post_training.training(training, forms)]))
    timings, info = load_timings(benchmark_dir)
    if "dataset" not in timings:
        raise StudyError(f"{benchmark_dir} predates datasets in the study: run `dvc repro --force benchmark`")
    timed = set(zip(timings["dataset"], timings["variant"], strict=True))
    untimed = [f"{dataset} {variant}" for dataset, variant, _ in [*study, *formed_study]
               if (dataset, variant) not in timed]
    if untimed:
        raise StudyError(f"{benchmark_dir} has no timings of {', '.join(dict.fromkeys(untimed))}: "
                         "run `dvc repro benchmark`")
    macs = {variant: int(profiles.at[variant, "macs_total"]) for variant in variants}
    macs.update({name: macs[source_variant(name)] for name in forms})

    def dataset_timings(dataset: str) -> pd.DataFrame:
        return timings[(timings["dataset"] == dataset) | timings["variant"].isin(OVERHEAD_MODELS)]

    latency = per_dataset(datasets, lambda dataset: latency_table(dataset_timings(dataset), deployed, baseline, macs,
                                                                  headline))
    latency["cpu"] = info["cpu"]
    latency["cpu_cores"] = info.get("cpu_cores")
    latency["cpu_popcount"] = ", ".join(info["cpu_popcount"]) or "none reported"
    latency["lce_kernels"] = info["lce_kernels"]
    curves = load_curves(runs_dir, study)
    predictions = load_predictions(runs_dir, study)

    summary = per_dataset(datasets, lambda dataset: summary_table(of_dataset(runs, dataset), all_profiles, baseline,
                                                                  of_dataset(latency, dataset)))
    paired_images = per_dataset(datasets, lambda dataset: paired_images_table(of_dataset(predictions, dataset),
                                                                              variants, baseline))
    per_class = per_dataset(datasets, lambda dataset: per_class_table(
        of_dataset(predictions, dataset), variants, baseline, registered_dataset(dataset).class_names))
    confusion = per_dataset(datasets, lambda dataset: confusion_table(of_dataset(predictions, dataset), variants, baseline))
    # recipes are about training: the trained variants only
    recipes = per_dataset(datasets, lambda dataset: recipe_table(
        of_dataset(summary[~summary["variant"].map(is_post_training)], dataset),
        of_dataset(runs[~runs["variant"].map(is_post_training)], dataset), baseline))
    one_bit = ARTICLE_ONE_BIT if ARTICLE_ONE_BIT in variants else None
    int8_form = BY_NAME["int8"]   # the comparison a practitioner asks for: the 1-bit network against int8
    int8_forms = [name for name in forms if form_of(name) is int8_form]
    reference = int8_form.network(baseline) if int8_form.network(baseline) in forms else \
        (int8_forms[0] if int8_forms else None)
    int8 = per_dataset(datasets, lambda dataset: comparison_table(
        of_dataset(summary, dataset), of_dataset(runs, dataset), dataset_timings(dataset), one_bit or "", reference or "",
        headline, info["cpu"]))
    evaluations = load_evaluations(robustness_dir, [*study, *formed_study])
    robustness = {
        "robustness": per_dataset(datasets, lambda dataset: robustness_table(of_dataset(evaluations, dataset), deployed)),
        "robustness_gap": per_dataset(datasets, lambda dataset: gap_table(of_dataset(evaluations, dataset), deployed,
                                                                          baseline)),
        "mce": per_dataset(datasets, lambda dataset: mce_table(of_dataset(evaluations, dataset), deployed, baseline)),
        "corruption_examples": examples_table(corrupted_dir, datasets),
    }
    tables = judge_tables({"runs": runs, "summary": summary, "latency": latency, "per_class": per_class,
                           "confusion": confusion, "paired_images": paired_images,
                           "tax_change": tax_change_table(runs, datasets, deployed, baseline),
                           "recipes": recipes, "int8": int8, **robustness}, baseline, checked_primary(params),
                          twin_names(params), margins(params, required=False))
    summary = tables["summary"]
    write_tables({**tables, "article": article_table(summary), "curves": curves, "mean_curves": mean_curves(curves)},
                 tables_dir)
    write_json_atomic(metrics_path, dvc_metrics(summary, tables["mce"], tables["same_flash"]))
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
    parser.add_argument("--robustness", default="reports/robustness", help="every run's evaluation on corrupted images")
    parser.add_argument("--corrupted", default="data/corrupted", help="the corrupted test images, per dataset")
    parser.add_argument("--tables-out", default="reports/tables")
    parser.add_argument("--metrics-out", default="reports/metrics.json")
    args = parser.parse_args(argv)
    aggregate(load_params(args.params), args.runs, args.profiles, args.deployments, args.benchmark, args.tables_out,
              args.metrics_out, args.robustness, args.corrupted)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
