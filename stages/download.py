"""Stage `download`: fetch one dataset's four archives, decompress them and
verify each decompressed IDX file by its SHA-256 (see
:mod:`stages.lib.data.datasets`).

Sources are tried in the order ``data.sources.<dataset>`` gives: remote ones
(``http://``, ``https://``) through pooch, with retries and a progress bar;
anything else is a local folder holding the ``.gz`` archives (the verified
copy shipped in ``data/<dataset>-shipped`` is the last default source, so the
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

from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli
from stages.lib.data.datasets import MNIST_FILES, IdxFile, dataset
from stages.lib.params import download_settings


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


def _cannot_write(path: str | Path, err: OSError) -> StudyError:
    """A write that failed on this machine (a full disk, a read-only
    folder): the source is not to blame, so no other source is tried."""
    return StudyError(f"cannot write {path}: {err.strerror or err}; this machine's problem, not the source's: "
                      "free some disk space (or fix the folder's permissions) and rerun")


def max_archive_bytes(spec: IdxFile) -> int:
    """The largest ``.gz`` a good mirror can serve for ``spec``: gzip never
    grows data by more than a few bytes per 16 KiB block, so 1% more than the
    decompressed size plus a header's worth is a generous bound."""
    return spec.size_bytes + spec.size_bytes // 100 + 4096


class BoundedDownloader:
    """A pooch downloader: streams ``url`` into the file pooch names, with a
    progress bar, and refuses a response larger than ``max_bytes`` as soon
    as it says so or grows past it."""

    def __init__(self, max_bytes: int, timeout_s: float):
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def __call__(self, url: str, output_file: str, pooch_obj=None, check_only: bool = False) -> None:
        import requests
        from tqdm import tqdm

        with requests.get(url, stream=True, timeout=self.timeout_s) as response:
            response.raise_for_status()
            announced = int(response.headers.get("content-length") or 0)
            if announced > self.max_bytes:
                raise SourceError(f"serves {announced} bytes, more than the {self.max_bytes} a good archive can be")
            received = 0
            try:
                with open(output_file, "wb") as out, tqdm(total=announced or None, unit="B", unit_scale=True,
                                                          desc=url.rsplit("/", 1)[-1], leave=False) as bar:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        received += len(chunk)
                        if received > self.max_bytes:
                            raise SourceError(f"sent more than the {self.max_bytes} bytes a good archive can be")
                        out.write(chunk)
                        bar.update(len(chunk))
            except OSError as err:
                raise _cannot_write(output_file, err) from None


def _fetch_remote(base_url: str, spec: IdxFile, workdir: Path, retries: int, timeout_s: float) -> Path:
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")
    store = pooch.create(
        path=workdir,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        registry={spec.archive: None},
        retry_if_failed=retries,
    )
    try:
        return Path(store.fetch(spec.archive, downloader=BoundedDownloader(max_archive_bytes(spec), timeout_s)))
    except requests.HTTPError as err:
        raise SourceError(_short_reason(err)) from err
    except requests.RequestException as err:
        raise SourceError(_short_reason(err), unreachable=True) from err
    except OSError as err:
        raise _cannot_write(workdir / spec.archive, err) from None


def _fetch_local(folder: str, archive: str) -> Path:
    path = Path(urlparse(folder).path if folder.startswith("file:") else folder) / archive
    if not path.is_file():
        raise SourceError(f"{path} does not exist")
    return path


def decompress_verified(archive_path: Path, spec: IdxFile, dest: Path) -> None:
    """Decompress ``archive_path`` to ``dest`` while hashing; raise
    :class:`SourceError` (and leave no ``dest``) unless the bytes are exactly
    the ones ``spec`` names. Decompression stops as soon as the file grows
    past its expected size, so a gzip bomb never fills the disk. A failed
    write raises :class:`StudyError`: it is this machine's problem."""
    digest = hashlib.sha256()
    size = 0
    try:
        with gzip.open(archive_path, "rb") as src, open(dest, "wb") as out:
            while True:
                try:
                    block = src.read(min(1 << 20, spec.size_bytes - size + 1))
                except (OSError, EOFError, zlib.error) as err:
                    raise SourceError(f"not a valid gzip archive ({err})") from None
                if not block:
                    break
                size += len(block)
                if size > spec.size_bytes:
                    raise SourceError(f"decompresses to more than the expected {spec.size_bytes} bytes "
                                      "(stopped there): not the right file")
                digest.update(block)
                try:
                    out.write(block)
                except OSError as err:
                    raise _cannot_write(dest, err) from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
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
                remote = is_remote(source)
                try:
                    if remote:
                        archive_path = _fetch_remote(source, spec, Path(scratch), retries, timeout_s)
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
                    if remote:
                        (Path(scratch) / spec.archive).unlink(missing_ok=True)
                log.info("%s: verified sha256, served by %s", spec.name, source)
                served[spec.name] = source
                break
            else:
                raise StudyError(f"no source served a good {spec.archive}: " + "; ".join(failures))
    return served


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.download", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist", help="a dataset of stages.lib.data.datasets, e.g. fashion_mnist")
    parser.add_argument("--params", required=True, help="the slice of params.yaml it reads (data/spec/download/<dataset>.json)")
    parser.add_argument("--out", default="data/dataset/mnist/idx", help="folder for the verified IDX files")
    args = parser.parse_args(argv)
    spec = dataset(args.dataset)
    settings = download_settings(load_params(args.params), spec.name)
    served = download(settings.sources, args.out, files=spec.files, retries=settings.retries,
                      timeout_s=settings.timeout_s)
    log.info("%s ready in %s (%s)", spec.title, args.out, ", ".join(sorted(set(served.values()))))


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
