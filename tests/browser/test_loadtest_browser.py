"""``%loadtest`` in JupyterLab, in a real browser: the live plot while the test runs, then the
report (its plot image loaded, the steps table aligned, the finding shown). See conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import JupyterServer, screenshot, start_run_all
from tests.browser.test_views_browser import _notebook, open_notebook

nbformat = pytest.importorskip("nbformat")

CELLS = [
    "%config DurableLab.db_path = '.durable/engine.db'\n%load_ext kernel_ext",
    "view = %loadtest run --steps 4:3s,8:3s --processes 1 --activity-latency 50ms --name browser\nview",
    'print("LOAD" + " DONE")',
]

LIVE = """() => {
    const bar = document.querySelector('.jp-OutputArea-output progress');
    if (!bar) return false;
    const area = bar.closest('.jp-OutputArea');
    const image = area && area.querySelector('.jp-RenderedImage img');
    return !!(image && image.complete && image.naturalWidth > 0);
}"""

REPORT = """() => {
    const report = document.querySelector('.dlab-loadtest');
    if (!report) return null;
    report.scrollIntoView();
    const image = report.querySelector('img');
    const cells = Array.from(report.querySelectorAll('table.dlab-load tbody tr:first-child td'));
    return {
        finding: report.querySelector('.finding') ? report.querySelector('.finding').innerText : report.innerText.slice(0, 200),
        loaded: !!(image && image.complete && image.naturalWidth > 0),
        width: image ? image.getBoundingClientRect().width : 0,
        aligns: cells.map((cell) => getComputedStyle(cell).textAlign),
        first: cells.length ? cells[0].innerText : '',
    };
}"""


def test_loadtest_shows_live_plots_then_the_report(lab: JupyterServer, page: Any) -> None:
    name = _notebook(Path(lab.root) / "loadtest.ipynb", CELLS)
    open_notebook(lab, page, name)
    # Not awaited: execute's promise settles only when every cell has run, and the live view
    # is to be seen while the test cell runs.
    start_run_all(page, lab, name)
    # While the test runs: the progress line and the live plot (an image) under the cell.
    page.wait_for_function(LIVE, polling=100, timeout=90_000)
    screenshot(page, "loadtest-live", page.locator(".jp-OutputArea-output progress").first)
    run_all_done = page.get_by_text("LOAD DONE", exact=True)
    run_all_done.wait_for(timeout=120_000)
    report = page.evaluate(REPORT)
    assert report is not None, "no load test report on the page"
    screenshot(page, "loadtest-report", page.locator(".dlab-loadtest").first)
    assert report["loaded"] and report["width"] > 400, report
    assert report["first"] == "4/s for 3 s" and report["aligns"][0] == "left" and set(report["aligns"][1:]) == {"right"}, report
    assert "runs/s" in report["finding"], report


def test_the_stored_tutorial_shows_its_reports_untrusted(lab: JupyterServer, page: Any) -> None:
    """Tutorial 10 as cloned (not run, so not trusted): its reports' plots are images, which
    the sanitizer keeps, and its steps tables show."""
    source = Path(__file__).resolve().parents[2] / "notebooks" / "tutorials" / "10-load-testing.ipynb"
    (Path(lab.root) / source.name).write_bytes(source.read_bytes())
    open_notebook(lab, page, source.name)
    page.locator(".dlab-loadtest img").first.wait_for(timeout=60_000)
    reports = page.evaluate("""() => Array.from(document.querySelectorAll('.dlab-loadtest'), (report) => {
        report.scrollIntoView();
        const image = report.querySelector('img');
        return {loaded: !!(image && image.complete && image.naturalWidth > 0), rows: report.querySelectorAll('table tbody tr').length};
    })""")
    screenshot(page, "loadtest-tutorial-stored", page.locator(".dlab-loadtest").first)
    # one, two and slow (three steps each), then part 5's test on a Temporal dev server (one step)
    assert len(reports) == 4 and all(r["loaded"] for r in reports), reports
    assert [r["rows"] >= 3 for r in reports] == [True, True, True, False], reports
    served = page.evaluate("""() => {
        const report = Array.from(document.querySelectorAll('.dlab-loadtest')).pop();
        report.scrollIntoView();
        const heads = Array.from(report.querySelectorAll('table thead th'), (th) => th.innerText);
        const cells = Array.from(report.querySelectorAll('table tbody tr:first-child td'), (td) => td.innerText);
        return {text: report.innerText, lock: cells[heads.indexOf('lock wait s/s')]};
    }""")
    screenshot(page, "loadtest-tutorial-temporal", page.locator(".dlab-loadtest").last)
    assert "Not measured on this target: write-lock wait" in served["text"] and "Temporal at 127.0.0.1:" in served["text"], served
    assert served["lock"] == "-", served
