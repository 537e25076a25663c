"""`nas report`: one self-contained page per run (search, retrain, correlate) and a comparison page, checked in a
real headless browser where Chromium is installed (CI installs Debian's `chromium`): the page renders, is not
blank, every image decoded, and the key numbers are in the text."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nascli.rundir import RunDir
from nascli.spaces.base import SPACES, load_space_plugins
from tests.conftest import TINY

load_space_plugins()

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs it)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A digits search, two retrains of its best architectures, and their correlation."""
    from typer.testing import CliRunner

    from nascli.cli import app

    root = tmp_path_factory.mktemp("report_runs")
    runner = CliRunner()

    def nas(*args):
        res = runner.invoke(app, [*map(str, args), "--run-root", str(root)])
        assert res.exit_code == 0, res.output
        return res

    nas("search", *TINY)
    search = RunDir.latest(root, "search")
    nas("retrain", search.path, "--top", "3", *TINY)
    nas("correlate", search.path)
    return root


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file() and p.name != ".lock"}


def test_report_pages_hold_the_runs_numbers_and_change_nothing_else(cli, runs):
    kinds = {kind: sorted((runs / kind).iterdir()) for kind in ("search", "retrain", "correlate")}
    before = {p: _files(p) for paths in kinds.values() for p in paths}
    res = cli("report", *[p for paths in kinds.values() for p in paths], "--run-root", runs)
    assert res.exit_code == 0, res.output
    for path, files in before.items():
        after = _files(path)
        added = set(after) - set(files)
        assert added <= {"report.html", "plots/cell_normal.svg", "plots/cell_reduce.svg"} and "report.html" in added
        assert all(after[name] == data for name, data in files.items())  # the run's own files are untouched
    search = RunDir.open(kinds["search"][0])
    page = (search.path / "report.html").read_text()
    # self-contained: nothing to fetch (namespace names like xmlns="http://www.w3.org/2000/svg" fetch nothing)
    assert "<script" not in page and not any(f'{a}="http' in page for a in ("src", "href", "xlink:href"))
    best = search.manifest["summary"]["best_score"]
    assert f"{best:.4g}" in page and search.manifest["summary"]["best_arch_id"] in page
    assert (search.path / "plots" / "cell_normal.svg").read_text().startswith("<svg")
    correlation = json.loads((kinds["correlate"][0] / RunDir.CORRELATION).read_text())
    tau = correlation["results"][0]["kendall_tau"]
    assert f"{tau:.4g}" in (kinds["correlate"][0] / "report.html").read_text()
    result = json.loads((kinds["retrain"][0] / RunDir.RESULT).read_text())
    assert f"{result['test_acc']:.4g}" in (kinds["retrain"][0] / "report.html").read_text()
    comparison = next((runs / "report").iterdir()) / "report.html"
    assert comparison.is_file() and all(p.name in comparison.read_text() for paths in kinds.values() for p in paths)
    # A search's score (val) and a retrain's test accuracy are different things: never one column.
    assert "search: best score (val)" in comparison.read_text() and "retrain: test acc" in comparison.read_text()
    assert ">best score</th>" not in comparison.read_text()


def test_report_of_a_missing_run_is_one_line(cli, tmp_path):
    res = cli("report", tmp_path / "nope", "--run-root", tmp_path)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "does not exist" in res.stderr
    res = cli("report", "--run-root", tmp_path)
    assert res.exit_code == 2 and "no run under" in res.stderr


# Test-only probe, added to a copy of the page: after load, count the images the browser could not decode.
PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;
  const svgs = [...document.querySelectorAll('svg')].filter(s => s.getBoundingClientRect().width > 0).length;
  const rows = [...document.querySelectorAll('tbody tr, table > tr')].map(r => r.getBoundingClientRect().height);
  const line = parseFloat(getComputedStyle(document.body).fontSize) * 1.2;
  document.body.setAttribute('data-probe', JSON.stringify({images: imgs.length, broken, svgs,
    width: document.documentElement.scrollWidth, tallest_row: Math.max(0, ...rows), line}));
});</script>"""


def assert_fits(probe: dict, page: str) -> None:
    """The page fits a 1280-pixel window with no horizontal scrolling, and every table row is one line."""
    assert probe["width"] <= 1280, (page, probe)
    assert probe["tallest_row"] <= 2 * probe["line"] + 4, (page, probe)  # one line of text plus cell padding


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=120)


@needs_browser
def test_reports_render_in_a_real_browser(cli, runs, tmp_path):
    from PIL import Image

    # The same first run of each kind is reported and then opened: iterdir's order is the file system's, not sorted.
    first = {kind: sorted((runs / kind).iterdir())[0] for kind in ("search", "retrain", "correlate")}
    res = cli("report", *first.values(), "--run-root", runs)
    assert res.exit_code == 0, res.output
    search = RunDir.open(first["search"])
    correlation = json.loads((first["correlate"] / RunDir.CORRELATION).read_text())
    expected = {"search": f"{search.manifest['summary']['best_score']:.4g}",
                "correlate": f"{correlation['results'][0]['kendall_tau']:.4g}"}
    for kind in ("search", "retrain", "correlate"):
        page = first[kind] / "report.html"
        probed = tmp_path / f"{kind}.html"
        probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
        dom = _chromium("--dump-dom", "--window-size=1280,1600", probed.as_uri())
        assert dom.returncode == 0, dom.stderr[-2000:]
        probe = json.loads(dom.stdout.split('data-probe="', 1)[1].split('"', 1)[0].replace("&quot;", '"'))
        assert probe["broken"] == 0 and probe["images"] + probe["svgs"] >= 1, (kind, probe)
        assert_fits(probe, kind)
        assert kind != "search" or probe["svgs"] >= 2  # the normal and reduce cells were drawn
        if kind in expected:
            assert expected[kind] in dom.stdout
        shot = tmp_path / f"{kind}.png"
        res = _chromium(f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
        assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
        pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
        assert pixels.std() > 10, f"{kind} report looks blank"  # text, tables and figures, not a white page
        assert (pixels < 128).mean() > 0.005


def _text_overlaps(fig) -> list[tuple[str, str]]:
    import itertools

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for ax in fig.axes for t in ax.texts]
    found = []
    for a, b in itertools.combinations(texts, 2):
        x, y = a.get_window_extent(renderer), b.get_window_extent(renderer)
        if min(x.x1, y.x1) - max(x.x0, y.x0) > 1 and min(x.y1, y.y1) - max(x.y0, y.y0) > 1:
            found.append((a.get_text(), b.get_text()))
    return found


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_cell_diagrams_have_no_overlapping_labels(space_name):
    """Every op label and node box of a cell diagram stands apart, at the size the report draws it."""
    import random

    import matplotlib.pyplot as plt

    from nascli.config import compose
    from nascli.reporting.cells import cell_figures
    from nascli.spaces.base import get_space

    space = get_space(space_name, compose("search", [f"space={space_name}"]).space)
    rng = random.Random(0)
    for _ in range(15):
        for cell_type, fig in cell_figures(space.sample(rng)).items():
            overlaps = _text_overlaps(fig)
            plt.close(fig)
            assert not overlaps, (space_name, cell_type, overlaps)
