"""Stage `download`: fetch the four MNIST archives, decompress them and
verify each decompressed IDX file by its SHA-256.

Sources are tried in the order ``data.sources`` gives: remote ones
(``http://``, ``https://``) through pooch, with retries and a progress bar;
anything else is a local folder holding the ``.gz`` archives (the verified
copy shipped in ``data/mnist-shipped`` is the last default source, so the
study runs offline with no setting changed). A source that fails or serves a
file whose checksum differs is skipped with one log line, and the next one is
tried; a source that cannot be reached at all is not asked again.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlparse

from stages.common import StudyError, atomic_directory, load_params, log, run_cli
from stages.mnist import MNIST_FILES, IdxFile


class SourceError(Exception):
    """A source could not serve a good copy of one file."""

    def __init__(self, reason: str, unreachable: bool = False):
        super().__init__(reason)
        self.unreachable = unreachable


def is_remote(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def _short_reason(err: Exception) -> str:
    import requests

    if isinstance(err, requests.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason}"
    text = str(err)
    for marker, reason in (
        ("Failed to resolve", "host name does not resolve (offline?)"),
        ("Name or service not known", "host name does not resolve (offline?)"),
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
    ):
        if marker in text:
            return reason
    return f"{type(err).__name__}: {text}"[:200]


def _fetch_remote(base_url: str, archive: str, workdir: Path, retries: int, timeout_s: float) -> Path:
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")
    store = pooch.create(
        path=workdir,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        registry={archive: None},
        retry_if_failed=retries,
    )
    downloader = pooch.HTTPDownloader(progressbar=True, timeout=timeout_s)
    try:
        return Path(store.fetch(archive, downloader=downloader))
    except requests.HTTPError as err:
        raise SourceError(_short_reason(err)) from err
    except requests.RequestException as err:
        raise SourceError(_short_reason(err), unreachable=True) from err


def _fetch_local(folder: str, archive: str) -> Path:
    path = Path(urlparse(folder).path if folder.startswith("file:") else folder) / archive
    if not path.is_file():
        raise SourceError(f"{path} does not exist")
    return path


def decompress_verified(archive_path: Path, spec: IdxFile, dest: Path) -> None:
    """Decompress ``archive_path`` to ``dest`` while hashing; raise
    :class:`SourceError` (and leave no ``dest``) unless the bytes are exactly
    the ones ``spec`` names."""
    digest = hashlib.sha256()
    size = 0
    try:
        with gzip.open(archive_path, "rb") as src, open(dest, "wb") as out:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
                out.write(block)
    except (OSError, EOFError, zlib.error) as err:
        dest.unlink(missing_ok=True)
        raise SourceError(f"not a valid gzip archive ({err})") from None
    if digest.hexdigest() != spec.sha256:
        dest.unlink(missing_ok=True)
        raise SourceError(
            f"checksum mismatch: decompressed {size} bytes with sha256 {digest.hexdigest()[:16]}..., "
            f"expected {spec.size_bytes} bytes with sha256 {spec.sha256[:16]}..."
        )


def download(
    sources: Sequence[str],
    out_dir: str | Path,
    files: Iterable[IdxFile] = MNIST_FILES,
    retries: int = 2,
    timeout_s: float = 30.0,
) -> dict[str, str]:
    """Fill ``out_dir`` with the verified, decompressed ``files``; return
    which source served each one. ``out_dir`` appears only once every file is
    verified; on failure a :class:`StudyError` lists every source's reason."""
    if not sources:
        raise StudyError("data.sources is empty: list at least one mirror or folder")
    served: dict[str, str] = {}
    unreachable: dict[str, str] = {}
    with atomic_directory(out_dir) as staging, tempfile.TemporaryDirectory() as scratch:
        for spec in files:
            failures = []
            for source in sources:
                if source in unreachable:
                    failures.append(f"{source}: {unreachable[source]}")
                    continue
                try:
                    if is_remote(source):
                        archive_path = _fetch_remote(source, spec.archive, Path(scratch), retries, timeout_s)
                    else:
                        archive_path = _fetch_local(source, spec.archive)
                    decompress_verified(archive_path, spec, staging / spec.name)
                except SourceError as err:
                    log.info("%s: skipping %s: %s", spec.archive, source, err)
                    failures.append(f"{source}: {err}")
                    if err.unreachable:
                        unreachable[source] = str(err)
                    continue
                finally:
                    if is_remote(source):
                        (Path(scratch) / spec.archive).unlink(missing_ok=True)
                log.info("%s: verified sha256, served by %s", spec.name, source)
                served[spec.name] = source
                break
            else:
                raise StudyError(f"no source served a good {spec.archive}: " + "; ".join(failures))
    return served


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.download", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml", help="params file (reads the `data` section)")
    parser.add_argument("--out", default="data/mnist", help="folder for the verified IDX files")
    args = parser.parse_args(argv)
    data = load_params(args.params).get("data") or {}
    sources = data.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
        raise StudyError("data.sources must be a list of URLs or folders")
    retries = data.get("retries", 2)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise StudyError(f"data.retries must be a whole number >= 0, got {retries!r}")
    timeout_s = data.get("timeout_s", 30)
    if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
        raise StudyError(f"data.timeout_s must be a positive number of seconds, got {timeout_s!r}")
    served = download(sources, args.out, retries=retries, timeout_s=float(timeout_s))
    log.info("MNIST ready in %s (%s)", args.out, ", ".join(sorted(set(served.values()))))


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
