"""Does the deployment benchmark's headline hold still when the machine is
busy? The `benchmark` stage's timing, run twice on the same deployed models
(each run in its fresh processes, as the stage does): once on a quiet
machine, once with a CPU-bound process spinning beside it (a variant's runs
on every dataset of the study timed together). Printed per variant and
thread count: the headline speedup against the baseline (paired within each
round, geometric mean across processes, with its 95% interval) in both
runs, and how far apart the two are.

Needs the deployed models of the study in params.yaml (`dvc repro deploy`).

    python benchmarks/deploy_stability.py [--params params.yaml] [--processes 8] [--rounds 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPIN = "while True: pass"


def headline(timings, params, settings):
    from stages.lib.analysis.speed import latency_table
    from stages.lib.analysis.choices import baseline
    from stages.lib.params import headline_options, study_variants

    variants = study_variants(params)
    macs = dict.fromkeys(variants, 1)
    table = latency_table(timings, variants, baseline(params), macs, headline_options(params))
    return table[table["headline"] & (table["variant"] != "overhead")].set_index(["variant", "threads"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--processes", type=int, default=None, help="default: benchmark.processes")
    parser.add_argument("--rounds", type=int, default=None, help="default: benchmark.rounds")
    args = parser.parse_args()

    import stages  # noqa: F401
    from stages.benchmark import load_subjects, run_benchmark
    from stages.lib.common import load_params
    from stages.lib.params import benchmark_settings, headline_options, study_runs

    params = load_params(args.params)
    settings = benchmark_settings(params)
    if args.rounds:
        settings = dataclasses.replace(settings, rounds=args.rounds)
    if args.processes:
        settings = dataclasses.replace(settings, processes=args.processes)
    subjects = load_subjects(REPO / "data" / "deployed", REPO / "reports" / "deploy", study_runs(params))
    results = {}
    for label in ("quiet", "busy"):
        spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if label == "busy" else None
        try:
            start = time.perf_counter()
            results[label] = headline(run_benchmark(subjects, settings, progress=False), params, settings)
            print(f"{label}: {time.perf_counter() - start:.0f} s", flush=True)
        finally:
            if spinner:
                spinner.kill()
                spinner.wait()
    quiet, busy = results["quiet"], results["busy"]
    print(f"\nheadline options {headline_options(params)}; {settings.processes} processes of {settings.rounds} rounds of "
          f"{settings.calls_per_block} calls; busy = one CPU-bound process beside")
    print(f"{'variant':>14} {'threads':>7} {'latency quiet':>14} {'latency busy':>13} "
          f"{'speedup quiet (95% CI)':>24} {'speedup busy (95% CI)':>24} {'difference':>10}")
    for key, row in quiet.iterrows():
        other = busy.loc[key]
        diff = other["speedup_vs_baseline"] / row["speedup_vs_baseline"] - 1
        print(f"{key[0]:>14} {key[1]:>7} {row['latency_median_us']:>11.1f} µs {other['latency_median_us']:>10.1f} µs "
              f"{row['speedup_vs_baseline']:>9.3f} ({row['speedup_rerun95_low']:.3f}-{row['speedup_rerun95_high']:.3f}) "
              f"{other['speedup_vs_baseline']:>9.3f} ({other['speedup_rerun95_low']:.3f}-{other['speedup_rerun95_high']:.3f}) "
              f"{100 * diff:>+9.1f}%")


if __name__ == "__main__":
    main()
