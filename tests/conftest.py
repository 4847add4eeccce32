import dataclasses
import functools
import gzip
import http.server
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stages  # noqa: F401  (sets TF_USE_LEGACY_KERAS before any test imports TensorFlow)
from stages.lib.data.datasets import IdxFile, encode_idx, sha256_of

REPO = Path(__file__).resolve().parents[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve_dir():
    """Serve a folder over HTTP on 127.0.0.1; returns a function
    folder -> base URL. Servers stop when the test ends."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def refused_url():
    """A URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def small_disk(tmp_path):
    """A function size_kib -> a folder on a tmpfs of that size, where writes
    fail with ENOSPC as on a full disk. Mounting needs root, which CI and the
    developers' machines have; elsewhere the test is skipped."""
    mounts = []

    def mount(size_kib: int) -> Path:
        folder = tmp_path / f"disk-{len(mounts)}"
        folder.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", str(folder)], check=True)


def make_synthetic_mnist(folder: Path, n_train: int = 32, n_test: int = 16, seed: int = 0):
    """Write small MNIST-shaped IDX archives (``.gz``) into ``folder``;
    return the IdxFile specs (with their real checksums) and the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for name, array in arrays.items():
        raw = encode_idx(array)
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        raw_path = folder / f".{name}.raw"
        raw_path.write_bytes(raw)
        specs.append(IdxFile(name, sha256_of(raw_path), len(raw)))
        raw_path.unlink()
    return tuple(specs), arrays


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    """The real MNIST, verified and decompressed from the shipped copy."""
    from stages.download import download

    out = tmp_path_factory.mktemp("data") / "mnist"
    download([str(REPO / "data" / "mnist-shipped")], out)
    return out


@pytest.fixture(scope="session")
def study_params():
    import yaml

    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture(scope="session")
def trained_fp32(study_params, mnist_dir, tmp_path_factory):
    """The 32-bit net trained on 10,000 images for one epoch (on fewer, its
    batch-norm statistics leave it near chance at test time, and a
    post-training form's drop is noise), and its float deployment: what the
    int8 and int4 tests convert."""
    from stages.deploy import deploy_run
    from stages.lib.training.variants import variant_from_params
    from stages.lib.params import TrainSettings
    from stages.lib.training.recipes import recipe_from_params
    from stages.train import train_run

    tmp_path = tmp_path_factory.mktemp("fp32")
    variant = variant_from_params("fp32", study_params["variants"])
    recipe = dataclasses.replace(recipe_from_params("article", study_params["recipes"]), epochs=1)
    train_run(variant, recipe, 0, TrainSettings(steps_per_execution=8), mnist_dir, tmp_path / "model",
              tmp_path / "live", train_limit=10000, verbose=0)
    float_report = deploy_run(tmp_path / "model", mnist_dir, variant.input_range, tmp_path / "deployed" / "mnist-fp32-0" / "tflite",
                              tmp_path / "deploy" / "mnist-fp32-0" / "record", test_limit=2000)
    return tmp_path, float_report


# What the `twins` stage derives for the default params.yaml: bnn's equal-flash twin
# (tests/test_twins.py derives it by converting the networks; here it stands in for
# the stage wherever a test runs `check` alone)
DEFAULT_TWIN = {"form": "int8", "name": "fp32_w0.352", "width": 0.352, "units": [11, 23, 23, 23], "twin_bytes": 19088,
                "one_bit_bytes": 19252, "wider_name": "fp32_w0.36", "wider_bytes": 19328}
# and its int4 twin (when aggregate.twin_forms names int4)
INT4_TWIN = {"form": "int4", "name": "fp32_w0.49", "width": 0.49, "units": [16, 31, 31, 31], "twin_bytes": 19224,
             "one_bit_bytes": 19252, "wider_name": "fp32_w0.5", "wider_bytes": 19936}


def twins_file(folder, params):
    """``folder``/twins.json as the `twins` stage writes it for ``params``:
    each pair of ``aggregate.same_flash`` with :data:`DEFAULT_TWIN`'s
    derivation in int8 and :data:`INT4_TWIN`'s in int4, for the forms of
    ``aggregate.twin_forms`` (only bnn against fp32 is derived; a test
    needing another pair runs the stage)."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = (params.get("aggregate") or {}).get("same_flash") or {}
    forms = (params.get("aggregate") or {}).get("twin_forms") or ["int8"]
    try:   # each spec written out from its base, as the stage records it
        from stages.lib.training.variants import with_widths

        variants = with_widths(params)["variants"]
    except Exception:  # noqa: BLE001  (params a test makes bad on purpose: `check` says why)
        variants = params.get("variants", {})
    records = {form: {one_bit: {"one_bit": one_bit, "base": base, **twin, "one_bit_spec": variants[one_bit],
                                "base_spec": variants[base]}
                      for one_bit, base in (pairs.items() if isinstance(pairs, dict) else [])
                      if one_bit in variants and base in variants}
               for form, twin in (("int8", DEFAULT_TWIN), ("int4", INT4_TWIN)) if form in forms}
    (folder / "twins.json").write_text(json.dumps({form: found for form, found in records.items() if found}))
    return folder / "twins.json"


def with_param(params, dotted, value):
    """A deep copy of ``params`` with the dotted key set to ``value``."""
    import copy

    params = copy.deepcopy(params)
    *path, last = dotted.split(".")
    node = params
    for key in path:
        node = node[key]
    node[last] = value
    return params


def synthetic_runs():
    """Three seeds of fp32 and bnn, as the runs table holds them."""
    return pd.DataFrame({
        "variant": ["fp32"] * 3 + ["bnn"] * 3,
        "seed": [0, 1, 2] * 2,
        "validation_accuracy": [0.9892, 0.9904, 0.9918, 0.9796, 0.9824, 0.9828],
        "test_accuracy": [0.990, 0.991, 0.992, 0.980, 0.983, 0.983],
        "test_loss": [0.03] * 3 + [0.4] * 3,
        "chance_accuracy": [0.1135] * 6,
        "train_time_s": [60.0] * 6,
        "train_images_per_s": [1000.0] * 6,
        "train_images": [55000] * 6,
        "validation_images": [5000] * 6,
        "test_images": [10000] * 6,
        "tflite_bytes": [378880] * 3 + [18432] * 3,
        "tflite_kib": [370.0] * 3 + [18.0] * 3,
        "converted_accuracy": [0.990, 0.991, 0.992, 0.980, 0.983, 0.983],
        "agreement": [1.0] * 5 + [0.9995],
        "weights_bytes": [374576] * 3 + [15032] * 3,
        "peak_activation_bytes": [108160] * 6,
        "macs_binary": [0] * 3 + [2599552] * 3,
        "binary_mac_fraction_deployed": [0.0] * 3 + [0.930325240494732] * 3,
        "operators": ["CONV_2D 3, FULLY_CONNECTED 2"] * 3 + ["LceBconv2d 4, LceQuantize 3, CONV_2D 1"] * 3,
        "at_chance": [False] * 6,
        "recipe": ["article"] * 6,
        "architecture": ["fp32"] * 3 + ["bnn"] * 3,
        "epochs": [6] * 6,
    })


def synthetic_timings(processes=4, rounds=5):
    """Benchmark timings of three seeds of fp32 and bnn and the overhead
    model: in process p and round r fp32 takes (100 + r) * (1 + p / 10) µs,
    bnn exactly half, the overhead model 1 µs; two option sets, one and two
    threads."""
    rows = []
    for p in range(processes):
        for r in range(rounds):
            for options in ("default", "bgemm+xnnpack"):
                for threads in (1, 2):
                    base = (100.0 + r) * (1 + p / 10)
                    for variant, latency in (("fp32", base), ("bnn", base / 2)):
                        for seed in (0, 1, 2):
                            rows.append({"process": p, "round": r, "model": f"{variant}-{seed}", "variant": variant,
                                         "seed": seed, "options": options, "threads": threads,
                                         "latency_us": latency})
                    rows.append({"process": p, "round": r, "model": "overhead", "variant": "overhead", "seed": None,
                                 "options": options, "threads": threads, "latency_us": 1.0})
    return pd.DataFrame(rows)


def synthetic_latency():
    from stages.lib.analysis.speed import latency_table

    table = latency_table(synthetic_timings(), ["fp32", "bnn"], "fp32", {"fp32": 2794240, "bnn": 2794240},
                          "bgemm+xnnpack")
    table["cpu"] = "a test CPU"
    table["cpu_cores"] = 2
    table["cpu_popcount"] = "scalar POPCNT"
    table["lce_kernels"] = "portable reference kernels, its optimized ones being for Arm only, not x86_64"
    return table


LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
ANSWERS = {
    # fp32 gets every image but the last right, on every seed
    ("fp32", 0): [0, 0, 0, 0, 1, 1, 1, 1, 2, 1], ("fp32", 1): [0, 0, 0, 0, 1, 1, 1, 1, 2, 1],
    ("fp32", 2): [0, 0, 0, 0, 1, 1, 1, 1, 2, 1],
    ("bnn", 0): [1, 0, 0, 0, 0, 1, 1, 1, 2, 2],  # wrong on images 0 and 4, right on 9
    ("bnn", 1): [1, 0, 0, 0, 1, 1, 1, 1, 2, 1],  # wrong on 0 and, like fp32, on 9
    ("bnn", 2): [2, 1, 0, 0, 1, 1, 1, 1, 2, 2],  # wrong on 0 and 1, right on 9
}


def synthetic_predictions():
    """Ten test images of three classes, answered by three seeds of fp32
    and bnn (long form, as load_predictions returns it)."""
    return pd.DataFrame([{"variant": variant, "seed": seed, "image": image, "label": label, "predicted": answer}
                         for (variant, seed), answers in ANSWERS.items()
                         for image, (label, answer) in enumerate(zip(LABELS, answers, strict=True))])


# How much lower each synthetic dataset's accuracies are than MNIST's, per
# variant: on the harder dataset the 1-bit net loses more.
DATASET_SHIFT = {"mnist": {"fp32": 0.0, "bnn": 0.0}, "fashion_mnist": {"fp32": 0.08, "bnn": 0.14}}


def synthetic_runs_of(dataset):
    runs = synthetic_runs()
    shift = runs["variant"].map(DATASET_SHIFT[dataset])
    return runs.assign(test_accuracy=runs["test_accuracy"] - shift,
                       validation_accuracy=runs["validation_accuracy"] - shift,
                       converted_accuracy=runs["converted_accuracy"] - shift)


def synthetic_int8_comparison(summary, runs):
    """The 1-bit network against an int8 form of fp32 (a quarter of its
    file, a quarter of the RAM, 0.4x its latency, its accuracy within 0.1 pp
    of fp32's on every seed), as the ``int8`` table holds it."""
    from stages.lib.analysis.int8_tables import comparison_table

    base = summary[summary["variant"] == "fp32"]
    int8 = base.assign(variant="fp32+int8", tflite_kib=base["tflite_kib"] / 3.6, ram_kib=base["ram_kib"] / 4)
    fp32_runs = runs[runs["variant"] == "fp32"]
    int8_runs = fp32_runs.assign(variant="fp32+int8",
                                 test_accuracy=fp32_runs["test_accuracy"] - 0.001 * (fp32_runs["seed"] % 2))
    timings = synthetic_timings()
    fp32_timings = timings[timings["variant"] == "fp32"]
    timings = pd.concat([timings, fp32_timings.assign(variant="fp32+int8", latency_us=fp32_timings["latency_us"] * 0.4)])
    table = comparison_table(pd.concat([summary.drop(columns="dataset", errors="ignore"),
                                        int8.drop(columns="dataset", errors="ignore")]),
                             pd.concat([runs, int8_runs]), timings, "bnn", "fp32+int8", "bgemm+xnnpack", "a test CPU")
    return table


def write_synthetic_tables(tables, datasets=("mnist",)):
    """Every table the plots and report stages read, from the synthetic
    runs, profiles, timings and predictions, for each of ``datasets``."""
    from stages.lib.analysis.accuracy import summary_table, tax_change_table
    from stages.lib.analysis.article import article_table
    from stages.lib.analysis.judged import judge_tables
    from stages.lib.analysis.classes import confusion_table, paired_images_table, per_class_table
    from stages.lib.analysis.recipe_effects import recipe_table
    from stages.lib.analysis.robustness_tables import accuracy_table as robustness_accuracy
    from stages.lib.analysis.robustness_tables import gap_table, mce_table
    from stages.lib.analysis.tables import of_dataset, per_dataset
    from stages.lib.data.datasets import DATASETS

    tables.mkdir(parents=True, exist_ok=True)
    variants = ["fp32", "bnn"]
    summary = per_dataset(datasets, lambda d: summary_table(synthetic_runs_of(d), synthetic_profiles(), "fp32",
                                                            synthetic_latency()))
    predictions = synthetic_predictions()
    paired_images = per_dataset(datasets, lambda d: paired_images_table(predictions, variants, "fp32"))
    runs = per_dataset(datasets, lambda d: synthetic_runs_of(d).join(synthetic_profiles(), on="variant"))
    written = {
        "runs": runs,
        "summary": summary,
        "latency": per_dataset(datasets, lambda d: synthetic_latency()),
        "article": article_table(summary),
        "per_class": per_dataset(datasets, lambda d: per_class_table(predictions, variants, "fp32",
                                                                     DATASETS[d].class_names)),
        "confusion": per_dataset(datasets, lambda d: confusion_table(predictions, variants, "fp32")),
        "paired_images": paired_images,
        "tax_change": tax_change_table(runs, list(datasets), variants, "fp32"),
        "recipes": per_dataset(datasets, lambda d: recipe_table(of_dataset(summary, d),
                                                                synthetic_runs_of(d), "fp32")),
        "curves": synthetic_curves(datasets),
        "robustness": per_dataset(datasets, lambda d: robustness_accuracy(synthetic_evaluations(), variants)),
        "robustness_gap": per_dataset(datasets, lambda d: gap_table(synthetic_evaluations(), variants, "fp32")),
        "mce": per_dataset(datasets, lambda d: mce_table(synthetic_evaluations(), variants, "fp32")),
        "int8": per_dataset(datasets, lambda d: synthetic_int8_comparison(summary[summary["dataset"] == d],
                                                                          synthetic_runs_of(d))),
        "corruption_examples": pd.DataFrame([
            {"dataset": d, "corruption": name, "level": level, "image": 0,
             "pixels": " ".join(str((i * (k + 3)) % 256) for i in range(784))}
            for d in datasets for k, (name, level) in enumerate((("clean", None), ("fog", 5), ("stripe", None)))]),
    }
    written = judge_tables(written, "fp32", ["bnn"])   # as aggregate writes them
    for name, table in written.items():
        table.to_csv(tables / f"{name}.csv", index=False)
    return written


# Accuracy under two corruptions per (variant, seed); the clean accuracies
# are synthetic_runs'. Under stripe bnn drops 20 pp more than fp32 on every
# seed (within 1 pp); under fog both drop alike.
CORRUPTED_ACCURACY = {
    ("fp32", "stripe"): [0.890, 0.891, 0.892], ("bnn", "stripe"): [0.680, 0.693, 0.683],
    ("fp32", "fog"): [0.500, 0.520, 0.480], ("bnn", "fog"): [0.490, 0.523, 0.473],
}


def synthetic_evaluations():
    """Every run's accuracy under each corruption (long form, as
    load_evaluations returns it for one dataset)."""
    runs = synthetic_runs().set_index(["variant", "seed"])
    rows = []
    for (variant, corruption), accuracies in CORRUPTED_ACCURACY.items():
        for seed, accuracy in enumerate(accuracies):
            if (variant, seed) not in runs.index:
                continue
            rows.append({"variant": variant, "seed": seed, "corruption": corruption,
                         "level": 5 if corruption == "fog" else None, "accuracy": accuracy,
                         "clean_accuracy": runs.at[(variant, seed), "test_accuracy"], "test_images": 10000,
                         "deployed_images": 2000, "deployed_accuracy": accuracy,
                         "deployed_agreement": 0.9995 if (variant, seed, corruption) == ("bnn", 1, "fog") else 1.0})
    return pd.DataFrame(rows)


def synthetic_curves(datasets=("mnist",)):
    """Three epochs of per-epoch accuracy and loss of three seeds of fp32
    and bnn, as the curves table holds them."""
    rows = []
    for offset, dataset in enumerate(datasets):
        for variant in ("fp32", "bnn"):
            for seed in (0, 1, 2):
                for epoch in (1, 2, 3):
                    for split in ("train", "validation"):
                        rows.append({"dataset": dataset, "variant": variant, "seed": seed, "epoch": epoch,
                                     "split": split, "accuracy": 0.9 - 0.1 * offset + 0.02 * epoch + 0.001 * seed,
                                     "loss": 0.5 / epoch})
    return pd.DataFrame(rows)


def synthetic_profiles():
    """The two variants' profile figures, as load_profiles returns them."""
    return pd.DataFrame({
        "variant": ["fp32", "bnn"], "params_total": [93770, 93556], "params_1bit": [0, 93088],
        "params_32bit": [93770, 468], "memory_kib": [366.2890625, 13.19140625],
        "fp32_equivalent_kib": [366.2890625, 365.453125], "macs_total": [2794240, 2794240],
        "macs_1bit": [0, 2599552], "macs_32bit": [2794240, 194688], "binarized_mac_fraction": [0.0, 0.930325240494732],
        "params_by_bitwidth": ["32-bit: 93770", "1-bit: 93088; 32-bit: 468"],
        "macs_by_precision": ["32-bit: 2794240", "1-bit: 2599552; 32-bit: 194688"],
    }).set_index("variant")


def randomized(model, seed=0):
    """Random weights everywhere, BN statistics included, so that the
    equivalence check is not helped by identity BN layers."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([
                rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if "variance" in v.name
                else rng.normal(0, 0.5, w.shape).astype(np.float32)
                for w, v in zip(weights, layer.weights, strict=True)
            ])
    return model


BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture
def rendered_dom():
    """A function page -> the DOM after a headless browser ran the page's
    scripts, with every host name unresolvable (no network). Skipped, with
    the reason, where no browser is installed (`.ci/run` installs Debian's
    chromium)."""
    import shutil

    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        import os

        reason = f"no headless browser ({', '.join(BROWSERS)}) on PATH; `.ci/run` installs chromium"
        if os.environ.get("BNN_STUDY_REQUIRE_BROWSER"):  # CI: never skipped in silence
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)

    def render(page: Path) -> str:
        result = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND",
             "--virtual-time-budget=15000", "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    return render


# ---------------------------------------------------------------------------
# The tiny study: this repository with tiny params, reproduced once per test
# session (once across pytest-xdist's workers) and copied for every test that
# runs DVC, so that no test depends on what another did or in which order.

def run_dvc(repo, *args, check=True, timeout=1200):
    import os
    import sys

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True,
                            timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def run_git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def set_params(repo, **changes):
    """Change params.yaml as DVC's `-S` does (ruamel's round trip, comments
    kept; a list in flow style, ``[a, b]``, as params.yaml and `-S` write
    them), so that an override of the same length keeps its byte length. (A
    list left in block style makes a later `-S` of the list before it write
    YAML that does not parse: ruamel's round trip as DVC 3.67 drives it.)"""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    path = repo / "params.yaml"
    round_trip = YAML()
    params = round_trip.load(path.read_text())
    for dotted, value in changes.items():
        *keys, last = dotted.split(".")
        node = params
        for key in keys:
            node = node[key]
        if isinstance(value, list):
            value = CommentedSeq(value)
            value.fa.set_flow_style()
        node[last] = value
    with path.open("w") as out:
        round_trip.dump(params, out)


# What the tiny study changes in params.yaml: the article's two networks,
# 2,000 training and test images, one epoch, one seed, three corruptions, a short benchmark. With fewer
# training images, one epoch leaves Fashion-MNIST's 1-bit net with batch-norm
# statistics so close to their start that LCE's conversion disagrees with
# Keras on 0.8% of test images, and `deploy` rightly refuses it.
TINY_PARAMS = {
    # the article's two networks and fp32's int8 and int4 forms: each mechanism is run once on the fewest runs (another
    # width under `dvc exp run`: tests/test_pipeline.py; the default study's own composition: tests/test_reruns.py)
    "study.variants": ["fp32", "bnn"], "int8.variants": ["fp32"], "int4.variants": ["fp32"],
    "int4.calibration_images": 100,
    "data.train_limit": 2000, "data.test_limit": 2000, "data.validation_images": 200, "recipes.article.epochs": 1,
    "study.seeds": [0],
    # no equal-flash twin in the tiny study (its `twins` stage then derives nothing); the twin's derivation is
    # tests/test_twins.py's
    "aggregate.same_flash": {},
    "data.sources.mnist": ["data/mnist-shipped"], "data.sources.fashion_mnist": ["data/fashion_mnist-shipped"],
    "robustness.corruptions": ["fog", "stripe", "rotate"],
    "benchmark.processes": 3, "benchmark.rounds": 2, "benchmark.calls_per_block": 10, "benchmark.warmup_calls": 2,
    # one epoch on 2,000 images leaves fp32's batch-norm statistics far from converged (about 18% test
    # accuracy): its int8 and int4 conversions' drops are noise that size
    "int8.max_accuracy_drop_pp": 5.0, "int4.max_accuracy_drop_pp": 5.0,
}


def _build_tiny_study(repo: Path) -> None:
    import shutil

    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if not (REPO / name).exists() or name == "dvc.lock" or (name.startswith("reports/")
                                                                 and name != "reports/.gitignore"):
            continue
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, repo / name)
    set_params(repo, **TINY_PARAMS)
    run_git(repo, "init", "-q")
    # DVC commits experiments itself: give the repository an identity of its own.
    run_git(repo, "config", "user.name", "bnn-study tests")
    run_git(repo, "config", "user.email", "tests@bnn-study.invalid")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", "study")
    result = run_dvc(repo, "repro")
    (repo.parent / "repro.log").write_text(result.stdout + result.stderr)
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", "reproduced")


@pytest.fixture(scope="session")
def study_template(tmp_path_factory):
    """The tiny study, reproduced and committed: read it, never change it
    (the `study` fixture gives a test its own copy). Built once per session,
    by whichever pytest-xdist worker asks first; a failed build fails every
    test that needs it with the build's own message."""
    import os

    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the session's workers
    home = root / "tiny-study"
    with FileLock(str(root / "tiny-study.lock")):
        failed = root / "tiny-study.failed"
        if failed.exists():
            pytest.fail(f"the tiny study could not be built: {failed.read_text()}", pytrace=False)
        if not (home / "repo" / ".built").exists():
            home.mkdir(exist_ok=True)
            try:
                _build_tiny_study(home / "repo")
            except BaseException as err:
                failed.write_text(str(err))
                raise
            (home / "repo" / ".git" / "info" / "exclude").write_text(".built\n")
            (home / "repo" / ".built").touch()
    return home / "repo"


def copy_study(template: Path, destination: Path) -> Path:
    """A working copy of ``template``: its files copied, its DVC cache hard
    linked (DVC writes a cache file once and never in place: a run adds new
    files, so the copies share the template's finished runs read-only)."""
    import shutil

    cache = Path(".dvc") / "cache"
    skipped = {template / cache, template / ".dvc" / "tmp", template / ".built"}
    shutil.copytree(template, destination, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if Path(folder) / n in skipped])
    subprocess.run(["cp", "-al", str(template / cache), str(destination / cache)], check=True)
    return destination


@pytest.fixture
def study(study_template, tmp_path):
    """This test's own copy of the tiny study."""
    return copy_study(study_template, tmp_path / "study")


def pytest_collection_modifyitems(config, items):
    """The DVC tests first (those that run whole pipelines, marked `heavy`,
    before the others), then the other slow ones, then the rest (each group
    in file order): pytest-xdist's work stealing splits the collection in
    halves and takes from the end of a worker's queue, so the long tests
    start early and the short ones fill in at the end, when the two workers
    finish together."""
    def rank(item):
        if item.get_closest_marker("dvc"):
            return 0 if item.get_closest_marker("heavy") else 1
        return 2 if item.get_closest_marker("slow") else 3

    items.sort(key=rank)  # stable: file order within a group


def pytest_collection_finish(session):
    """Once the test modules are imported (TensorFlow with some of them),
    what they made is put out of the garbage collector's sight
    (``gc.freeze``): a full collection otherwise walks every object
    TensorFlow made, about 0.2 s each, and statsmodels's Holm adjustment
    asks for one on every call."""
    import gc

    gc.collect()
    gc.freeze()
