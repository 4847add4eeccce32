"""Deployment with Larq Compute Engine: what each deployed file holds
(flash, weights, peak activation RAM, operators, the share of work in
binary operators) against Larq's theoretical count; and their sentences.
How fast the files run: stages/lib/analysis/speed.py."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from stages.lib.analysis.tables import COUNT, COUNTS, FRACTION, POSITIVE, POSITIVE_COUNT, Runs, read_json
from stages.lib.layout import DEPLOY_RECORDS, output
from stages.lib.names import run_name
from stages.lib.wording import pct, title


DEPLOY_FIGURES = {
    "tflite_bytes": POSITIVE_COUNT, "tflite_kib": POSITIVE, "converted_accuracy": FRACTION, "agreement": FRACTION,
    "weights_bytes": COUNT, "peak_activation_bytes": COUNT, "macs_binary": COUNT,
    "binary_mac_fraction_deployed": FRACTION,
}


def census(operators: dict[str, int]) -> str:
    """``{"CONV_2D": 1, "LceBconv2d": 4}`` as ``LceBconv2d 4, CONV_2D 1``:
    most frequent first."""
    return ", ".join(f"{name} {count}" for name, count in sorted(operators.items(), key=lambda kv: (-kv[1], kv[0])))


def load_deployments(deploy_dir: str | Path, study: Runs) -> pd.DataFrame:
    rows = []
    for dataset, variant, seed in study:
        report = read_json(output(deploy_dir, run_name(dataset, variant, seed), DEPLOY_RECORDS) / "deploy.json",
                           {**DEPLOY_FIGURES, "operators": COUNTS})
        rows.append({"dataset": dataset, "variant": variant, "seed": seed, **{k: report[k] for k in DEPLOY_FIGURES},
                     "operators": census(report["operators"])})
    return pd.DataFrame(rows)


def readable_deployment(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "variant": summary["variant"],
        "flash: .tflite (KiB)": summary["tflite_kib"].map("{:.2f}".format),
        "of it weights (KiB)": summary["weights_kib"].map("{:.2f}".format),
        "Larq's weight memory (KiB)": summary["memory_kib"].map("{:.2f}".format),
        "RAM: peak activations (KiB)": summary["ram_kib"].map("{:.2f}".format),
        "MACs in binary operators (deployed)": summary["binary_mac_fraction_deployed"].map(pct),
        "binarized MACs (Larq)": summary["binarized_mac_fraction"].map(pct),
        "operators": summary["operators"],
        "converted accuracy (mean)": summary["converted_accuracy_mean"].map(pct),
        "agreement with Keras (worst)": summary["agreement_min"].map(pct),
    })


FLOAT_COMPUTE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def deploys_as_float(row: dict) -> bool:
    """Quantized in training, float once deployed: no binary operator in the
    converted graph although Larq counts binarized MACs or compressed
    weights (LCE has binary kernels only for binary weights with binary
    inputs)."""
    return row["binary_mac_fraction_deployed"] == 0 and (
        row["binarized_mac_fraction"] > 0 or row["memory_kib"] < 0.5 * row["tflite_kib"])


def deployment_sentence(row: dict) -> str:
    """What the deployed file of one variant holds, with the reason its
    speed can or cannot come from binary operators, read from them."""
    sentence = (f"`{row['variant']}`'s deployed file weighs {row['tflite_kib']:.2f} KiB "
                f"(Larq's count of its weights: {row['memory_kib']:.2f} KiB) and its activations need "
                f"{row['ram_kib']:.2f} KiB of RAM at peak")
    deployed, larq = row["binary_mac_fraction_deployed"], row["binarized_mac_fraction"]
    if deployed > 0:
        sentence += f"; {pct(deployed)} of its multiply-accumulates run in LCE's binary convolution"
        if not math.isclose(deployed, larq, abs_tol=5e-5):
            sentence += f" (Larq counts {pct(larq)} binarized)"
        if deployed < 1:
            floats = [part for part in row["operators"].split(", ") if part.split()[0] in FLOAT_COMPUTE]
            sentence += f", the other {pct(1 - deployed)} in float operators ({', '.join(floats)})"
    elif deploys_as_float(row):
        sentence += (f"; its deployed graph has no binary operator ({row['operators']}): LCE has kernels for "
                     f"binary weights with binary inputs only, so it runs as a float network and stores its "
                     f"weights as floats, whatever Larq counts")
    return sentence + "."


def deployment_findings(summary: pd.DataFrame) -> list[str]:
    return [deployment_sentence(row) for row in summary.to_dict("records")]


def same_files_sentence(summary: pd.DataFrame) -> str:
    """Whether the deployed files weigh the same on every dataset (the
    networks are the same; only their weights' values differ)."""
    datasets = list(dict.fromkeys(summary["dataset"]))
    if len(datasets) < 2:
        return ""
    spread = summary.groupby("variant")[["tflite_kib", "ram_kib"]].agg(lambda v: v.max() - v.min()).max()
    return (f"The figures below are {title(datasets[0])}'s; on {', '.join(title(d) for d in datasets[1:])} the same "
            f"networks deploy to files within {spread['tflite_kib']:.2f} KiB of these and need the same RAM "
            f"(largest difference {spread['ram_kib']:.2f} KiB): only the weights' values differ.")


def savings_findings(summary: pd.DataFrame, headline: str | None) -> list[str]:
    """The headline variant's deployed file in one sentence (see
    :func:`deployment_sentence`), and which variants LCE deploys as float
    networks (no binary operator, whatever Larq counts)."""
    rows = {row["variant"]: row for row in summary.to_dict("records")}
    sentences = [deployment_sentence(rows[headline])] if headline in rows else []
    floats = [name for name, row in rows.items() if deploys_as_float(row)]
    if floats:
        sentences.append(f"{', '.join(f'`{name}`' for name in floats)} deploy{'s' if len(floats) == 1 else ''} as "
                         f"float networks: LCE has kernels for binary weights with binary inputs only, so their "
                         f"files store float weights whatever Larq counts.")
    return sentences


def readable_savings(summary: pd.DataFrame) -> pd.DataFrame:
    """What each variant weighs in theory (Larq) and deployed (flash, RAM),
    and how much of its work runs in binary operators."""
    return pd.DataFrame({
        "variant": summary["variant"],
        "params (32-bit)": [f"{total:,} ({full:,})" for total, full in
                            zip(summary["params_total"], summary["params_32bit"], strict=True)],
        "Larq's weight memory (KiB)": summary["memory_kib"].map("{:.2f}".format),
        "flash: .tflite (KiB)": summary["tflite_kib"].map("{:.2f}".format),
        "RAM: peak activations (KiB)": summary["ram_kib"].map("{:.2f}".format),
        "binarized MACs: Larq / deployed": [f"{pct(larq)} / {pct(deployed)}" for larq, deployed in
                                            zip(summary["binarized_mac_fraction"],
                                                summary["binary_mac_fraction_deployed"], strict=True)],
        "agreement with Keras (worst seed)": summary["agreement_min"].map(pct),
    })


