import pytest

from stages.lib.common import StudyError, atomic_directory, disk_full, load_params, run_cli, write_text_atomic


def test_atomic_directory_appears_whole(tmp_path):
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "a.txt").write_text("a")
        assert not (tmp_path / "out").exists()
    assert (tmp_path / "out" / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_interrupted_block_leaves_nothing_and_keeps_the_old_output(tmp_path):
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(tmp_path / "out") as staging:
            (staging / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_replacing_an_output_drops_its_old_files(tmp_path):
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "old.txt").write_text("old")
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_write_text_atomic_leaves_no_temporary(tmp_path):
    write_text_atomic(tmp_path / "r.md", "x")
    write_text_atomic(tmp_path / "r.md", "y")
    assert (tmp_path / "r.md").read_text() == "y"
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]


def test_run_cli_turns_a_study_error_into_one_line(capsys):
    def main(argv):
        raise StudyError("train.epochs must be a positive whole number, got 0")

    assert run_cli(main, []) == 1
    assert capsys.readouterr().err == "error: train.epochs must be a positive whole number, got 0\n"


def test_run_cli_reports_an_interruption(capsys):
    def main(argv):
        raise KeyboardInterrupt

    assert run_cli(main, []) == 130
    assert capsys.readouterr().err.startswith("error: interrupted")


@pytest.mark.parametrize("text, message", [
    (None, "not found"),
    ("a: [1, 2", "is not valid YAML"),
    ("- 1\n- 2\n", "must hold a mapping"),
])
def test_load_params_errors(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(StudyError, match=message):
        load_params(path)


def test_a_killed_writer_leaves_nothing_the_next_run_keeps(tmp_path):
    # What a SIGKILL mid-write leaves: hidden temporaries beside the outputs.
    (tmp_path / ".out.k1ll_3d1.tmp").mkdir()
    (tmp_path / ".out.k1ll_3d1.tmp" / "half.txt").write_text("half")
    (tmp_path / ".out.0ld_0ld0.old").mkdir()
    (tmp_path / ".r.md.abcdefgh.tmp").write_text("half")
    (tmp_path / ".out.x.abcdefgh.tmp").mkdir()  # another output's (`out.x`): not ours to remove
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "a.txt").write_text("a")
    write_text_atomic(tmp_path / "r.md", "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.x.abcdefgh.tmp", "out", "r.md"]


def test_disk_full_is_found_behind_wrapping_exceptions():
    import errno

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "model.keras")
        except OSError as err:
            raise RuntimeError("saving failed") from err
    except RuntimeError as wrapped:
        found = disk_full(wrapped)
    assert found.errno == errno.ENOSPC and found.filename == "model.keras"
    assert disk_full(ValueError("unrelated")) is None


def test_run_cli_turns_a_full_disk_into_one_line(capsys):
    import errno

    def main(argv):
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "data/models/x/model.keras")
        except OSError as err:
            raise ValueError("h5py could not write") from err

    assert run_cli(main, []) == 1
    assert capsys.readouterr().err == (
        "error: no space left on this machine's disk while writing data/models/x/model.keras: free some space and "
        "rerun; no output was marked finished\n")


def test_run_cli_lets_a_bug_through():
    def main(argv):
        raise ValueError("a bug, not a user error")

    with pytest.raises(ValueError):
        run_cli(main, [])


def test_outputs_are_readable_by_the_group_and_others_as_the_umask_allows(tmp_path):
    # mkstemp and mkdtemp create 0600 and 0700: the renamed output kept them
    import os
    import stat

    from stages.lib.common import atomic_directory, write_json_atomic

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "record.json", {"a": 1})
        with atomic_directory(tmp_path / "folder") as tmp:
            write_json_atomic(tmp / "inside.json", {"b": 2})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "record.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "folder" / "inside.json").stat().st_mode) == 0o644
