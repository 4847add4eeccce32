"""Degenerate results and damaged files end in one line, never a traceback
or a wrong figure (stage by stage; the DVC paths are in test_pipeline)."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import synthetic_latency, synthetic_profiles, synthetic_runs, write_synthetic_tables
from stages.lib.common import StudyError, run_cli


def _all_at_chance(runs):
    return runs.assign(test_accuracy=0.1135, converted_accuracy=0.1135, at_chance=True)


def test_a_study_whose_every_variant_is_at_chance_has_no_frontier_and_no_pick():
    from stages.lib.analysis.accuracy import summary_table
    from stages.lib.analysis.budgets import budget_picks

    summary = summary_table(_all_at_chance(synthetic_runs()), synthetic_profiles(), "fp32", synthetic_latency())
    assert summary["runs_at_chance"].tolist() == [3, 3]
    assert not summary["on_pareto_frontier"].any() and not summary["on_deployed_pareto_frontier"].any()
    picks = budget_picks(summary, [16, None])
    assert picks[0].startswith("Never picked, because some of their runs learned nothing")
    assert picks[1].startswith("Every variant of this study has runs at chance level, so no variant is picked")
    assert len(picks) == 2


def test_the_report_of_a_study_at_chance_renders_and_says_so(tmp_path, monkeypatch):
    import conftest
    from stages.report import render

    monkeypatch.setattr(conftest, "synthetic_runs", lambda: _all_at_chance(synthetic_runs()))
    write_synthetic_tables(tmp_path)
    report, _ = render(tmp_path, "plots", "fp32", [16, None])
    assert "Every variant of this study has runs at chance level" in report
    assert "no variant is picked: every variant has runs at chance level" in report.split("## What binarizing")[0]


def _deployed_run(tmp_path, model_bytes):
    """A deployed run's files as `deploy` leaves them, with ``model_bytes``
    as its .tflite file."""
    import hashlib

    (tmp_path / "deployed" / "mnist-bnn-0" / "tflite").mkdir(parents=True)
    (tmp_path / "deployed" / "mnist-bnn-0" / "tflite" / "model.tflite").write_bytes(model_bytes)
    (tmp_path / "deploy" / "mnist-bnn-0" / "record").mkdir(parents=True)
    # the record describes these very bytes: what refuses them is the interpreter
    (tmp_path / "deploy" / "mnist-bnn-0" / "record" / "deploy.json").write_text(
        json.dumps({"input_range": [0.0, 1.0], "options_agreeing": ["default"], "input_quantization": None,
                    "tflite_bytes": len(model_bytes), "tflite_sha256": hashlib.sha256(model_bytes).hexdigest()}))
    from stages.lib.forms.runtime import SAMPLE_FILE

    np.save(tmp_path / "deploy" / "mnist-bnn-0" / "record" / SAMPLE_FILE, np.zeros((4, 28, 28), np.uint8))


@pytest.mark.parametrize("model_bytes", [b"", b"TFL3garbage", np.random.default_rng(0).bytes(5000)],
                         ids=["empty", "TFL3garbage", "random"])
def test_a_damaged_deployed_model_stops_the_benchmark_in_one_line(tmp_path, model_bytes):
    from stages.benchmark import load_subjects

    _deployed_run(tmp_path, model_bytes)
    with pytest.raises(StudyError, match=r"deployed/mnist-bnn-0/tflite/model.tflite is not a model TensorFlow Lite can "
                                         r"load \(.*\): rerun the stage that wrote it"):
        load_subjects(tmp_path / "deployed", tmp_path / "deploy", [("mnist", "bnn", 0)])


@pytest.mark.parametrize("cut", [0.5, 0.98, 0.1])
def test_a_model_cut_short_whose_record_was_edited_to_match_is_one_line_not_a_crash(tmp_path, cut):
    # the interpreter does not verify what it loads: read past the end, it
    # dies by a signal; the file is read whole in Python first
    from stages.benchmark import load_subjects, overhead_flatbuffer

    whole = overhead_flatbuffer()
    _deployed_run(tmp_path, whole[:int(len(whole) * cut)])
    with pytest.raises(StudyError, match=r"model.tflite is not a model TensorFlow Lite can load \((cut short or "
                                         r"damaged|no TFL3 identifier).*\): rerun the stage that wrote it"):
        load_subjects(tmp_path / "deployed", tmp_path / "deploy", [("mnist", "bnn", 0)])
    _deployed_run(tmp_path / "whole", whole)
    assert len(load_subjects(tmp_path / "whole" / "deployed", tmp_path / "whole" / "deploy",
                             [("mnist", "bnn", 0)])) == 2


RUN = {"validation_accuracy": 0.98, "test_accuracy": 0.98, "test_loss": 0.05, "chance_accuracy": 0.1135,
       "train_time_s": 60.0, "train_images_per_s": 6000.0, "train_images": 55000, "validation_images": 5000,
       "test_images": 10000}


@pytest.mark.parametrize("field", sorted(RUN))
@pytest.mark.parametrize("value", [None, "abc", -1, 1.7, 1e12 + 0.5, float("nan")],
                         ids=["null", "string", "negative", "out-of-range", "not-whole", "nan"])
def test_any_damaged_field_of_a_run_s_metrics_is_one_line_naming_it(tmp_path, field, value):
    from stages.aggregate import load_runs

    if value == 1e12 + 0.5 and field not in ("train_images", "test_images"):
        value = 1.5 if field in ("test_accuracy", "chance_accuracy") else -0.5
    (tmp_path / "mnist-bnn-0" / "live").mkdir(parents=True)
    text = json.dumps({**RUN, field: value})  # NaN is written as JSON's NaN, as Python would
    (tmp_path / "mnist-bnn-0" / "live" / "metrics.json").write_text(text)
    if field in ("train_time_s", "train_images_per_s", "test_loss") and value == 1.7:
        load_runs(tmp_path, [("mnist", "bnn", 0)])  # 1.7 s, 1.7 images/s and a loss of 1.7 are possible
        return
    with pytest.raises(StudyError, match=rf"mnist-bnn-0/live/metrics.json: {field} must be .*, got .*: rerun"):
        load_runs(tmp_path, [("mnist", "bnn", 0)])


def test_the_aggregate_stage_names_a_damaged_field_in_one_line(tmp_path, capsys):
    from stages.aggregate import main

    (tmp_path / "runs" / "mnist-bnn-0" / "live").mkdir(parents=True)
    (tmp_path / "runs" / "mnist-bnn-0" / "live" / "metrics.json").write_text(json.dumps({**RUN, "test_accuracy": None}))
    params = tmp_path / "aggregate.json"
    params.write_text(json.dumps({"study": {"datasets": ["mnist"], "variants": ["bnn"], "seeds": [0]},
                                  "aggregate": {"baseline": "bnn", "primary": ["bnn"]}, "benchmark": {"headline_options": "default"},
                                  "variants": {"bnn": {"recipe": "article"}}, "recipes": {"article": {"epochs": 6}}}))
    (tmp_path / "profiles" / "bnn" / "profile").mkdir(parents=True)
    profile = {**synthetic_profiles().loc["bnn"].to_dict(), "params_by_bitwidth": {"1": 93088, "32": 468},
               "macs_by_precision": {"1": 2599552, "32": 194688}}
    (tmp_path / "profiles" / "bnn" / "profile" / "profile.json").write_text(json.dumps(profile))
    status = run_cli(main, ["--params", str(params), "--runs", str(tmp_path / "runs"),
                            "--profiles", str(tmp_path / "profiles"), "--tables-out", str(tmp_path / "tables"),
                            "--metrics-out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert err[0].endswith("mnist-bnn-0/live/metrics.json: test_accuracy must be a number from 0 to 1, got None: "
                           "rerun the stage that writes it")
    assert not (tmp_path / "tables").exists()


PLOTS_READS = {"runs", "summary", "curves", "confusion", "tax"}


FRACTIONS = [("summary", "test_accuracy_mean"), ("runs", "test_accuracy"), ("per_class", "accuracy_mean"),
             ("curves", "accuracy")]
AMOUNTS = [("summary", "tflite_kib"), ("latency", "latency_median_us")]


@pytest.mark.parametrize("table, column, value", [
    (table, column, value) for table, column in FRACTIONS + AMOUNTS for value in ("", "abc", "-1")
] + [(table, column, "1.5") for table, column in FRACTIONS])
def test_a_damaged_cell_stops_plots_and_report_in_one_line(tmp_path, capsys, table, column, value):
    from stages.plots import main as plots
    from stages.report import TABLES as REPORT_READS
    from stages.report import main as report

    tables = tmp_path / "tables"
    written = write_synthetic_tables(tables)
    frame = written[table].astype({column: object})
    frame.loc[frame.index[-1], column] = value
    frame.to_csv(tables / f"{table}.csv", index=False)
    params = tmp_path / "report.json"
    params.write_text(json.dumps({"study": {"datasets": ["mnist"], "variants": ["fp32", "bnn"]},
                                  "aggregate": {"baseline": "fp32", "primary": ["bnn"]},
                                  "report": {"memory_budgets_kib": [16, None]}}))
    stages = [(report, ["--params", str(params), "--tables", str(tables), "--plots", str(tmp_path / "plots"),
                        "--out", str(tmp_path / "report.md")])] if table in REPORT_READS else []
    if table in PLOTS_READS:
        stages.append((plots, ["--tables", str(tables), "--out", str(tmp_path / "plots")]))
    assert stages
    for stage, args in stages:
        status = run_cli(stage, args)
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 1 and len(err) == 1, (stage, err)
        assert f"{table}.csv: {column} in row {len(frame)} must be" in err[0], err[0]
    assert not (tmp_path / "plots").exists() and not (tmp_path / "report.md").exists()
    assert not (tmp_path / "details.md").exists()


def test_every_table_column_has_a_kind():
    from stages.lib.analysis.tables import column_kind

    tables = write_synthetic_tables_in_memory()
    unknown = sorted({f"{name}.{column}" for name, table in tables.items() for column in table.columns
                      if column_kind(column) is None})
    assert not unknown


def write_synthetic_tables_in_memory():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        written = write_synthetic_tables(Path(folder))
    return {name: pd.DataFrame(table) for name, table in written.items()}


def _bad_values(kind):
    """The replacements a column of ``kind`` must refuse."""
    values = ["abc"]
    if not kind.nullable:
        values.append("")
    if kind.kind == "number" and kind.low >= 0:
        values.append("-1")
    if kind.kind == "number" and kind.high < float("inf"):
        values.append(str(kind.high + 0.5))
    return values


def test_every_cell_of_every_table_is_checked_against_its_column(tmp_path):
    from stages.lib.analysis.tables import column_kind, read_table

    tables = tmp_path / "tables"
    written = write_synthetic_tables(tables, ("mnist", "fashion_mnist"))
    checked = 0
    for name, table in written.items():
        for column in table.columns if not table.empty else ():   # a study of one width compares none across
            kind = column_kind(column)
            if kind.kind == "text":
                continue  # any text is a name
            for value in _bad_values(kind):
                frame = table.astype({column: object})
                frame.loc[frame.index[0], column] = value
                frame.to_csv(tables / f"{name}.csv", index=False)
                with pytest.raises(StudyError, match=rf"{name}.csv: {column} in row 1 must be "):
                    read_table(tables, name)
                checked += 1
        table.to_csv(tables / f"{name}.csv", index=False)
        assert read_table(tables, name, may_be_empty=table.empty).shape == table.shape
    assert checked > 300


DEPLOYED = {"tflite_bytes": 19251, "tflite_kib": 18.8, "converted_accuracy": 0.98, "agreement": 1.0,
            "weights_bytes": 15032, "peak_activation_bytes": 108160, "macs_binary": 2599552,
            "binary_mac_fraction_deployed": 0.93, "operators": {"LceBconv2d": 2}}


# Beyond null, a string and -1: what else each field of deploy.json must refuse.
OUT_OF_RANGE = {"tflite_bytes": 0.5, "tflite_kib": 0, "converted_accuracy": 1.5, "agreement": 1.5,
                "weights_bytes": 0.5, "peak_activation_bytes": 0.5, "macs_binary": 0.5,
                "binary_mac_fraction_deployed": 1.5, "operators": {"LceBconv2d": -1}}


@pytest.mark.parametrize("field", sorted(DEPLOYED))
def test_any_damaged_field_of_a_deployment_is_one_line_naming_it(tmp_path, field):
    from stages.lib.analysis.deployment import load_deployments

    (tmp_path / "mnist-bnn-0" / "record").mkdir(parents=True)
    for value in (None, "abc", -1, OUT_OF_RANGE[field]):
        (tmp_path / "mnist-bnn-0" / "record" / "deploy.json").write_text(json.dumps({**DEPLOYED, field: value}))
        with pytest.raises(StudyError, match=rf"mnist-bnn-0/record/deploy.json: {field} must be "):
            load_deployments(tmp_path, [("mnist", "bnn", 0)])
    (tmp_path / "mnist-bnn-0" / "record" / "deploy.json").write_text(json.dumps(DEPLOYED))
    assert load_deployments(tmp_path, [("mnist", "bnn", 0)]).loc[0, "operators"] == "LceBconv2d 2"


@pytest.mark.parametrize("text", ["label,predicted\n3,abc\n", "label,predicted\n3,10\n", "label,predicted\n-1,2\n",
                                  "label,predicted\n3,\n", "label,predicted\n3,2.5\n"])
def test_damaged_predictions_are_one_line(tmp_path, text):
    from stages.lib.analysis.classes import load_predictions

    (tmp_path / "mnist-bnn-0" / "live").mkdir(parents=True)
    (tmp_path / "mnist-bnn-0" / "live" / "predictions.csv").write_text(text)
    with pytest.raises(StudyError, match=r"mnist-bnn-0/live/predictions.csv is damaged \(labels and answers must be "
                                         r"classes 0 to 9\)"):
        load_predictions(tmp_path, [("mnist", "bnn", 0)])


def test_the_tables_of_a_one_seed_study_read_back(tmp_path, monkeypatch):
    # one seed has no spread and no interval: those cells are empty, not damaged
    import conftest
    from stages.lib.analysis.tables import read_table

    one_seed = synthetic_runs()
    monkeypatch.setattr(conftest, "synthetic_runs", lambda: one_seed[one_seed["seed"] == 0].reset_index(drop=True))
    written = write_synthetic_tables(tmp_path, ("mnist", "fashion_mnist"))
    assert written["summary"]["test_accuracy_std"].isna().all()
    for name, table in written.items():
        assert read_table(tmp_path, name, may_be_empty=True).shape == table.shape, name
