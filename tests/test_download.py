import subprocess
import sys

import pytest
import yaml

from conftest import REPO, make_synthetic_mnist
from stages.lib.common import StudyError
from stages.download import BoundedDownloader, SourceError, decompress_verified, download, max_archive_bytes
from stages.lib.data.datasets import IdxFile


@pytest.fixture
def mirror(tmp_path):
    specs, arrays = make_synthetic_mnist(tmp_path / "good")
    return tmp_path / "good", specs, arrays


def _assert_served(out, arrays):
    from stages.lib.data.datasets import read_idx

    for name, array in arrays.items():
        assert (read_idx(out / name) == array).all()


def test_good_mirror_serves_every_file(tmp_path, mirror, serve_dir, caplog):
    folder, specs, arrays = mirror
    url = serve_dir(folder)
    caplog.set_level("INFO")
    served = download([url, str(tmp_path / "unused")], tmp_path / "out", files=specs, retries=0)
    assert served == {spec.name: url for spec in specs}
    _assert_served(tmp_path / "out", arrays)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(arrays)
    assert f"train-images-idx3-ubyte: verified sha256, served by {url}" in caplog.text


def test_corrupted_file_falls_through_to_next_source(tmp_path, mirror, serve_dir, caplog):
    folder, specs, arrays = mirror
    bad = tmp_path / "bad"
    make_synthetic_mnist(bad, seed=1)  # same shapes, other bytes: checksums differ
    caplog.set_level("INFO")
    bad_url, good_url = serve_dir(bad), serve_dir(folder)
    served = download([bad_url, good_url], tmp_path / "out", files=specs, retries=0)
    assert set(served.values()) == {good_url}
    _assert_served(tmp_path / "out", arrays)
    assert f"t10k-labels-idx1-ubyte.gz: skipping {bad_url}: checksum mismatch" in caplog.text


def test_truncated_gzip_falls_through(tmp_path, mirror, serve_dir, caplog):
    folder, specs, arrays = mirror
    broken = tmp_path / "broken"
    make_synthetic_mnist(broken)
    archive = broken / "train-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:-40])
    caplog.set_level("INFO")
    broken_url = serve_dir(broken)
    served = download([broken_url, str(folder)], tmp_path / "out", files=specs, retries=0)
    assert served["train-images-idx3-ubyte"] == str(folder)
    assert served["train-labels-idx1-ubyte"] == broken_url  # the intact files still come from it
    assert "skipping" in caplog.text and "not a valid gzip archive" in caplog.text
    _assert_served(tmp_path / "out", arrays)


def test_refused_connection_falls_back_and_is_not_asked_again(tmp_path, mirror, refused_url, caplog):
    folder, specs, arrays = mirror
    caplog.set_level("INFO")
    served = download([refused_url, str(folder)], tmp_path / "out", files=specs, retries=0)
    assert set(served.values()) == {str(folder)}
    assert caplog.text.count("connection refused") == 1
    _assert_served(tmp_path / "out", arrays)


def test_missing_file_on_http_mirror_falls_back(tmp_path, mirror, serve_dir, caplog):
    folder, specs, arrays = mirror
    partial = tmp_path / "partial"
    make_synthetic_mnist(partial)
    (partial / "t10k-images-idx3-ubyte.gz").unlink()
    caplog.set_level("INFO")
    url = serve_dir(partial)
    served = download([url, str(folder)], tmp_path / "out", files=specs, retries=0)
    assert served["t10k-images-idx3-ubyte"] == str(folder)
    assert "HTTP 404" in caplog.text


def test_every_source_bad_leaves_nothing(tmp_path, mirror, refused_url):
    _, specs, _ = mirror
    bad = tmp_path / "bad"
    make_synthetic_mnist(bad, seed=3)
    with pytest.raises(StudyError) as err:
        download([refused_url, str(bad), str(tmp_path / "nowhere")], tmp_path / "out", files=specs, retries=0)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("no source served a good train-images-idx3-ubyte.gz: ")
    assert f"{refused_url}: connection refused" in message
    assert f"{bad}: checksum mismatch" in message
    assert "nowhere" in message and "does not exist" in message
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_failed_download_keeps_previous_output_untouched(tmp_path, mirror, refused_url):
    folder, specs, arrays = mirror
    download([str(folder)], tmp_path / "out", files=specs)
    with pytest.raises(StudyError):
        download([refused_url], tmp_path / "out", files=specs, retries=0)
    _assert_served(tmp_path / "out", arrays)


def _run_stage(tmp_path, data_params, dataset="mnist"):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": data_params}))
    return subprocess.run(
        [sys.executable, "-m", "stages.download", "--dataset", dataset, "--params", str(params),
         "--out", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


def test_cli_every_source_bad_exits_nonzero_with_one_line(tmp_path, refused_url):
    result = _run_stage(tmp_path, {"sources": {"mnist": [refused_url, str(tmp_path / "empty")]}, "retries": 0})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no source served a good train-images-idx3-ubyte.gz" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "data_params, fragment",
    [
        ({"sources": {"mnist": []}}, "data.sources.mnist must be a non-empty list of URLs or folders"),
        ({"sources": {"mnist": "data/mnist-shipped"}}, "data.sources.mnist must be a non-empty list of URLs"),
        ({"sources": ["data/mnist-shipped"]}, "data.sources must map each dataset (mnist, fashion_mnist)"),
        ({"sources": {"fashion_mnist": ["data/fashion_mnist-shipped"]}}, "data.sources has no sources for mnist"),
        ({"sources": {"mnist": ["data/mnist-shipped"], "kmnist": ["x"]}}, "data.sources names unknown datasets kmnist"),
        ({"sources": {"mnist": ["data/mnist-shipped"]}, "retries": -1}, "data.retries must be a whole number"),
        ({"sources": {"mnist": ["data/mnist-shipped"]}, "timeout_s": 0}, "data.timeout_s must be a positive number"),
    ],
)
def test_cli_bad_params(tmp_path, data_params, fragment):
    result = _run_stage(tmp_path, data_params)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {fragment}")
    assert not (tmp_path / "out").exists()


def test_cli_unknown_dataset_is_refused(tmp_path):
    result = _run_stage(tmp_path, {"sources": {"mnist": ["data/mnist-shipped"]}}, dataset="cifar10")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == ("error: unknown dataset 'cifar10'; known datasets: mnist, "
                                                      "fashion_mnist")
    assert not (tmp_path / "out").exists()


def test_cli_a_dataset_s_files_never_pass_for_another_s(tmp_path):
    """MNIST's archives offered as Fashion-MNIST: every checksum differs."""
    result = _run_stage(tmp_path, {"sources": {"fashion_mnist": ["data/mnist-shipped"]}}, dataset="fashion_mnist")
    assert result.returncode == 1
    assert "no source served a good train-images-idx3-ubyte.gz: data/mnist-shipped: checksum mismatch" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_shipped_copy_names_its_source(tmp_path):
    result = _run_stage(tmp_path, {"sources": {"mnist": ["data/mnist-shipped"]}})
    assert result.returncode == 0, result.stderr
    assert "train-images-idx3-ubyte: verified sha256, served by data/mnist-shipped" in result.stderr
    assert len(list((tmp_path / "out").iterdir())) == 4


def _gzip_bomb(path, size):
    """A small ``.gz`` that inflates to ``size`` zero bytes."""
    import gzip

    block = bytes(1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as out:
        for _ in range(size // len(block)):
            out.write(block)


def test_gzip_bomb_stops_at_the_expected_size(tmp_path, mirror, caplog):
    folder, specs, arrays = mirror
    bombs = tmp_path / "bombs"
    make_synthetic_mnist(bombs)
    _gzip_bomb(bombs / "train-images-idx3-ubyte.gz", 256 << 20)  # 256 MiB for an expected 25 KiB
    caplog.set_level("INFO")
    served = download([str(bombs), str(folder)], tmp_path / "out", files=specs)
    assert served["train-images-idx3-ubyte"] == str(folder)
    expected = next(s for s in specs if s.name == "train-images-idx3-ubyte").size_bytes
    assert f"decompresses to more than the expected {expected} bytes (stopped there)" in caplog.text
    _assert_served(tmp_path / "out", arrays)


def test_decompression_never_writes_past_the_expected_size(tmp_path, monkeypatch):
    import builtins

    import stages.download

    _gzip_bomb(tmp_path / "bomb.gz", 64 << 20)
    written = []

    class Recorder:
        def __init__(self, path):
            self.file = builtins.open(path, "wb")

        def write(self, block):
            written.append(len(block))
            return self.file.write(block)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(stages.download, "open", lambda path, mode: Recorder(path), raising=False)
    with pytest.raises(SourceError, match="decompresses to more than the expected 1000 bytes"):
        decompress_verified(tmp_path / "bomb.gz", IdxFile("bomb", "0" * 64, 1000), tmp_path / "bomb")
    assert sum(written) <= 1000
    assert not (tmp_path / "bomb").exists()


def test_an_oversized_remote_archive_is_refused_before_it_is_stored(tmp_path, mirror, serve_dir, caplog):
    folder, specs, arrays = mirror
    big = tmp_path / "big"
    make_synthetic_mnist(big)
    spec = next(s for s in specs if s.name == "t10k-labels-idx1-ubyte")
    (big / spec.archive).write_bytes(bytes(max_archive_bytes(spec) + 1))
    caplog.set_level("INFO")
    url = serve_dir(big)
    served = download([url, str(folder)], tmp_path / "out", files=specs, retries=0)
    assert served[spec.name] == str(folder)
    assert f"serves {max_archive_bytes(spec) + 1} bytes, more than the {max_archive_bytes(spec)}" in caplog.text
    _assert_served(tmp_path / "out", arrays)


def test_a_stream_without_a_length_is_cut_at_the_bound(tmp_path):
    import http.server
    import threading

    class Endless(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # no Content-Length: the body ends when the connection closes

        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(bytes(1 << 16))
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SourceError, match="sent more than the 100000 bytes"):
            BoundedDownloader(100_000, timeout_s=10)(f"http://127.0.0.1:{server.server_address[1]}/x",
                                                    str(tmp_path / "x.gz"))
    finally:
        server.shutdown()
        server.server_close()
    assert (tmp_path / "x.gz").stat().st_size <= 100_000


def test_a_full_disk_stops_the_download_without_blaming_the_source(tmp_path, mirror, small_disk, caplog):
    folder, specs, arrays = mirror
    disk = small_disk(16)
    caplog.set_level("INFO")
    with pytest.raises(StudyError) as err:
        download([str(folder), str(tmp_path / "never-tried")], disk / "out", files=specs)
    message = str(err.value)
    assert "No space left on device; this machine's problem, not the source's: free some disk space" in message
    assert "skipping" not in caplog.text and "not a valid gzip" not in caplog.text
    assert list(disk.iterdir()) == []
