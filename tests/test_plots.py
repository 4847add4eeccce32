import pytest

from conftest import write_synthetic_tables
from stages.lib.common import StudyError
from stages.plots import draw_all

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("datasets", [("mnist",), ("mnist", "fashion_mnist")])
def test_every_plot_is_drawn(tmp_path, datasets):
    tables = tmp_path / "tables"
    write_synthetic_tables(tables, datasets)
    names = draw_all(tables, tmp_path / "plots")
    assert names == ["accuracy_by_variant.png", "accuracy_vs_binarized_macs.png", "accuracy_vs_latency.png",
                     "accuracy_vs_memory.png", "accuracy_vs_training_time.png", "confusion_difference.png", "flash_vs_ram.png", "tax_by_dataset.png",
                     "training_curves.png"]
    for name in names:
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == PNG and len(data) > 10_000


def test_missing_tables_leave_no_plots(tmp_path):
    with pytest.raises(StudyError, match=r"runs.csv is missing: run `dvc repro aggregate`"):
        draw_all(tmp_path, tmp_path / "plots")
    assert not (tmp_path / "plots").exists()


def test_a_damaged_table_leaves_no_plots(tmp_path):
    tables = tmp_path / "tables"
    runs = write_synthetic_tables(tables)["runs"]
    runs.drop(columns=["test_accuracy"]).to_csv(tables / "runs.csv", index=False)
    with pytest.raises(StudyError, match=r"KeyError: 'test_accuracy'\): rerun `dvc repro aggregate`"):
        draw_all(tables, tmp_path / "plots")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tables"]


def test_the_same_tables_give_the_same_png_bytes(tmp_path):
    tables = tmp_path / "tables"
    write_synthetic_tables(tables, ("mnist", "fashion_mnist"))
    draw_all(tables, tmp_path / "first")
    draw_all(tables, tmp_path / "second")
    assert len(list((tmp_path / "first").iterdir())) == 9
    for png in (tmp_path / "first").iterdir():
        assert png.read_bytes() == (tmp_path / "second" / png.name).read_bytes(), png.name
