import pytest

from stages.common import StudyError, atomic_directory, load_params, run_cli, write_text_atomic


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
