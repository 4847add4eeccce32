"""The README copies no number by hand: every figure of its answer is found
in the report, metrics or page it cites, and it stays what a newcomer needs."""

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# a figure as the reports print it: a signed or unsigned decimal with its unit
FIGURE = re.compile(r"[+-]?\d[\d,]*\.\d+ ?(?:%|pp|KiB|x|µs)")


def _answer() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("## The answer\n", 1)[1].split("\n## ", 1)[0]


def _metrics_as_printed() -> str:
    """Every number of the committed default study's metrics, in each way
    the reports print one."""
    printed = []

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            printed.extend([f"{100 * value:.2f}%", f"{100 * value:+.2f} pp", f"{value:.2f} KiB", f"{value:.1f} µs",
                            f"{value:.2f}x"])

    walk(json.loads((REPO / "reports" / "metrics.json").read_text()))
    return "\n".join(printed)


def _sources(answer: str) -> str:
    """The text of every file the answer cites (reports, pages), and the
    default study's metrics as printed."""
    cited = set(re.findall(r"`((?:reports|docs)/[^`]+\.(?:md|json))`", answer))
    assert "reports/metrics.json" in cited
    texts = [_metrics_as_printed()]
    for path in sorted(cited):
        if path == "reports/report.md":  # written by `dvc repro`, not committed: its figures are the metrics'
            continue
        assert (REPO / path).exists(), f"the README cites {path}, which does not exist"
        texts.append((REPO / path).read_text())
    return "\n".join(texts)


def test_every_figure_of_the_readme_s_answer_is_in_a_source_it_cites():
    answer = _answer()
    sources = " ".join(_sources(answer).split())
    figures = FIGURE.findall(answer)
    assert len(figures) >= 20  # the answer's table and bullets, not an empty match
    missing = [figure for figure in figures if figure not in sources]
    assert not missing, f"README figures found in no source it cites: {missing}"


def test_the_readme_keeps_to_what_a_newcomer_needs():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    # the two commands come first
    commands = [line for line in text.splitlines()[:25] if line.startswith("python3.11 -m venv")]
    assert len(commands) == 2 and commands[0].endswith("dvc repro") and commands[1].endswith("python -m pytest")
    # every page it points to exists
    for page in re.findall(r"`(docs/[^`]+\.md)`", text):
        assert (REPO / page).exists(), page
