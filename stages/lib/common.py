"""Pieces every stage shares: user-facing errors, the command-line runner,
atomic output writing, params loading and logging."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("bnn-study")


class StudyError(Exception):
    """An error the user can cause and fix (a bad param, a missing or corrupt
    input): reported as one line, without a traceback."""


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(err: BaseException) -> OSError | None:
    """The "no space left" error behind ``err``, if any: libraries (Keras,
    h5py, zipfile) wrap the ``OSError`` of a full disk in their own
    exceptions, so the whole chain of causes is searched."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            return err
        if "No space left on device" in str(err):
            return OSError(errno.ENOSPC, "No space left on device")
        err = err.__cause__ or err.__context__
    return None


MESSAGE_CHARS = 1000


def run_cli(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> int:
    """Run a stage's ``main``; a :class:`StudyError` or a full disk becomes
    one line on stderr and exit status 1."""
    setup_logging()
    try:
        main(argv)
    except StudyError as err:
        message = str(err)
        # a value a user typed can be megabytes long: one line quotes its start only
        if len(message) > MESSAGE_CHARS:
            message = message[:MESSAGE_CHARS] + f" ... ({len(message) - MESSAGE_CHARS} more characters cut)"
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; no output was marked finished", file=sys.stderr)
        return 130
    except Exception as err:
        full = disk_full(err)
        if full is None:
            raise
        where = f" while writing {full.filename}" if full.filename else ""
        print(f"error: no space left on this machine's disk{where}: free some space and rerun; "
              "no output was marked finished", file=sys.stderr)
        return 1
    return 0


class _ParamsLoader(yaml.SafeLoader):
    """YAML 1.1's safe loader, reading ``5e-4`` and ``1e9`` as numbers, as
    YAML 1.2 and DVC's own params parser (``-S``, ``dvc params diff``) do:
    YAML 1.1 wants a dot (``5.0e-4``) and would read them as strings."""


_ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml, or a slice of it that `check` wrote as JSON."""
    path = Path(path)
    try:
        with path.open() as fh:
            params = json.load(fh) if path.suffix == ".json" else yaml.load(fh, Loader=_ParamsLoader)
    except FileNotFoundError:
        raise StudyError(f"{path} not found: run the stage from the repository root, after `check` "
                         "(`dvc repro` runs it first)") from None
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StudyError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}"
                         .replace("\n", " ")) from None
    if not isinstance(params, dict):
        raise StudyError(f"{path} must hold a mapping of param sections")
    return params


def remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed earlier write of ``path`` left beside it (the
    hidden ``.<name>.*.tmp`` and ``.<name>.*.old`` of the writers below).
    DVC runs one stage at a time per workspace, and each output has one
    writer, so nothing else is writing these."""
    # tempfile's names: the prefix, eight random letters, digits or _, the suffix.
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.(tmp|old)")
    for stale in path.parent.iterdir():
        if pattern.fullmatch(stale.name):
            log.info("removing %s, left by an interrupted earlier run", stale)
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink(missing_ok=True)


def _temporary_sibling(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would outlive the rename
    return Path(tmp)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file, no file,
    or the whole new file: never a partial one."""
    path = Path(path)
    tmp = _temporary_sibling(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; when the block ends
    without an exception it replaces ``path`` whole, otherwise it is removed
    and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would outlive the rename
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
