"""The comparison a practitioner asks for: the 1-bit network against the
int8 post-training quantized form of its baseline (``fp32+int8``), on flash,
RAM, accuracy and speed. How an int8 form joins the other tables, as one
more deployed network, is :mod:`stages.lib.analysis.post_training`'s.
"""

from __future__ import annotations

import pandas as pd

from stages.lib.analysis.speed import latency_table, threads_label
from stages.lib.analysis.stats import ALPHA, direction, holm, paired_difference
from stages.lib.wording import cell, interval, pct, points, times, with_interval
from stages.lib.analysis.verdicts import gap_direction


COMPARISON_COLUMNS = (
    "one_bit", "int8", "cpu", "threads", "options",
    "one_bit_tflite_kib", "int8_tflite_kib", "flash_ratio", "one_bit_ram_kib", "int8_ram_kib", "ram_ratio",
    "one_bit_accuracy_mean", "one_bit_accuracy_ci95_low", "one_bit_accuracy_ci95_high",
    "int8_accuracy_mean", "int8_accuracy_ci95_low", "int8_accuracy_ci95_high",
    "int8_minus_one_bit", "int8_minus_one_bit_ci95_low", "int8_minus_one_bit_ci95_high",
    "int8_minus_one_bit_p_value", "seeds", "one_bit_agreement_min", "int8_agreement_min",
    "one_bit_latency_us", "int8_latency_us", "int8_speedup_vs_one_bit", "int8_speedup_rerun95_low",
    "int8_speedup_rerun95_high", "int8_speedup_p_value", "int8_speedup_p_holm",
)


def comparison_table(summary: pd.DataFrame, runs: pd.DataFrame, timings: pd.DataFrame, one_bit: str, int8: str,
                     headline: str, cpu: str) -> pd.DataFrame:
    """On one dataset, the 1-bit variant ``one_bit`` against the int8 form
    ``int8``, one row per thread count timed: flash and RAM (exact; the
    ratio is the 1-bit's over the int8's, above 1 where int8 is smaller),
    mean test accuracy of each with its interval and their difference paired
    by seed, the worst agreement with Keras, and the latency of each under
    ``headline`` with int8's speedup over the 1-bit network, paired within
    rounds, with the 95% interval within the benchmark run on this machine
    (``cpu``). Empty when the study lacks either."""
    rows = summary.set_index("variant")
    if one_bit not in rows.index or int8 not in rows.index:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    a, b = rows.loc[one_bit], rows.loc[int8]
    by_seed = runs.pivot(index="seed", columns="variant", values="test_accuracy")
    gap = paired_difference(by_seed[int8], by_seed[one_bit])
    speed = latency_table(timings, [int8, one_bit], int8, {}, headline)
    speed = speed[speed["headline"]].set_index(["variant", "threads"])
    out = []
    for threads in sorted({threads for variant, threads in speed.index if variant == one_bit}):
        row, int8_latency = speed.loc[(one_bit, threads)], speed.at[(int8, threads), "latency_median_us"]
        out.append({
            "one_bit": one_bit, "int8": int8, "cpu": cpu, "threads": int(threads), "options": headline,
            "one_bit_tflite_kib": a["tflite_kib"], "int8_tflite_kib": b["tflite_kib"],
            "flash_ratio": b["tflite_kib"] / a["tflite_kib"], "one_bit_ram_kib": a["ram_kib"],
            "int8_ram_kib": b["ram_kib"], "ram_ratio": a["ram_kib"] / b["ram_kib"],
            "one_bit_accuracy_mean": a["test_accuracy_mean"], "one_bit_accuracy_ci95_low": a["test_accuracy_ci95_low"],
            "one_bit_accuracy_ci95_high": a["test_accuracy_ci95_high"], "int8_accuracy_mean": b["test_accuracy_mean"],
            "int8_accuracy_ci95_low": b["test_accuracy_ci95_low"], "int8_accuracy_ci95_high": b["test_accuracy_ci95_high"],
            "int8_minus_one_bit": gap.value, "int8_minus_one_bit_ci95_low": gap.low,
            "int8_minus_one_bit_ci95_high": gap.high, "int8_minus_one_bit_p_value": gap.p_value, "seeds": gap.n,
            "one_bit_agreement_min": a["agreement_min"], "int8_agreement_min": b["agreement_min"],
            "one_bit_latency_us": row["latency_median_us"], "int8_latency_us": int8_latency,
            # the 1-bit network's speedup over int8 is int8's latency over its own: int8's over it is the inverse
            "int8_speedup_vs_one_bit": 1 / row["speedup_vs_baseline"],
            "int8_speedup_rerun95_low": 1 / row["speedup_rerun95_high"],
            "int8_speedup_rerun95_high": 1 / row["speedup_rerun95_low"],
            "int8_speedup_p_value": row["speedup_p_value"],
        })
    table = pd.DataFrame(out, columns=COMPARISON_COLUMNS)
    table["int8_speedup_p_holm"] = holm(table["int8_speedup_p_value"])  # over the thread counts
    return table


def _faster(row: dict) -> int:
    """+1 where int8 is told faster than the 1-bit network, -1 slower, 0
    not told apart: the printed interval wholly on one side of 1.00x
    and the Holm-adjusted test (over the dataset's thread counts) agreeing."""
    side = direction(row["int8_speedup_rerun95_low"], row["int8_speedup_rerun95_high"], "{:.2f}", reference=1.0)
    return side if side and (pd.isna(row["int8_speedup_p_holm"]) or row["int8_speedup_p_holm"] < ALPHA) else 0


def _who(side: int, one_bit: str, int8: str, better: str, worse: str, tie: str) -> str:
    return f"`{int8}` {better}" if side > 0 else f"`{one_bit}` {better}" if side < 0 else tie


def int8_verdicts(rows: pd.DataFrame) -> list[str]:
    """What one dataset's comparison says, clause by clause: flash and RAM
    (exact), accuracy (the seed-paired difference, told only when its
    interval lies on one side of zero), speed per thread count on the CPU
    measured (told only as :func:`_faster` allows)."""
    first = rows.iloc[0].to_dict()
    one_bit, int8 = first["one_bit"], first["int8"]
    flash = (f"flash: `{one_bit}` {first['flash_ratio']:.2f}x smaller ({first['one_bit_tflite_kib']:.2f} against "
             f"{first['int8_tflite_kib']:.2f} KiB)" if first["flash_ratio"] >= 1 else
             f"flash: `{int8}` {1 / first['flash_ratio']:.2f}x smaller ({first['int8_tflite_kib']:.2f} against "
             f"{first['one_bit_tflite_kib']:.2f} KiB)")
    if f"{first['one_bit_ram_kib']:.2f}" == f"{first['int8_ram_kib']:.2f}":
        ram = f"RAM: the same ({first['int8_ram_kib']:.2f} KiB)"
    elif first["ram_ratio"] > 1:
        ram = (f"RAM: `{int8}` needs {first['ram_ratio']:.2f}x less ({first['int8_ram_kib']:.2f} against "
               f"{first['one_bit_ram_kib']:.2f} KiB)")
    else:
        ram = (f"RAM: `{one_bit}` needs {1 / first['ram_ratio']:.2f}x less ({first['one_bit_ram_kib']:.2f} against "
               f"{first['int8_ram_kib']:.2f} KiB)")
    low, high = first["int8_minus_one_bit_ci95_low"], first["int8_minus_one_bit_ci95_high"]
    side = gap_direction(low, high) if not pd.isna(low) else 0
    accuracy = (f"accuracy: `{int8}` {points(first['int8_minus_one_bit'])} against `{one_bit}`, paired by seed "
                f"({interval(low, high, points, int(first['seeds']))}): "
                + _who(side, one_bit, int8, "more accurate", "", "the seeds cannot tell them apart"))
    speeds = []
    for row in rows.to_dict("records"):
        verdict = _faster(row)
        speeds.append(f"at {threads_label(int(row['threads']))} `{int8}` runs at "
                      f"{with_interval(row['int8_speedup_vs_one_bit'], row['int8_speedup_rerun95_low'], row['int8_speedup_rerun95_high'], times)} "
                      f"`{one_bit}`'s speed ({row['int8_latency_us']:.1f} against {row['one_bit_latency_us']:.1f} µs): "
                      + _who(verdict, one_bit, int8, "faster", "", "not told apart"))
    return [flash, ram, accuracy, f"speed on {first['cpu']} (options {first['options']}): " + "; ".join(speeds)]


def int8_winners(rows: pd.DataFrame) -> str:
    """Who wins what on one dataset, in one clause: flash and RAM (the
    smaller, exact), accuracy (only where the paired interval lies on one
    side of zero), speed per thread count (as :func:`_faster` allows)."""
    first = rows.iloc[0].to_dict()
    one_bit, int8 = first["one_bit"], first["int8"]
    wins: dict[str, list[str]] = {one_bit: [], int8: [], "": []}
    wins[one_bit if first["flash_ratio"] > 1 else int8 if first["flash_ratio"] < 1 else ""].append("flash")
    ram = 0 if f"{first['one_bit_ram_kib']:.2f}" == f"{first['int8_ram_kib']:.2f}" else (
        1 if first["ram_ratio"] > 1 else -1)
    wins[{1: int8, -1: one_bit, 0: ""}[ram]].append("RAM")
    low, high = first["int8_minus_one_bit_ci95_low"], first["int8_minus_one_bit_ci95_high"]
    accuracy = gap_direction(low, high) if not pd.isna(low) else 0
    wins[{1: int8, -1: one_bit, 0: ""}[accuracy]].append("accuracy")
    for row in rows.to_dict("records"):
        wins[{1: int8, -1: one_bit, 0: ""}[_faster(row)]].append(f"speed at {threads_label(int(row['threads']))}")
    parts = [f"`{name}` wins on {', '.join(what)}" for name, what in wins.items() if name and what]
    if wins[""]:
        parts.append(f"neither is told better on {', '.join(wins[''])}")
    return "; ".join(parts) + f" (speed on {first['cpu']})"


def int8_line(table: pd.DataFrame, title) -> str:
    """The answer's line: per dataset, who wins on flash, RAM, accuracy and
    speed; empty when the study has no comparison."""
    if table.empty:
        return ""
    parts = []
    datasets = list(dict.fromkeys(table["dataset"]))
    for dataset in datasets:
        verdicts = int8_verdicts(table[table["dataset"] == dataset])
        # the files, their RAM and their speed are the same networks' on every dataset: said once
        rows = table[table["dataset"] == dataset]
        parts.append((f"{title(dataset)}: " if len(datasets) > 1 else "") + int8_winners(rows) + ": "
                     + "; ".join(verdicts if dataset == datasets[0] else verdicts[2:3]))
    return ". ".join(parts)


def int8_findings(table: pd.DataFrame, title) -> list[str]:
    """The int8 section's findings: one sentence per dataset."""
    sentences = []
    for dataset in dict.fromkeys(table["dataset"]):
        rows = table[table["dataset"] == dataset]
        first = rows.iloc[0]
        sentences.append(f"{title(dataset)}, `{first['one_bit']}` against `{first['int8']}`: "
                         + "; ".join(int8_verdicts(rows)) + ".")
    return sentences


def readable_int8(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison for people, one row per dataset and thread count."""
    return pd.DataFrame({
        "dataset": table["dataset"], "threads": table["threads"].map(int),
        "1-bit": table["one_bit"].map("`{}`".format), "int8": table["int8"].map("`{}`".format),
        "flash (KiB): 1-bit / int8": [f"{a:.2f} / {b:.2f}" for a, b in
                                      zip(table["one_bit_tflite_kib"], table["int8_tflite_kib"], strict=True)],
        "RAM (KiB): 1-bit / int8": [f"{a:.2f} / {b:.2f}" for a, b in
                                    zip(table["one_bit_ram_kib"], table["int8_ram_kib"], strict=True)],
        "accuracy: 1-bit": [cell(v, lo, hi, pct) for v, lo, hi in zip(
            table["one_bit_accuracy_mean"], table["one_bit_accuracy_ci95_low"], table["one_bit_accuracy_ci95_high"],
            strict=True)],
        "accuracy: int8": [cell(v, lo, hi, pct) for v, lo, hi in zip(
            table["int8_accuracy_mean"], table["int8_accuracy_ci95_low"], table["int8_accuracy_ci95_high"],
            strict=True)],
        "int8 minus 1-bit (paired)": [cell(v, lo, hi, points) for v, lo, hi in zip(
            table["int8_minus_one_bit"], table["int8_minus_one_bit_ci95_low"], table["int8_minus_one_bit_ci95_high"],
            strict=True)],
        "agreement with Keras: 1-bit / int8": [f"{pct(a)} / {pct(b)}" for a, b in zip(
            table["one_bit_agreement_min"], table["int8_agreement_min"], strict=True)],
        "latency (µs): 1-bit / int8": [f"{a:.1f} / {b:.1f}" for a, b in
                                       zip(table["one_bit_latency_us"], table["int8_latency_us"], strict=True)],
        "int8's speed over 1-bit (95% within the run)": [with_interval(v, lo, hi, times) for v, lo, hi in zip(
            table["int8_speedup_vs_one_bit"], table["int8_speedup_rerun95_low"], table["int8_speedup_rerun95_high"],
            strict=True)],
    })
