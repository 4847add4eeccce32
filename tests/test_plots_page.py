"""The page `dvc plots show` fills draws its Vega plots with no network."""

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import yaml

from conftest import REPO

PAGE = REPO / ".dvc" / "plots" / "offline.html"


def _builder():
    spec = importlib.util.spec_from_file_location("build_page", PAGE.with_name("build_page.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_config_points_dvc_at_the_offline_page():
    config = (REPO / ".dvc" / "config").read_text()
    assert re.search(r"^\[plots\]\s*\n\s*html_template = plots/offline.html$", config, re.M)


def test_the_page_loads_no_remote_script_and_holds_the_pinned_builds():
    page = PAGE.read_text(encoding="utf-8")
    assert "{plot_divs}" in page and "{scripts}" not in page  # DVC adds its CDN tags only at {scripts}
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"https?://[^\"' ]*\.js\b", page)
    blocks = re.findall(r"<!-- (\S+)@(\S+) (\S+) sha256=([0-9a-f]{64}) [^>]*-->\s*<script>(.*?)</script>", page, re.S)
    pinned = [(name, version, member.removeprefix("package/")) for name, version, member, _ in _builder().PACKAGES]
    assert [(name, version, member) for name, version, member, _, _ in blocks] == pinned
    for name, _, _, sha256, source in blocks:
        assert hashlib.sha256(source.encode("utf-8")).hexdigest() == sha256, name
    notice = (REPO / "NOTICE").read_text()
    for name, version, _ in pinned:
        assert f"{name} {version}" in notice


def test_dvc_plots_show_draws_the_training_curves_offline(tmp_path, rendered_dom):
    """The project's own `plots:` definitions on small curve files, in a
    fresh DVC repository with this project's `.dvc/config` and page."""
    shutil.copytree(REPO / ".dvc" / "plots", tmp_path / ".dvc" / "plots")
    shutil.copy2(REPO / ".dvc" / "config", tmp_path / ".dvc" / "config")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    for plot in plots:
        (definition,) = plot.values()
        for path, column in definition["y"].items():
            file = tmp_path / path
            file.parent.mkdir(parents=True, exist_ok=True)
            x = definition["x"]
            frame = pd.DataFrame({x: [1, 2, 3], column: [0.9, 0.95, 0.97]}) if not file.exists() else \
                pd.read_csv(file).assign(**{column: [0.9, 0.95, 0.97]})
            frame.to_csv(file, index=False)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", "page"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    html = tmp_path / "page" / "index.html"
    assert "cdn.jsdelivr" not in html.read_text(encoding="utf-8")
    dom = rendered_dom(html)
    # vega-embed draws each plot into a canvas of class "marks"; a failed spec
    # leaves an error message and no canvas
    assert dom.count('class="marks"') == len(plots), dom[:2000]
