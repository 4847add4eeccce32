"""Stage `corrupt`: write corrupted copies of one dataset's test split, one
IDX file per corruption (uint8 28x28 images, the clean split's format), and
a manifest of their levels, seed and checksums, with the clean first test
image (the figure of what each corruption does shows it beside them).

The corruptions are MNIST-C's plus contrast and inversion
(:mod:`stages.lib.data.corruptions`). Every random draw comes from a generator
seeded by (seed, corruption, image), so the files are the same bytes on
every rerun and every machine. No network is involved: the `robustness`
stage evaluates each run on these files.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages.lib.common import atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.data.corruptions import corrupt
from stages.lib.data.datasets import dataset as registered_dataset
from stages.lib.data.datasets import encode_idx, load_split
from stages.lib.layout import dataset_dir
from stages.lib.params import data_limits
from stages.lib.data.robustness import EXAMPLE_IMAGE, MANIFEST_FILE, corrupted_file
from stages.lib.settings.robustness import robustness_settings


def _write_one(images, name: str, level: int | None, seed: int, path: Path) -> str:
    data = encode_idx(corrupt(images, name, level, seed))
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def corrupt_dataset(params: dict[str, Any], data_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Corrupt the test split in ``data_dir`` (its first ``data.test_limit``
    images) with every corruption of ``params``; write the files and the
    manifest into ``out_dir`` whole, and return the manifest."""
    settings = robustness_settings(params)
    _, test_limit = data_limits(params)
    images, _ = load_split(data_dir, "test", test_limit)
    manifest: dict[str, Any] = {"seed": settings.seed, "test_images": len(images), "corruptions": {},
                                "example": {"image": EXAMPLE_IMAGE, "pixels": images[EXAMPLE_IMAGE].ravel().tolist()}}
    start = time.perf_counter()
    # One corruption a process, on every core: each image's draws depend on
    # its own seed only, so the bytes do not depend on who computes them.
    # Started fresh (spawn), not forked: a process that has loaded
    # TensorFlow (a test worker, a notebook) holds threads and locks that a
    # forked child inherits in whatever state they were, and such children
    # died at random in the test suite.
    with atomic_directory(out_dir) as tmp, ProcessPoolExecutor(
            max_workers=os.cpu_count(), mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = {name: pool.submit(_write_one, images, name, level, settings.seed, Path(tmp) / corrupted_file(name))
                for name, level in settings.levels.items()}
        for name, job in jobs.items():
            manifest["corruptions"][name] = {"level": settings.levels[name], "sha256": job.result()}
        write_json_atomic(Path(tmp) / MANIFEST_FILE, manifest)
    log.info("%d corruptions of %d images in %.1f s", len(jobs), len(images), time.perf_counter() - start)
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.corrupt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--params", help="the slice of params.yaml it reads (default: data/spec/corrupt/<dataset>.json)")
    parser.add_argument("--data", help="folder of the dataset's verified files (default: data/dataset/<dataset>/idx)")
    parser.add_argument("--out", required=True, help="folder for the corrupted test images")
    args = parser.parse_args(argv)
    registered_dataset(args.dataset)
    params = load_params(args.params or f"data/spec/corrupt/{args.dataset}.json")
    manifest = corrupt_dataset(params, args.data or dataset_dir(args.dataset), args.out)
    log.info("%s: %d corruptions of %d test images in %s", args.dataset, len(manifest["corruptions"]),
             manifest["test_images"], args.out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
