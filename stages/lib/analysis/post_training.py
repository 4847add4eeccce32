"""The post-training forms in the tables (``fp32+int8``; the forms are
:mod:`stages.lib.forms.registry`'s): each joins them as one more deployed
network. Its runs are its source variant's runs, converted; its test
accuracy is its file's on the whole test set under the headline interpreter
option set (what its speed is measured under), so its gap to the baseline,
paired by seed, is what the form costs; its training figures are its
source's (the float network had to be trained); its weight memory is Larq's
parameter count at the form's bits each (what the file holds besides
biases, scales and the graph). The tables about training (curves,
per-class answers, recipes) keep the trained variants only.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from stages.lib.analysis.stats import at_chance
from stages.lib.analysis.tables import MAPPING, POSITIVE_COUNT, Runs, read_json
from stages.lib.common import StudyError
from stages.lib.forms.registry import form_of, source_variant, writing_stage
from stages.lib.layout import DEPLOY_RECORDS, output
from stages.lib.names import run_name


def load_runs(deploy_dir: str | Path, study: Runs, runs: pd.DataFrame, headline: str) -> pd.DataFrame:
    """One row per post-training run of ``study``, with the columns of the
    trained ``runs``: the test and validation accuracies are the deployed
    file's under ``headline``; the test loss is not measured (empty); chance
    level and training figures are the source run's."""
    source = runs.set_index(["dataset", "variant", "seed"])
    rows = []
    for dataset, name, seed in study:
        path = output(deploy_dir, run_name(dataset, name, seed), DEPLOY_RECORDS) / "deploy.json"
        report = read_json(path, {"checks": MAPPING, "test_images": POSITIVE_COUNT})
        check = report["checks"].get(headline)
        accuracy, validation = ((check.get("converted_accuracy"), check.get("converted_validation_accuracy"))
                                if isinstance(check, dict) else (None, None))
        if not all(isinstance(a, float | int) and 0 <= a <= 1 for a in (accuracy, validation)):
            raise StudyError(f"{path} has no test or validation accuracy under {headline}: rerun "
                             f"`dvc repro --force {writing_stage(name)}`")
        trained = source.loc[(dataset, source_variant(name), seed)]
        rows.append({"dataset": dataset, "variant": name, "seed": seed, "validation_accuracy": float(validation),
                     "test_accuracy": float(accuracy),
                     "test_loss": math.nan, "chance_accuracy": trained["chance_accuracy"],
                     "train_time_s": trained["train_time_s"], "train_images_per_s": trained["train_images_per_s"],
                     "train_images": trained["train_images"], "validation_images": trained["validation_images"],
                     "test_images": report["test_images"]})
    frame = pd.DataFrame(rows, columns=["dataset", "variant", "seed", "validation_accuracy", "test_accuracy",
                                        "test_loss", "chance_accuracy",
                                        "train_time_s", "train_images_per_s", "train_images", "validation_images",
                                        "test_images"])
    frame["at_chance"] = [at_chance(acc, chance, n) for acc, chance, n in
                          zip(frame["test_accuracy"], frame["chance_accuracy"], frame["test_images"], strict=True)]
    return frame


def profiles(trained: pd.DataFrame, networks: list[str]) -> pd.DataFrame:
    """Per post-training network, its source's profile with every parameter
    at its form's bits, and every MAC at its form's MAC bits."""
    rows = []
    for name in networks:
        source, bits, mac_bits = trained.loc[source_variant(name)], form_of(name).bits, form_of(name).mac_bits
        params, macs = int(source["params_total"]), int(source["macs_total"])
        rows.append({"variant": name, "params_total": params, "params_1bit": 0, "params_32bit": 0,
                     "memory_kib": params * bits / 8 / 1024, "fp32_equivalent_kib": source["fp32_equivalent_kib"],
                     "macs_total": macs, "macs_1bit": 0, "macs_32bit": 0, "binarized_mac_fraction": 0.0,
                     "params_by_bitwidth": f"{bits}-bit: {params}", "macs_by_precision": f"{mac_bits}-bit: {macs}"})
    return pd.DataFrame(rows, columns=["variant", *trained.columns]).set_index("variant")


def training(trained: pd.DataFrame, networks: list[str]) -> pd.DataFrame:
    """Per post-training network, its source's recipe and epochs; its
    architecture is its source's in its form (so that budget picks treat it
    as a network of its own)."""
    rows = [{"variant": name, **trained.loc[source_variant(name)].to_dict()} for name in networks]
    table = pd.DataFrame(rows, columns=["variant", *trained.columns]).set_index("variant")
    table["architecture"] = [form_of(name).network(architecture)
                             for name, architecture in zip(table.index, table["architecture"], strict=True)]
    return table
