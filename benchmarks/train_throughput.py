"""Training speed of the train stage's path against the article's plain
``model.fit``: the first epoch's overhead and the steady-state throughput.

Two paths on the same variant, data and batch size (64):

- ``plain``: the article's code, ``model.fit`` on in-memory arrays, Keras's
  defaults (AutoGraph converts the training step while tracing it);
- ``pipeline``: what ``stages.train`` runs: the steps traced without
  AutoGraph, the ``tf.data`` input pipeline, ``steps_per_execution``, and
  the stage's divergence guard.

Every fit runs in a fresh Python process, as a stage does, so the first
epoch pays all tracing and start-up (TensorFlow caches conversions inside a
process, which would flatter whichever path came second). The two paths
alternate within each round, and their order flips from round to round, so
that the machine's load falls on both alike; ratios are paired by round.

Printed per variant, round and path: the first epoch's overhead (first
epoch minus the fastest later one, seconds) and the steady-state training
images per second (median of the later epochs); then per variant the
paired pipeline/plain ratios of both, and their median over rounds.

    python benchmarks/train_throughput.py [--images 60000] [--epochs 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def fit_once(path: str, variant_name: str, params_path: str, data: str, images: int, epochs: int) -> dict:
    """One fit in this process; the seconds of each epoch, as JSON-ready."""
    import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
    import tensorflow as tf

    from stages.lib.common import load_params
    from stages.lib.data.datasets import load_split, scale_images
    from stages.lib.training.networks import build_model
    from stages.lib.training.variants import variant_from_params
    from stages.lib.params import train_settings
    from stages.lib.training.recipes import recipe_from_params
    from stages.lib.training.trained import without_autograph
    from stages.train import DivergenceGuard, compile_model, set_determinism, training_dataset

    class EpochTimes(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.seconds.append(now - self._start)
            self._start = now

    params = load_params(params_path)
    settings = train_settings(params)
    variant = variant_from_params(variant_name, params["variants"])
    recipe = recipe_from_params(variant.recipe, params["recipes"])
    x, y = load_split(data, "train", images)
    x = scale_images(x, variant.input_range)
    set_determinism(0)
    clock = EpochTimes()
    if path == "plain":
        model = build_model(variant, recipe.batchnorm_momentum)
        model.compile(optimizer=tf.keras.optimizers.Adam(recipe.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, batch_size=recipe.batch_size, epochs=epochs, callbacks=[clock], verbose=0)
    else:
        model = without_autograph(build_model(variant, recipe.batchnorm_momentum))
        compile_model(model, recipe, settings, steps_per_epoch=-(-len(x) // recipe.batch_size))
        model.fit(training_dataset(x, y, recipe.batch_size, 0), epochs=epochs,
                  callbacks=[clock, DivergenceGuard(variant_name)], verbose=0)
    return {"epoch_s": clock.seconds, "images": len(x)}


def run_worker(path: str, variant: str, args) -> dict:
    command = [sys.executable, __file__, "--worker", path, "--variant", variant, "--params", args.params,
               "--data", args.data, "--images", str(args.images), "--epochs", str(args.epochs)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{path} {variant} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarize(fit: dict) -> tuple[float, float]:
    """First-epoch overhead (s) and steady images per second of one fit.
    The overhead is the first epoch minus the fastest later one (a later
    epoch may include a stall; the first epoch's extra is tracing and
    start-up); the steady rate is the median of the later epochs, stalls
    included, as a run pays them."""
    first, later = fit["epoch_s"][0], fit["epoch_s"][1:]
    return first - min(later), fit["images"] / statistics.median(later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/dataset/mnist/idx")
    parser.add_argument("--images", type=int, default=60000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit; the first is the overhead's")
    parser.add_argument("--rounds", type=int, default=2, help="fits per path and variant, interleaved")
    parser.add_argument("--variants", nargs="+", default=["bnn", "fp32"])
    parser.add_argument("--worker", choices=["plain", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not steady")
    if args.worker:
        print(json.dumps(fit_once(args.worker, args.variant, args.params, args.data, args.images, args.epochs)))
        return

    print(f"{args.images} images, {args.epochs} epochs per fit, {args.rounds} rounds; each fit in a fresh process")
    print(f"{'variant':<8} {'round':>5} {'path':<9} {'1st-epoch overhead s':>21} {'steady img/s':>13}")
    for variant in args.variants:
        overhead_ratios, steady_ratios = [], []
        for round_ in range(args.rounds):
            order = ("plain", "pipeline") if round_ % 2 == 0 else ("pipeline", "plain")
            measured = {}
            for path in order:
                measured[path] = summarize(run_worker(path, variant, args))
                print(f"{variant:<8} {round_ + 1:>5} {path:<9} {measured[path][0]:>21.1f} {measured[path][1]:>13.0f}",
                      flush=True)
            overhead_ratios.append(measured["plain"][0] / measured["pipeline"][0])
            steady_ratios.append(measured["pipeline"][1] / measured["plain"][1])
        print(f"{variant:<8} steady-state ratio pipeline/plain: median {statistics.median(steady_ratios):.2f} "
              f"(rounds: {', '.join(f'{r:.2f}' for r in steady_ratios)}); first-epoch overhead plain/pipeline: "
              f"median {statistics.median(overhead_ratios):.1f}x", flush=True)


if __name__ == "__main__":
    main()
