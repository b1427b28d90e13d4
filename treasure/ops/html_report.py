"""``treasure report RUN_ID --html``: one self-contained HTML page about a run.

Verdict and metrics (court report), the diagnose findings with their actions, equity and drawdown
plots, fills, risk events and daily PnL, the reconciliation summary and the gate status. No
network and no scripts: CSS is inline and the plots are SVG drawn by matplotlib and inlined. The
page is deterministic (same evidence, same bytes): SVG ids come from a fixed ``svg.hashsalt``, the
SVG carries no date, nothing reads the clock, and long curves are reduced to per-bucket min/max
before drawing (which keeps every peak and trough visible).
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from treasure.errors import TreasureError
from treasure.jsonio import atomic_write_bytes
from treasure.metrics import drawdown_series
from treasure.ops import OpsError
from treasure.ops.diagnose import diagnose
from treasure.ops.evidence import read_gates, read_recon
from treasure.ops.query import EventFilter, format_ts, iter_events
from treasure.ops.run_catalog import latest_run_id, require_court
from treasure.workspace import Workspace

EQUITY_FIELDS = ("bar_idx", "t_ms", "close", "qty", "cash", "equity")
MAX_POINTS = 4000       # curve points drawn (min/max per bucket beyond that)
MAX_ROWS = 1000         # rows per table; the rest is counted
SVG_SALT = "treasure"

_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#1d232a;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{padding:3px 8px;border-bottom:1px solid #eaeef2;
text-align:left;vertical-align:top}th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:.25em .8em;border-radius:4px;font-weight:600;color:#fff}
.complete,.ok,.passed,.pass{background:#1a7f37}.halted,.warn,.skipped,.missing,.incomplete{background:#9a6700}
.error,.bad,.failed,.fail,.critical{background:#cf222e}.unknown,.info{background:#57606a}
.tag{display:inline-block;padding:0 .45em;border-radius:3px;color:#fff;font-size:11px}
figure{margin:1em 0}figure svg{width:100%;height:auto}.muted{color:#57606a}.kv td:first-child{width:14em;color:#57606a}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _tag(status: Any) -> str:
    return f'<span class="tag {_e(status)}">{_e(status)}</span>'


def _table(headers: list[str], rows: Iterable[list[Any]], numeric: frozenset[int] | set[int] = frozenset(),
           total: int | None = None) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    shown = 0
    for row in rows:
        shown += 1
        cells = []
        for i, cell in enumerate(row):
            if isinstance(cell, _Raw):
                cells.append(f"<td>{cell.html}</td>")
            elif i in numeric:
                digits = 4 if isinstance(cell, float) and abs(cell) < 10 else 2
                cells.append(f'<td class="n">{_num(cell, digits)}</td>')
            else:
                cells.append(f"<td>{_e(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if total is not None and total > shown:
        out.append(f'<p class="muted">{total - shown:,} more not shown (see <code>treasure events</code>).</p>')
    if shown == 0:
        return '<p class="muted">none</p>'
    return "".join(out)


class _Raw:
    def __init__(self, markup: str) -> None:
        self.html = markup


# ------------------------------------------------------------------------------------------
# plots
# ------------------------------------------------------------------------------------------
def load_equity(path: Path) -> np.ndarray:
    """The equity curve written by the engine (structured array), refused with a coded error."""
    try:
        curve = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise OpsError("EVIDENCE_INVALID", "no equity curve (equity.npy)", path=str(path)) from exc
    except (OSError, ValueError) as exc:
        raise OpsError("EVIDENCE_INVALID", f"equity.npy is not a readable numpy array ({exc})", path=str(path)) from exc
    if curve.dtype.names is None or not set(EQUITY_FIELDS) <= set(curve.dtype.names) or curve.ndim != 1:
        raise OpsError("EVIDENCE_INVALID", f"equity.npy has fields {curve.dtype.names}, expected {EQUITY_FIELDS}",
                       path=str(path))
    return curve


def decimate(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Keep each bucket's first, min and max points (in time order) so no extreme is lost."""
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max_points // 3
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep: list[int] = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        seg = y[lo:hi]
        keep.extend(sorted({lo, lo + int(np.argmin(seg)), lo + int(np.argmax(seg))}))
    keep.append(n - 1)
    idx = np.unique(np.asarray(keep, dtype=np.int64))
    return x[idx], y[idx]


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def plots(curve: np.ndarray) -> tuple[str, str]:
    """(equity SVG, drawdown SVG) as inline markup."""
    import matplotlib
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    times = curve["t_ms"].astype("datetime64[ms]")
    equity = curve["equity"].astype(float)
    drawdown = drawdown_series(equity) * 100.0
    out = []
    with matplotlib.rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "none", "font.size": 9,
                                "axes.spines.top": False, "axes.spines.right": False}):
        for series, label, colour, fill in ((equity, "equity (USD)", "#0969da", False),
                                            (drawdown, "drawdown (%)", "#cf222e", True)):
            x, y = decimate(times, series)
            figure = Figure(figsize=(10, 3.2 if not fill else 2.4), dpi=100)
            ax = figure.subplots()
            if fill:
                ax.fill_between(x, y, 0, color=colour, alpha=0.35, linewidth=0)
            ax.plot(x, y, color=colour, linewidth=0.9)
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.25)
            locator = AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
            out.append(_svg(figure))
    return out[0], out[1]


# ------------------------------------------------------------------------------------------
# the page
# ------------------------------------------------------------------------------------------
def build_html(ws: Workspace, run_id: str) -> str:
    """The page as text (deterministic for the same evidence)."""
    court = require_court(ws, run_id)
    diag = diagnose(ws, run_id)
    metrics = court.get("metrics") or {}
    inputs = court.get("inputs") or {}
    try:
        curve = load_equity(ws.run_reports(run_id) / "equity.npy")
        equity_svg, drawdown_svg = plots(curve) if len(curve) else ("", "")
        plot_note = "" if len(curve) else "the equity curve is empty (no bar was processed)"
    except TreasureError as exc:
        equity_svg = drawdown_svg = ""
        plot_note = f"{exc.code}: {exc.message}"

    fills: list[list[Any]] = []
    risk: list[list[Any]] = []
    days: list[list[Any]] = []
    counts = {"fills": 0, "risk": 0}
    wanted = EventFilter(types=("order_filled", "limit_exceeded", "daily_loss_limit", "halt", "day_end"))
    for hit in iter_events(ws, run_id, wanted):
        event, p = hit.event, hit.event.get("payload") or {}
        kind = event["event_type"]
        if kind == "order_filled":
            counts["fills"] += 1
            if len(fills) < MAX_ROWS:
                fills.append([p.get("bar_idx"), format_ts(event["ts_ms"]), p.get("order_id"), p.get("side"),
                              p.get("fill_qty"), p.get("price"), p.get("fee"), p.get("slippage_bps"), p.get("status")])
        elif kind == "day_end":
            limit = p.get("limit_usd")
            low = p.get("min_pnl_usd")
            state = "breach" if isinstance(low, (int, float)) and isinstance(limit, (int, float)) and low < -limit else ""
            days.append([p.get("day"), p.get("pnl_usd"), low, limit, p.get("end_equity"), state])
        else:
            counts["risk"] += 1
            if len(risk) < MAX_ROWS:
                detail = {k: v for k, v in p.items() if k not in ("bar_idx",)}
                risk.append([event.get("seq"), format_ts(event["ts_ms"]), _Raw(_tag(event.get("level"))), kind,
                             p.get("bar_idx"), " ".join(f"{k}={v}" for k, v in detail.items())])

    status = court.get("status", "unknown")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Treasure run {_e(run_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Run {_e(run_id)}</h1>",
        f'<p><span class="verdict {_e(status)}" id="verdict">{_e(str(status).upper())}</span> '
        + (f"reason: {_e(court.get('reason'))} " if court.get("reason") else "")
        + f'&nbsp; diagnosis: <span class="verdict {_e(diag["verdict"])}">{_e(diag["verdict"].upper())}</span></p>',
        "<h2>Metrics</h2>",
        '<table class="kv"><tbody>',
    ]
    for key in ("starting_cash_usd", "final_equity_usd", "total_return", "max_drawdown", "sharpe", "trades",
                "win_rate", "fees_usd", "realized_pnl_usd", "exposure", "orders", "fills", "bars"):
        if key in metrics:
            value = metrics[key]
            if key == "max_drawdown" and isinstance(value, (int, float)):
                shown = f"{-abs(value) * 100:.2f}% (peak to trough)"  # a drawdown is a loss: never "+"
            elif key == "total_return" and isinstance(value, (int, float)):
                shown = f"{value * 100:+.2f}%"
            elif key in ("win_rate", "exposure") and isinstance(value, (int, float)):
                shown = f"{value * 100:.2f}%"
            else:
                shown = _num(value)
            parts.append(f"<tr><td>{_e(key)}</td><td>{_e(shown)}</td></tr>")
    parts.append("</tbody></table>")

    parts.append("<h2>Equity and drawdown</h2>")
    if equity_svg:
        parts.append(f'<figure id="equity-plot" aria-label="equity curve">{equity_svg}</figure>')
        parts.append(f'<figure id="drawdown-plot" aria-label="drawdown">{drawdown_svg}</figure>')
    else:
        parts.append(f'<p class="muted">plots not available: {_e(plot_note)}</p>')

    parts.append("<h2>Findings</h2>")
    parts.append(_table(["severity", "code", "finding", "action"],
                        ([_Raw(_tag(f["severity"])), f["code"], f["title"], f["action"]] for f in diag["findings"])))

    parts.append(f"<h2>Fills ({counts['fills']:,})</h2>")
    parts.append(_table(["bar", "time", "order", "side", "qty", "price", "fee", "slippage bps", "status"], fills,
                        numeric={0, 4, 5, 6, 7}, total=counts["fills"]))

    parts.append(f"<h2>Risk events ({counts['risk']:,})</h2>")
    parts.append(_table(["seq", "time", "level", "event", "bar", "detail"], risk, numeric={0, 4}, total=counts["risk"]))

    parts.append(f"<h2>Daily PnL vs limit ({len(days)} day(s))</h2>")
    parts.append(_table(["day", "PnL USD", "intraday low USD", "limit USD", "end equity", ""], days,
                        numeric={1, 2, 3, 4}))

    parts.append("<h2>Reconciliation</h2>")
    recon = read_recon(ws, run_id, latest_run=_latest(ws))
    if recon.problem:
        parts.append(f'<p><span class="tag fail">unreadable</span> {_e(recon.problem)}</p>')
    elif recon.source is None:
        parts.append('<p class="muted">no reconciliation evidence for this run (<code>treasure recon</code>)</p>')
    else:
        parts.append(f"<p>{recon.mismatches} mismatch(es) from the recon {recon.source}"
                     + (f", {recon.matched} matched" if recon.matched is not None else "")
                     + (" — <strong>escalated (halt)</strong>" if recon.halted else "") + "</p>")
        parts.append(_table(["code", "count"], ([c, n] for c, n in sorted(recon.by_code.items())), numeric={1}))

    parts.append("<h2>Gates</h2>")
    gates = read_gates(ws)
    if not gates.ran:
        parts.append('<p class="muted">not run yet (<code>treasure verify</code>)</p>')
    elif gates.problem:
        parts.append(f'<p><span class="tag fail">unreadable</span> evidence/gates.json {_e(gates.problem)}</p>')
    else:
        parts.append(_table(["gate", "status", "reason"], ([g, _Raw(_tag(s)), gates.reasons.get(g, "")]
                                                         for g, s in sorted(gates.gates.items()))))

    parts.append("<h2>Inputs</h2>")
    parts.append('<table class="kv"><tbody>')
    strategy = inputs.get("strategy") or {}
    for key, value in (("seed", inputs.get("seed")), ("strategy", f"{strategy.get('name')} ({strategy.get('ref')})"),
                       ("params", strategy.get("params")), ("adapter", inputs.get("adapter")),
                       ("dataset", inputs.get("dataset_path")), ("dataset sha256", inputs.get("dataset_sha256")),
                       ("ssot sha256", inputs.get("ssot_sha256")), ("package", inputs.get("package_version")),
                       ("events", (court.get("events") or {}).get("total")),
                       ("last event hash", (court.get("events") or {}).get("last_hash"))):
        parts.append(f"<tr><td>{_e(key)}</td><td><code>{_e(value)}</code></td></tr>")
    parts.append("</tbody></table>")
    parts.append(f'<p class="muted">Replay: <code>{_e(diag["replay"]["command"])}</code></p>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _latest(ws: Workspace) -> str | None:
    try:
        return latest_run_id(ws)
    except TreasureError:
        return None


def write_report(ws: Workspace, run_id: str, out: Path | None = None) -> Path:
    target = out or ws.run_reports(run_id) / "report.html"
    atomic_write_bytes(target, build_html(ws, run_id).encode("utf-8"))
    return target
