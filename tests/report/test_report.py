"""``physflow report``: one self-contained HTML file per run or scan, checked as HTML and in a
real headless Chromium (node count and statuses rendered, no console errors, screenshot kept)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from physflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"

#: tone -> noisy -> power, and tone -> check (fails) -> after (skipped): every status
SPEC = """\
name: mixed
seed: 1
stages:
  tone: {stage: demo.tone, config: {n_samples: 256}}
  noisy: {stage: demo.add_noise, config: {sigma: 0.1}, inputs: {signal: tone}}
  power: {stage: demo.power, inputs: {signal: noisy}}
  check: {stage: "tests.cli.cli_stages:explode", config: {when_above: 0.5}, inputs: {signal: tone}}
  after: {stage: demo.power, inputs: {signal: check}}
"""


class _Links(HTMLParser):
    """Every URL the page would load (src/href/url(...)): a self-contained page has none."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href") and value and not value.startswith("#"):
                self.urls.append(value)


@pytest.fixture
def mixed_run(tmp_path, capsys):
    """A run with hit, miss, failed and skipped nodes, and its manifest (as JSON)."""
    spec = tmp_path / "mixed.yaml"
    spec.write_text(SPEC)
    store = str(tmp_path / "store")
    assert main(["run", str(spec), "--store", store, "-q", "--set", "noisy.sigma=0.2"]) == 1
    assert main(["run", str(spec), "--store", store, "-q"]) == 1
    out = capsys.readouterr().out
    manifest = json.loads(Path(out.rsplit("manifest: ", 1)[1].split()[0]).read_text())
    return store, manifest


def _report(store: str, ref: str, path: Path, capsys) -> str:
    assert main(["report", ref, "-o", str(path), "--store", store]) == 0
    assert f"report: {path}" in capsys.readouterr().out
    return path.read_text(encoding="utf-8")


def test_run_report_is_self_contained_html(mixed_run, tmp_path, capsys):
    store, manifest = mixed_run
    html = _report(store, "latest", tmp_path / "run.html", capsys)
    parser = _Links()
    parser.feed(html)
    assert parser.urls == [] and not re.search(r"url\((?!#)", html)
    assert "link" not in parser.tags and "img" not in parser.tags
    statuses = {n["id"]: n["status"] for n in manifest["nodes"]}
    assert statuses == {
        "tone": "hit", "noisy": "miss", "power": "miss", "check": "failed", "after": "skipped",
    }  # fmt: skip
    for node, status in statuses.items():
        assert f'data-node="{node}" data-status="{status}"' in html
        assert f'id="node-{node}" class="{status}" data-status="{status}"' in html
    assert "config changed: sigma 0.2 -&gt; 0.1" in html  # why noisy ran (against run 1)
    assert "ValueError: peak" in html and "Traceback" in html  # the failure and its traceback
    assert manifest["environment"]["python"] in html and manifest["run_id"] in html


def test_scan_report_has_points_and_an_inline_plot(tmp_path, capsys):
    store = str(tmp_path / "store")
    args = ["scan", str(DEMO), "--grid", "noisy.sigma=log:0.01:1:5", "--store", store, "-q"]
    assert main(args) == 0
    html = _report(store, "latest", tmp_path / "scan.html", capsys)
    assert len(re.findall(r'<tr id="point-\d+" class="ok"', html)) == 5
    plot = html[html.index('<div class="plot">') :]
    assert plot.startswith('<div class="plot"><svg') and "</svg>" in plot
    assert "power" in plot and "noisy.sigma" in html


def test_report_usage_errors(tmp_path, capsys):
    store = str(tmp_path / "store")
    assert main(["report", "latest", "--store", store, "-o", str(tmp_path / "r.html")]) == 2
    assert "no manifests" in capsys.readouterr().err
    missing = str(tmp_path / "nope.json")
    assert main(["report", missing, "--store", store, "-o", str(tmp_path / "r.html")]) == 2
    assert not (tmp_path / "r.html").exists()


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_run_report_in_headless_chromium(browser, mixed_run, tmp_path, capsys):
    from selenium.webdriver.common.by import By

    store, manifest = mixed_run
    path = tmp_path / "run.html"
    _report(store, "latest", path, capsys)
    browser.get(path.resolve().as_uri())
    nodes = browser.find_elements(By.CSS_SELECTOR, "svg.dag g.node")
    assert len(nodes) == len(manifest["nodes"]) == 5
    drawn = {g.get_attribute("data-node"): g.get_attribute("data-status") for g in nodes}
    assert drawn == {n["id"]: n["status"] for n in manifest["nodes"]}
    assert all(g.is_displayed() for g in nodes)
    colours = {
        g.get_attribute("data-status"): g.find_element(By.TAG_NAME, "rect").get_attribute("fill")
        for g in nodes
    }
    assert len(set(colours.values())) == 4  # hit, ran, failed, skipped: four colours
    rows = browser.find_elements(By.CSS_SELECTOR, "table.nodes tbody tr")
    assert [r.get_attribute("data-status") for r in rows] == [
        n["status"] for n in manifest["nodes"]
    ]
    edges = browser.find_elements(By.CSS_SELECTOR, "svg.dag path.edge")
    assert len(edges) == 4
    nodes[3].click()  # the failed node selects its table row
    selected = browser.find_elements(By.CSS_SELECTOR, "tr.selected")
    assert [r.get_attribute("id") for r in selected] == ["node-check"]
    assert _console_errors(browser) == []
    shot = tmp_path / "run-report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_scan_report_in_headless_chromium(browser, tmp_path, capsys):
    from selenium.webdriver.common.by import By

    store = str(tmp_path / "store")
    args = ["scan", str(DEMO), "--grid", "noisy.sigma=0.1,0.5", "--grid", "seed=1,2"]
    assert main([*args, "--store", store, "-q"]) == 0
    path = tmp_path / "scan.html"
    _report(store, "latest", path, capsys)
    browser.get(path.resolve().as_uri())
    statuses = [
        g.get_attribute("data-status")
        for g in browser.find_elements(By.CSS_SELECTOR, "svg.dag g.node")
    ]
    assert statuses == ["hit", "miss", "miss"] or statuses == ["miss", "miss", "miss"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.points tbody tr")) == 4
    plot = browser.find_element(By.CSS_SELECTOR, ".plot svg")
    assert plot.is_displayed() and plot.size["width"] > 200
    assert _console_errors(browser) == []
    shot = tmp_path / "scan-report.png"
    assert browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
