"""The page `dvc plots show` fills draws its Vega plots with no network."""

import hashlib
import importlib.util
import json
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


def _page_repo(tmp_path, datasets, variants):
    """A fresh DVC repository with this project's `.dvc/` page, templates and
    config, its `plots:` definitions, and the two tables they read, as the
    aggregate stage writes them for a study of ``datasets`` x ``variants``
    (the summary with post-training forms among its rows)."""
    from stages.aggregate import mean_curves

    shutil.copytree(REPO / ".dvc" / "plots", tmp_path / ".dvc" / "plots")
    shutil.copy2(REPO / ".dvc" / "config", tmp_path / ".dvc" / "config")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    tables = tmp_path / "reports" / "tables"
    tables.mkdir(parents=True)
    curves = pd.DataFrame([{"dataset": d, "variant": v, "seed": seed, "epoch": epoch, "split": split,
                            "accuracy": 0.97 - 0.1 * i - 0.01 * j + 0.003 * epoch, "loss": 0.5 / epoch}
                           for i, d in enumerate(datasets) for j, v in enumerate(variants) for seed in (0, 1)
                           for epoch in (1, 2, 3) for split in ("train", "validation")])
    mean_curves(curves).to_csv(tables / "mean_curves.csv", index=False)
    forms = [f"{variants[0]}+int8"]
    pd.DataFrame([{"dataset": d, "variant": v, "seeds": 2, "tflite_kib": 18.8 * 2 ** j,
                   "test_accuracy_mean": 0.98 - 0.1 * i - 0.01 * j,
                   "test_accuracy_ci95_low": 0.975 - 0.1 * i - 0.01 * j,
                   "test_accuracy_ci95_high": 0.985 - 0.1 * i - 0.01 * j}
                  for i, d in enumerate(datasets) for j, v in enumerate([*variants, *forms])]
                 ).to_csv(tables / "summary.csv", index=False)
    return plots


def test_dvc_plots_show_follows_the_study_s_networks_and_datasets_zoomed_to_the_data(tmp_path):
    """Every network and dataset of the study on the page (none named by
    hand in `dvc.yaml`), one colour a network, one panel a dataset, each
    accuracy axis zoomed to its data rather than run from 0 to 1."""
    datasets, variants = ["mnist", "fashion_mnist"], ["fp32", "bnn", "fp32_w0.352", "bnn_w2"]
    plots = _page_repo(tmp_path, datasets, variants)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["data"]
    assert len(shown) == len(plots)
    for (title, [plot]) in shown.items():
        spec = plot["content"]
        drawn = {(point["dataset"], point["variant"]) for point in spec["data"]["values"]}
        expected = {(d, v) for d in datasets for v in variants}
        if "flash" in title:  # the summary: the post-training forms too
            expected |= {(d, "fp32+int8") for d in datasets}
        assert drawn == expected, title
        assert spec["facet"]["column"]["field"] == "dataset" and spec["resolve"]["scale"]["y"] == "independent"
        encoding = json.dumps(spec["spec"])
        assert '"color": {"field": "variant"' in encoding, title
        y_scales = re.findall(r'"y": \{"field": "[^"]+", "type": "quantitative"[^}]*"scale": (\{[^}]*\})', encoding)
        assert y_scales and all(json.loads(scale)["zero"] is False for scale in y_scales), title
        assert "<DVC_METRIC" not in json.dumps(spec), title
    tradeoff = next(plot["content"] for title, [plot] in shown.items() if "flash" in title)
    assert tradeoff["spec"]["encoding"]["x"]["scale"]["type"] == "log"  # 6 KiB to 370 KiB


def test_dvc_plots_show_draws_the_plots_offline(tmp_path, rendered_dom):
    """The project's own `plots:` definitions and templates, in a fresh DVC
    repository with this project's `.dvc/config` and page."""
    plots = _page_repo(tmp_path, ["mnist", "fashion_mnist"], ["fp32", "bnn"])
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
