"""`treasure report RUN_ID --html`: one self-contained, deterministic page holding the plots."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from helpers.ops_support import clean_ws, json_out, make_ws, run_cli, templates  # noqa: F401
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


def test_report_defaults_to_html_and_writes_where_asked(clean_ws, capsys, tmp_path):
    assert run_cli(clean_ws, "report", "clean") == 0  # HTML is the only format, and the default
    assert "report.html" in capsys.readouterr().out
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
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,900"]
BLUE, RED = (0x09, 0x69, 0xDA), (0xCF, 0x22, 0x2E)  # the equity line and the drawdown fill


def _chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:  # not a skip: a report nobody rendered is not a passing report
        pytest.fail("headless Chromium is not installed (/usr/bin/chromium): .ci/run must install it with "
                    "`apt-get install -y --no-install-recommends chromium` (as root) before the tests")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked for: requests with a page initiator (the browser's own background
    requests have initiator "not an origin")."""
    doc = json.loads(netlog.read_text())
    names = {v: k for k, v in doc["constants"]["logEventTypes"].items()}
    return [e["params"]["url"] for e in doc["events"]
            if names.get(e["type"]) == "URL_REQUEST_START_JOB" and "url" in (e.get("params") or {})
            and e["params"].get("initiator") != "not an origin"]


def _colour_pixels(image, colour: tuple[int, int, int], box: tuple[int, int, int, int], tol: int = 40) -> int:
    region = np.asarray(image.convert("RGB").crop(box), dtype=np.int16)
    return int(np.all(np.abs(region - np.asarray(colour, dtype=np.int16)) <= tol, axis=-1).sum())


def test_report_renders_in_a_headless_browser_without_network(clean_ws, tmp_path, capsys):
    from PIL import Image

    assert run_cli(clean_ws, "report", "clean", "--html", "--json") == 0
    page = (clean_ws.root / json_out(capsys)["path"]).as_uri()
    # 1. the DOM after load holds both plots (SVG with drawn paths) and the tables
    dom = _chromium(tmp_path, page, "--dump-dom").stdout
    parsed = parse(dom)
    assert parsed.svgs_in == {"equity-plot": 1, "drawdown-plot": 1} and parsed.paths > 10
    assert dom.count("<table") >= 3 and "Fills (297)" in dom
    # 2. a screenshot-sized viewport: the verdict, the metrics table and the equity plot are painted
    shot, netlog = tmp_path / "shot.png", tmp_path / "net.json"
    _chromium(tmp_path, page, f"--screenshot={shot}", f"--log-net-log={netlog}")
    image = Image.open(shot)
    assert image.size == (1280, 900)
    grey = image.convert("L")
    assert len(np.unique(np.asarray(grey))) > 50  # not a blank or single-colour page
    assert grey.crop((80, 170, 700, 490)).getextrema()[0] < 80  # the metrics table's text
    assert _colour_pixels(image, (0x1A, 0x7F, 0x37), (80, 60, 400, 110)) > 200  # the green COMPLETE badge
    assert _colour_pixels(image, BLUE, (150, 560, 1200, 900)) > 300  # the equity curve
    # 3. no request left the page (the control below proves the check sees one)
    assert _page_requests(netlog) == []
    # 4. further down, the drawdown plot is painted too
    tall = tmp_path / "tall.png"
    _chromium(tmp_path, page, f"--screenshot={tall}", "--window-size=1280,1800")
    assert _colour_pixels(Image.open(tall), RED, (150, 900, 1200, 1800), tol=60) > 300


def test_the_network_check_sees_a_page_request(tmp_path):
    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="https://example.com/x.png"></body></html>')
    netlog = tmp_path / "net.json"
    _chromium(tmp_path, control.as_uri(), f"--screenshot={tmp_path / 'c.png'}", f"--log-net-log={netlog}")
    assert _page_requests(netlog) == ["https://example.com/x.png"]
