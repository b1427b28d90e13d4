"""`treasure report RUN_ID --html`: one self-contained, deterministic page holding the plots."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from test_ops_support import clean_ws, json_out, make_ws, run_cli, templates  # noqa: F401
from treasure.ops.html_report import build_html, decimate


class Page(HTMLParser):
    """Collects what the tests look at: element ids, svg count per figure, external references."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: dict[str, str] = {}
        self.svgs_in: dict[str, int] = {}
        self.paths = 0
        self.external: list[str] = []
        self.tags: set[str] = set()
        self.figure: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if "id" in attrs and tag in ("figure", "span"):
            self.ids[attrs["id"]] = tag
        if tag == "figure":
            self.figure = attrs.get("id")
        if tag == "svg" and self.figure:
            self.svgs_in[self.figure] = self.svgs_in.get(self.figure, 0) + 1
        if tag == "path" and self.figure:
            self.paths += 1
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)

    def handle_endtag(self, tag):
        if tag == "figure":
            self.figure = None


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def test_report_holds_the_plots_and_tables(clean_ws, capsys):
    assert run_cli(clean_ws, "report", "clean", "--html", "--json") == 0
    path = clean_ws.root / json_out(capsys)["path"]
    assert path == clean_ws.run_reports("clean") / "report.html"
    text = path.read_text()
    page = parse(text)
    assert page.svgs_in == {"equity-plot": 1, "drawdown-plot": 1} and page.paths > 10
    assert page.ids["verdict"] == "span" and "COMPLETE" in text
    assert "script" not in page.tags and page.external == []  # self-contained: no network, no scripts
    assert "<h2>Fills (" in text and "order_filled" not in text  # fills are a table, not raw events
    assert "data_gap_detected" not in text and "DATA_GAP" in text  # findings by code, with actions
    assert "re-fetch or interpolate data" in text


def test_report_is_deterministic(clean_ws):
    assert build_html(clean_ws, "clean") == build_html(clean_ws, "clean")


def test_report_of_a_halted_run_with_gates_and_recon(make_ws):
    ws = make_ws("halted")
    (ws.evidence_dir / "gates.json").write_text('{"gates": [{"name": "e2", "status": "passed"}]}')
    (ws.run_reports("halted") / "recon_report.json").write_text(
        '{"run_id": "halted", "matched": 2, "mismatched_orders": 1, "halt": {"triggered": false},'
        ' "mismatches": [{"code": "PRICE_MISMATCH", "order_id": "o1"}]}')
    text = build_html(ws, "halted")
    assert "HALTED" in text and "daily_loss_limit" in text and "PRICE_MISMATCH" in text
    assert '<span class="tag passed">passed</span>' in text and "breach" in text


def test_report_without_court_report(clean_ws, capsys):
    (clean_ws.run_reports("clean") / "court_report.json").unlink()
    assert run_cli(clean_ws, "report", "clean", "--html") == 2
    err = capsys.readouterr().err
    assert "error[REPORT_MISSING]" in err and "Traceback" not in err


def test_report_with_broken_equity_curve(clean_ws):
    (clean_ws.run_reports("clean") / "equity.npy").write_bytes(b"not numpy")
    text = build_html(clean_ws, "clean")
    assert "plots not available: EVIDENCE_INVALID" in text and "equity-plot" not in text


def test_report_needs_html_flag_and_safe_out(clean_ws, capsys, tmp_path):
    assert run_cli(clean_ws, "report", "clean") == 2 and "--html" in capsys.readouterr().err
    out = tmp_path / "elsewhere" / "r.html"
    assert run_cli(clean_ws, "report", "clean", "--html", "--out", str(out)) == 0 and out.is_file()


def test_decimate_keeps_extremes():
    x = np.arange(100_000)
    y = np.sin(x / 500.0)
    y[12_345] = 9.0
    y[77_777] = -9.0
    dx, dy = decimate(x, y, 3000)
    assert len(dx) <= 3001 and dy.max() == 9.0 and dy.min() == -9.0 and dx[-1] == x[-1]
    assert np.all(np.diff(dx) > 0)


CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium") or "")
                 if p and Path(p).exists()), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: headless rendering not checked here")
def test_report_renders_in_a_headless_browser(clean_ws, tmp_path):
    path = clean_ws.run_reports("clean") / "report.html"
    path.write_text(build_html(clean_ws, "clean"))
    shot = tmp_path / "shot.png"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                           "--window-size=1200,2000", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert shot.stat().st_size > 20_000  # the page, with its plots, was painted
