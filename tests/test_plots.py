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
                     "accuracy_vs_memory.png", "confusion_difference.png",
                     "corruption_examples.png", "flash_vs_ram.png", "robustness_gaps.png", "tax_by_dataset.png",
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
    assert len(list((tmp_path / "first").iterdir())) == 10
    for png in (tmp_path / "first").iterdir():
        assert png.read_bytes() == (tmp_path / "second" / png.name).read_bytes(), png.name


def _widened(tables, datasets):
    """The synthetic tables with the study's 13 extended variants: each new
    variant a copy of bnn's rows (shifted a little, so that the points do not
    all coincide), its network and recipe as params.yaml defines them."""
    import pandas as pd
    import yaml

    from conftest import REPO
    from stages.lib.analysis.recipe_effects import training_table

    written = write_synthetic_tables(tables, datasets)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    extended = params["study"]["extended"]
    training = training_table(params["variants"], params["recipes"], extended)
    for name, table in written.items():
        if "variant" not in table or name in ("article",):
            continue
        copies = []
        for index, variant in enumerate(v for v in extended if v not in ("fp32", "bnn")):
            copy = table[table["variant"] == "bnn"].copy()
            copy["variant"] = variant
            for column in ("test_accuracy", "test_accuracy_mean", "test_accuracy_ci95_low",
                           "test_accuracy_ci95_high"):
                if column in copy:
                    copy[column] = copy[column] - 0.001 * index
            for column in ("memory_kib", "tflite_kib", "latency_median_us", "train_time_s", "train_time_s_mean"):
                if column in copy:
                    copy[column] = copy[column] * (1 + 0.02 * index)
            copies.append(copy)
        table = pd.concat([table, *copies], ignore_index=True)
        if name == "summary":
            for column in ("architecture", "recipe", "epochs"):
                table[column] = table["variant"].map(training[column])
        table.to_csv(tables / f"{name}.csv", index=False)
    return extended


def assert_readable(name, fig):
    """No two legend entries share colour and marker, every legend sits
    outside every panel, no accuracy axis passes 100%, every label and title
    is whole inside the figure and no two axes' labels collide."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert not box.overlaps(ax.get_window_extent(renderer)), (name, ax.get_title())
        pairs = [(str(h.get_color()), h.get_marker(), h.get_linestyle())
                 for h in legend.legend_handles if hasattr(h, "get_marker")]
        assert len(pairs) == len(set(pairs)), name
    if name not in ("confusion_difference.png", "corruption_examples.png", "robustness_gaps.png"):  # colour bars
        assert legends or name == "accuracy_by_variant.png", f"{name} has no legend"
    for ax in fig.axes:
        if "accuracy" in ax.get_ylabel():
            assert ax.get_ylim()[1] <= 100, (name, ax.get_title())
    # every label and title is whole inside the figure (a colour bar's label was cut), and no two axes'
    # labels collide (the latency panels' were)
    page = fig.bbox.expanded(1.01, 1.01)
    labels = []
    for ax in fig.axes:
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
            if text.get_text():
                box = text.get_window_extent(renderer)
                assert page.contains(box.x0, box.y0) and page.contains(box.x1, box.y1), (name, text.get_text())
                labels.append((ax, box, text.get_text()))
    for i, (ax, box, text) in enumerate(labels):
        for other, other_box, other_text in labels[i + 1:]:
            assert other is ax or not box.overlaps(other_box), (name, text, other_text)
    # no variant's mean marker hidden under another's (fp32 under fp32+int8 in the MAC figure was), and no
    # name over another (eleven names stacked near 93% of MACs binarized were)
    from stages.lib.reporting.figures import HIDDEN, MEAN_MARKER

    width = MEAN_MARKER * fig.dpi / 72
    for ax in fig.axes:
        centres = [ax.transData.transform(point) for line in ax.lines
                   if line.get_markersize() == MEAN_MARKER and line.get_marker() not in ("None", "", None, "_", "|")
                   for point in line.get_xydata()]
        for i, centre in enumerate(centres):
            for other in centres[i + 1:]:
                assert not (abs(centre - other) < HIDDEN * width).all(), (name, ax.get_title(), "a marker hidden")
        boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in ax.texts if text.get_text()]
        for i, (text, box) in enumerate(boxes):
            for other_text, other_box in boxes[i + 1:]:
                assert not box.overlaps(other_box), (name, ax.get_title(), text, other_text)
    # the figure's own title runs into no legend (the latency figure's ran into the legend's title)
    if fig._suptitle is not None and fig._suptitle.get_text():
        box = fig._suptitle.get_window_extent(renderer)
        assert page.contains(box.x0, box.y0) and page.contains(box.x1, box.y1), (name, "title")
        for legend in legends:
            assert not box.overlaps(legend.get_window_extent(renderer)), (name, "title over the legend")
    import matplotlib.pyplot as plt
    plt.close(fig)


@pytest.mark.parametrize("variants", [2, 13])
def test_every_figure_reads_at_2_and_13_variants(tmp_path, variants):
    """No two legend entries share colour and marker, every legend sits
    outside every panel, and no accuracy axis passes 100%."""
    from stages.lib.reporting.figures import variant_styles
    from stages.plots import figures
    from stages.lib.analysis.tables import read_table

    tables = tmp_path / "tables"
    datasets = ("mnist", "fashion_mnist")
    if variants == 2:
        write_synthetic_tables(tables, datasets)
    else:
        _widened(tables, datasets)
    summary = read_table(tables, "summary")
    assert summary["variant"].nunique() == variants
    styles = variant_styles(summary)
    assert len({(style.color, style.marker) for style in styles.values()}) == variants
    for name, draw in figures(tables).items():
        fig = draw()
        width, height = fig.get_size_inches() * fig.dpi
        if name != "corruption_examples.png":  # one image per corruption: a strip by design, 1,170 px wide
            assert width / height < 3.6, (name, width, height)  # no strip too wide to read at a page's width
        assert_readable(name, fig)



def test_the_frontier_figure_reads_at_3_families_4_widths_2_datasets():
    """Each family one line through its widths, no two families sharing a
    colour and marker, on every panel of both datasets."""
    import pandas as pd

    from stages.lib.reporting.width_figures import FRONTIER_AXES, family_styles, frontier_figure

    rows = []
    for dataset, shift in (("mnist", 0.0), ("fashion_mnist", -0.1)):
        for family, size, accuracy in (("fp32", 360.0, 0.990), ("fp32+int8", 100.0, 0.989), ("bnn", 18.0, 0.980)):
            for width in (0.25, 0.5, 1.0, 2.0):
                mean = accuracy + shift - 0.01 * (2.0 - width)
                rows.append({"dataset": dataset, "family": family, "width": width, "variant": f"{family}_w{width:g}",
                             "seeds": 3, "test_accuracy_mean": mean, "test_accuracy_ci95_low": mean - 0.002,
                             "test_accuracy_ci95_high": mean + 0.002, "tflite_kib": size * width ** 1.8 + 2,
                             "ram_kib": 100 * width, "latency_median_us": 40 * width, "latency_rerun95_low": 39 * width,
                             "latency_rerun95_high": 41 * width})
    frontier = pd.DataFrame(rows)
    styles = family_styles(frontier)
    assert len({(style.color, style.marker) for style in styles.values()}) == 3
    fig = frontier_figure(frontier, "a test CPU")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2 * len(FRONTIER_AXES)
    for ax in panels:
        assert len(ax.lines) >= 3 and ax.get_xscale() == "log"
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["fp32", "fp32+int8", "bnn"]
    assert_readable("frontier.png", fig)


def test_the_accuracy_cost_figure_holds_one_kind_of_interval_a_panel_and_cuts_an_outlying_one():
    """Primaries and exploratory comparisons in their own panels, each named
    by the interval it holds; one variant's interval of +-20 pp (iso-size's
    bnn_w2 flattened every other to a line) is cut at the edge and its ends
    written there, the others keeping the axis."""
    import pandas as pd

    from stages.plots import tax_by_dataset

    rows = []
    for dataset in ("mnist", "fashion_mnist"):
        for variant, family, gap, half in (("bnn", "primary", -1.0, 0.3), ("fp32_w0.5", "exploratory", -0.3, 0.4),
                                           ("fp32+int8", "exploratory", 0.0, 0.1), ("bnn_w2", "exploratory", -5.0, 20.0)):
            rows.append({"dataset": dataset, "variant": variant, "baseline": "fp32", "seeds": 3,
                         "accuracy_gap_vs_baseline": gap / 100, "accuracy_gap_adj_low": (gap - half) / 100,
                         "accuracy_gap_adj_high": (gap + half) / 100, "accuracy_gap_family": family,
                         "accuracy_gap_family_size": 2 if family == "primary" else 3})
    fig = tax_by_dataset(pd.DataFrame(rows))
    primary, exploratory = fig.axes
    assert primary.get_title().startswith("Primary (Holm over 2)")
    assert exploratory.get_title().startswith("Exploratory: simultaneous\n(Bonferroni over 3)")
    assert [t.get_text() for t in primary.get_xticklabels()] == ["bnn"]
    assert [t.get_text() for t in exploratory.get_xticklabels()] == ["fp32_w0.5", "fp32+int8", "bnn_w2"]
    low, high = primary.get_ylim()
    assert -8 < low < -5 and 0 < high < 2  # every gap shown (bnn_w2 at -5 pp), its interval cut, not +-25 pp
    assert sorted(t.get_text() for t in exploratory.texts) == ["to +15.0", "to +15.0", "to -25.0", "to -25.0"]
    assert_readable("tax_by_dataset.png", fig)
