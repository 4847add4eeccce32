"""Where the study's outputs live, by the names that make them.

DVC turns the names in params.yaml (datasets, variants, seeds) into output
paths, and `dvc exp run` checks those outputs out, deleting whatever stands
at them, before `check` can refuse a name. So every output whose path
carries a name ends in a fixed leaf: ``data/models/<run>/keras``, never
``data/models/<run>``. Whatever a name holds (``..``, ``x/../../stages``),
the path it makes ends in one of the leaves below, and no file or folder of
the repository bears one of those names: a name can only make DVC delete a
path that does not exist (tests pin both).

The fan-in stages (`benchmark`, `aggregate`) read each run's folder by the
same helpers, so a leaf is named once, here.
"""

from __future__ import annotations

from pathlib import Path

# output root (as dvc.yaml spells it) -> the leaf every named output under it ends in
DATASETS = "data/dataset"
MODELS = "data/models"
DEPLOYED = "data/deployed"
CORRUPTED = "data/corrupted"
PROFILES = "reports/profiles"
RUNS = "reports/runs"
DEPLOY_RECORDS = "reports/deploy"
ROBUSTNESS = "reports/robustness"
LEAVES = {
    DATASETS: "idx",
    MODELS: "keras",
    DEPLOYED: "tflite",
    CORRUPTED: "images",
    PROFILES: "profile",
    RUNS: "live",
    DEPLOY_RECORDS: "record",
    ROBUSTNESS: "evaluation",
}

# The roots a fan-in stage depends on whole: each must hold the study's own
# folders and nothing else, or its hash (and so the lock and the run cache)
# would follow what other experiments left in the workspace.
FAN_IN_ROOTS = (DEPLOYED, DEPLOY_RECORDS, RUNS, PROFILES, ROBUSTNESS, CORRUPTED)


def output(root: str | Path, name: str, kind: str | None = None) -> Path:
    """The output of ``name`` (a run, a dataset or a variant) under ``root``:
    ``root/name/<leaf>``, the leaf being that of ``kind`` (one of the roots
    above; by default ``root`` itself, as dvc.yaml spells it)."""
    return Path(root) / name / LEAVES[str(kind or root)]


def dataset_dir(name: str, root: str | Path = DATASETS) -> Path:
    """A dataset's folder of verified IDX files."""
    return output(root, name, DATASETS)


def corrupted_dir(name: str, root: str | Path = CORRUPTED) -> Path:
    """A dataset's folder of corrupted test images."""
    return output(root, name, CORRUPTED)


def _cached(folder: Path) -> bool:
    """Whether every file under ``folder`` is in DVC's cache (by the MD5 of
    its bytes, as DVC 3 stores it), so that removing the folder from the
    workspace loses nothing: `dvc checkout` (or a `dvc repro` whose study
    includes it again) brings it back."""
    import hashlib

    from dvc.repo import Repo

    files = [path for path in folder.rglob("*") if path.is_file()]
    with Repo(".") as repo:
        cache = repo.cache.local
        for path in files:
            digest = hashlib.md5(path.read_bytes()).hexdigest()
            if not Path(cache.oid_to_path(digest)).is_file():
                return False
    return True


def tidy(expected: dict[str, set[str]], top: str | Path = ".") -> list[Path]:
    """Leave each fan-in root (:data:`FAN_IN_ROOTS`, under ``top``) holding
    the folders ``expected`` names and nothing else: a folder another
    experiment left there goes, once every file of it is found in DVC's
    cache; one that is not in the cache stops the study with one line, and
    then nothing is removed (removing it could lose work). Hidden entries (an
    interrupted write's ``.*.tmp``) are the writers' own to clear. Returns
    the folders removed."""
    import shutil

    removable, kept = [], []
    for root in FAN_IN_ROOTS:
        folder = Path(top) / root
        if not folder.is_dir():
            continue
        for child in sorted(folder.iterdir()):
            if child.name.startswith(".") or child.name in expected.get(root, set()):
                continue
            (removable if child.is_dir() and _cached(child) else kept).append(child)
    if kept:
        from stages.lib.common import StudyError

        raise StudyError(f"{', '.join(map(str, kept))} {'is' if len(kept) == 1 else 'are'} not part of the study and "
                         "not in DVC's cache: move it out of the study's output folders (the tables depend on them "
                         "whole)")
    for child in removable:
        shutil.rmtree(child)
    return removable
