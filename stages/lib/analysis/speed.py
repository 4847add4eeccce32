"""How fast the deployed models run: latency and the paired speedup
against the baseline per benchmark process, with the 95% interval across
the processes of one run of the benchmark (process-to-process noise; another
run of the stage, later on a shared host, can move more) and Holm over the
speed verdicts, always named with the CPU they were measured on; and their
sentences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from stages.lib.common import StudyError
from stages.lib.params import OPTION_SETS
from stages.lib.analysis.stats import ALPHA, Estimate, direction, holm, rerun_interval
from stages.lib.analysis.tables import MAPPING, TEXT, read_json
from stages.lib.forms.registry import overhead_of
from stages.lib.forms.runtime import OVERHEAD_MODELS, RUNTIMES
from stages.lib.wording import cell, holm_clause, interval, p_cell, times, title, with_interval


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
    same round, options and threads, timed through the variant's own runtime
    (:func:`stages.lib.forms.registry.overhead_of`); the speedup is the baseline's latency
    over the variant's in the same round. Each process contributes the
    median of its rounds; latencies and speedups are geometric means across
    processes with the 95% interval across them: where another set of as
    many processes in the same run would land
    (:func:`stages.lib.analysis.stats.rerun_interval`, on the log scale, so
    that no interval reaches below zero); separate runs of the stage on one
    host have moved by more, which is why the report names it "within one
    benchmark run". The speed verdicts of one dataset are one family: the
    speedups' p-values (that the ratio is 1) are Holm-adjusted together."""
    per_round = timings.groupby(["variant", "options", "threads", "process", "round"])["latency_us"].mean()
    combos = per_round.index.droplevel(["process", "round"])
    rows = []
    overheads = [name for name in OVERHEAD_MODELS if name in combos.get_level_values("variant")]
    for variant in [*variants, *overheads]:
        for options in OPTION_SETS:
            for threads in sorted(timings["threads"].unique()):
                key = (variant, options, threads)
                if key not in combos:
                    continue
                latency = per_round.loc[key]
                own = variant if variant in overheads else overhead_of(variant)
                overhead = per_round.loc[(own, options, threads)].reindex(latency.index)
                figure = rerun_interval(_per_process(latency))
                # the overhead model's own figures minus themselves would read as a free model
                net = (rerun_interval(_per_process(latency - overhead)) if variant not in overheads else
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
                if variant not in (*overheads, baseline) and (baseline, options, threads) in combos:
                    base = per_round.loc[(baseline, options, threads)].reindex(latency.index)
                    base_overhead = per_round.loc[(overhead_of(baseline), options, threads)].reindex(latency.index)
                    speedup = rerun_interval(_per_process(base / latency))
                    net_speedup = rerun_interval(_per_process((base - base_overhead) / (latency - overhead)))
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


def threads_label(threads: int) -> str:
    return f"{threads} thread" + ("" if threads == 1 else "s")


def readable_latency(latency: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The headline option set at every thread count, overhead model
    included; the baseline's speedups say "baseline"."""
    rows = latency[latency["headline"]]
    is_base = rows["variant"] == baseline

    def speedups(values, lows, highs):
        return ["baseline" if base else with_interval(v, lo, hi, times)
                for base, v, lo, hi in zip(is_base, values, lows, highs, strict=True)]

    return pd.DataFrame({
        "variant": rows["variant"],
        "threads": rows["threads"],
        "latency (95% interval within the run) µs": [with_interval(v, lo, hi, "{:.1f}".format) for v, lo, hi in
                                zip(rows["latency_median_us"], rows["latency_rerun95_low"], rows["latency_rerun95_high"],
                                    strict=True)],
        "minus overhead (µs)": [with_interval(v, lo, hi, "{:.1f}".format) for v, lo, hi in
                                zip(rows["net_latency_median_us"], rows["net_latency_rerun95_low"],
                                    rows["net_latency_rerun95_high"], strict=True)],
        "speedup, paired by round": speedups(rows["speedup_vs_baseline"], rows["speedup_rerun95_low"],
                                             rows["speedup_rerun95_high"]),
        "p (Holm)": rows["speedup_p_holm"].map(p_cell),
        "speedup minus overhead": speedups(rows["net_speedup_vs_baseline"], rows["net_speedup_rerun95_low"],
                                           rows["net_speedup_rerun95_high"]),
        "effective GMAC/s": rows["effective_macs_per_s"].map(lambda v: "n/a" if pd.isna(v) else f"{v / 1e9:.1f}"),
    })


def latency_by_options(latency: pd.DataFrame) -> pd.DataFrame:
    """Median latency of every (variant, threads) under each option set."""
    table = latency.pivot_table(index=["variant", "threads"], columns="options", values="latency_median_us",
                                sort=False)
    return table.map(lambda v: "not timed" if pd.isna(v) else f"{v:.1f}").reset_index()


def speed_word(row: dict) -> str:
    """faster or slower (in this benchmark run: the interval holds the
    noise between its processes, not between runs of the stage, which have
    moved ratios by more) only when the printed interval lies wholly on one
    side of 1.00x and the Holm-adjusted test agrees."""
    side = direction(row["speedup_rerun95_low"], row["speedup_rerun95_high"], "{:.2f}", reference=1.0)
    p_holm = row.get("speedup_p_holm", math.nan)
    if side and (pd.isna(p_holm) or p_holm < ALPHA):
        return f"{'faster' if side > 0 else 'slower'} in this benchmark run"
    return "not told apart"


def _speed(row: dict, family: int) -> str:
    """A paired speedup with its interval and what it means: faster or
    slower only when the printed interval lies wholly on one side of 1.00x
    and the Holm-adjusted test over the ``family`` of speed verdicts
    agrees."""
    speed, low, high = row["speedup_vs_baseline"], row["speedup_rerun95_low"], row["speedup_rerun95_high"]
    p_holm = row.get("speedup_p_holm", math.nan)
    verdict = speed_word(row)
    if verdict == "not told apart":
        verdict = ("not told apart from the baseline's speed once adjusted for the family of speed verdicts"
                   if direction(low, high, "{:.2f}", reference=1.0) else "not told apart from the baseline's speed")
    processes = row.get("processes")
    shown = interval(low, high, times, None if pd.isna(processes) else int(processes), "processes",
                     label="95% interval within this benchmark run:")
    adjusted = holm_clause(p_holm, family, "speed verdicts")
    return (f"{times(speed)} the baseline's speed, paired by round ({shown}"
            + (f"; {adjusted}" if adjusted and family > 1 else "") + f"), {verdict}")


def speed_sentence(row: dict, base: dict, baseline: str, other_threads: pd.DataFrame | None = None,
                   family: int = 1, cpu: str = "this machine's CPU") -> str:
    """How fast one variant runs against the baseline at the headline
    option set, at every thread count timed, on ``cpu``; ``other_threads``:
    its headline rows of the latency table beyond the first thread count,
    with the baseline's latency beside (``baseline_latency_us``);
    ``family``: how many speed verdicts the Holm adjustment covers."""
    sentence = (f"`{row['variant']}` on {cpu}: one image takes {row['latency_median_us']:.1f} µs against "
                f"`{baseline}`'s {base['latency_median_us']:.1f} µs ({threads_label(int(row['latency_threads']))}, "
                f"options {row['latency_options']}): {_speed(row, family)}")
    for other in (other_threads if other_threads is not None else pd.DataFrame()).to_dict("records"):
        sentence += (f"; at {threads_label(int(other['threads']))}, {other['latency_median_us']:.1f} µs against "
                     f"{other['baseline_latency_us']:.1f} µs: {_speed(other, family)}")
    return sentence + "."


def _other_threads(latency: pd.DataFrame | None, variant: str, baseline: str, first: float) -> pd.DataFrame | None:
    if latency is None or pd.isna(first):
        return None
    headline = latency[latency["headline"]]
    base = headline[headline["variant"] == baseline].set_index("threads")["latency_median_us"]
    rows = headline[(headline["variant"] == variant) & (headline["threads"] != first)]
    return rows.assign(baseline_latency_us=rows["threads"].map(base))


def speed_findings(summary: pd.DataFrame, baseline: str, latency: pd.DataFrame | None = None) -> list[str]:
    rows = {row["variant"]: row for row in summary.to_dict("records")}
    base = rows.get(baseline)
    if base is None:
        return []
    family = int(latency["speedup_p_value"].notna().sum()) if latency is not None else 1
    cpu = latency["cpu"].iloc[0] if latency is not None and not latency.empty else "this machine's CPU"
    return [speed_sentence(row, base, baseline, _other_threads(latency, name, baseline, row["latency_threads"]),
                           family, cpu)
            for name, row in rows.items() if name != baseline and not pd.isna(row["speedup_vs_baseline"])]


def describe_cpu(latency: pd.DataFrame) -> str:
    """The CPU the benchmark ran on, with its popcount instructions and the
    LCE kernels it ran: ``AMD EPYC (popcount: scalar POPCNT, ...; LCE:
    portable reference kernels, ...)``."""
    first = latency.iloc[0]
    return f"{first['cpu']} (popcount: {first['cpu_popcount']}; LCE: {first['lce_kernels']})"


def benchmark_context(latency: pd.DataFrame) -> dict:
    """The benchmark's machine, settings and overhead, for the method
    paragraph: the overhead once per thread count (every dataset's rows
    carry the same overhead model), through LCE's binding and, when a form
    runs on it, LiteRT's."""
    headline = latency[latency["headline"]]

    def overhead(name: str) -> str:
        rows = headline[headline["variant"] == name].drop_duplicates("threads")
        return ", ".join(f"{row['latency_median_us']:.1f} µs at {threads_label(int(row['threads']))}"
                         for row in rows.to_dict("records"))

    lce, *others = RUNTIMES.values()
    thread_counts = sorted(int(t) for t in latency["threads"].unique())
    cores = latency["cpu_cores"].iloc[0] if "cpu_cores" in latency else math.nan
    all_cores = [t for t in thread_counts if not pd.isna(cores) and t >= cores]
    return {
        "cpu": describe_cpu(latency),
        "cpu_name": latency["cpu"].iloc[0],
        "threads": ", ".join(threads_label(t) for t in thread_counts),
        "processes": int(latency["processes"].max()),
        "rounds": int(latency["rounds"].max()),
        "options": headline["options"].iloc[0] if not headline.empty else "n/a",
        "overhead": "; ".join([overhead(lce.overhead), *(f"through {runtime.title}'s, {figures}" for runtime in others
                                                         if (figures := overhead(runtime.overhead)))]),
        "all_cores": ", ".join(threads_label(t) for t in all_cores),
        "cores": None if pd.isna(cores) else int(cores),
        # Holm runs per dataset (see latency_table): the largest family is the one to name
        "family": int(latency.groupby("dataset")["speedup_p_value"].count().max()),
    }


def readable_speeds(latency: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per variant, its paired speedup against the baseline with the 95%
    interval within the benchmark run, under the headline option set, one
    column per (dataset, threads)."""
    rows = latency[latency["headline"] & ~latency["variant"].isin(OVERHEAD_MODELS)]
    several = rows["dataset"].nunique() > 1
    table = pd.DataFrame({"variant": list(dict.fromkeys(rows["variant"]))})
    for (dataset, threads), group in rows.groupby(["dataset", "threads"], sort=False):
        cells = group.set_index("variant").reindex(table["variant"])
        label = (f"{title(dataset)}, " if several else "") + threads_label(int(threads))
        table[label] = ["baseline" if variant == baseline else
                        cell(v, lo, hi, times) if not pd.isna(v) else "not timed"
                        for variant, v, lo, hi in zip(table["variant"], cells["speedup_vs_baseline"],
                                                      cells["speedup_rerun95_low"], cells["speedup_rerun95_high"],
                                                      strict=True)]
    return table


def speed_summary(latency: pd.DataFrame, baseline: str) -> str:
    """Which variants are faster or slower than the baseline at each thread
    count (headline option set, the verdict rule of :func:`speed_word`)."""
    rows = latency[latency["headline"] & ~latency["variant"].isin([*OVERHEAD_MODELS, baseline])
                   & latency["speedup_vs_baseline"].notna()]
    if rows.empty:
        return ""
    dataset = rows["dataset"].iloc[0]
    rows = rows[rows["dataset"] == dataset]
    parts = []
    for threads, group in rows.groupby("threads", sort=True):
        words = {}
        for row in group.to_dict("records"):
            words.setdefault(speed_word(row), []).append(f"`{row['variant']}`")
        parts.append(f"at {threads_label(int(threads))}, " + "; ".join(
            f"{word}: {', '.join(names)}" for word, names in words.items()))
    return f"Against the baseline, {title(dataset)}'s models " + "; ".join(parts) + "."
