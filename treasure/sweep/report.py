"""The sweep report: one row per point (sorted by point id) and a ranking, canonical JSON; plus an
HTML page with the ranking table and a heat map of the metric over two parameters.

Nothing here depends on how or where points ran (no timings, no worker names, no completion
order), so the report is byte-identical serial, on a local cluster, or after a worker died.
"""

from __future__ import annotations

import html
import io
import math
from typing import Any, Sequence

from treasure.canonical import canonical_bytes

SCHEMA_VERSION = 1
SVG_SALT = "treasure-sweep"


def rank(rows: Sequence[dict[str, Any]], metric: str, order: str) -> list[dict[str, Any]]:
    """Completed runs with a finite ``metric``, best first; ties broken by point id."""
    scored = []
    for row in rows:
        value = (row.get("metrics") or {}).get(metric)
        if row.get("status") == "complete" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            scored.append((-value if order == "desc" else value, row["point_id"], value))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [{"rank": i + 1, "point_id": pid, "value": value} for i, (_, pid, value) in enumerate(scored)]


def build_report(*, sweep_id: str, name: str, source: str, spec_sha256: str, ssot_sha256: str,
                 metric: str, order: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(rows, key=lambda r: r["point_id"])
    by_status: dict[str, int] = {}
    for row in ordered:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    return {
        "schema_version": SCHEMA_VERSION,
        "sweep_id": sweep_id,
        "name": name,
        "spec": {"path": source, "sha256": spec_sha256},
        "ssot_sha256": ssot_sha256,
        "points": len(ordered),
        "by_status": dict(sorted(by_status.items())),
        "rank_by": {"metric": metric, "order": order},
        "runs": ordered,
        "ranking": rank(ordered, metric, order),
    }


def report_bytes(report: dict[str, Any]) -> bytes:
    return canonical_bytes(report) + b"\n"


# HTML -------------------------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def heatmap_grid(rows: Sequence[dict[str, Any]], x: str, y: str, metric: str) -> tuple[list[Any], list[Any], list[list[float]]]:
    """Mean of ``metric`` over completed runs per (x, y) parameter pair (other dimensions averaged)."""
    cells: dict[tuple[Any, Any], list[float]] = {}
    for row in rows:
        params = row.get("params") or {}
        value = (row.get("metrics") or {}).get(metric)
        if row.get("status") != "complete" or x not in params or y not in params or \
                not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        cells.setdefault((params[x], params[y]), []).append(float(value))
    xs = sorted({k[0] for k in cells}, key=lambda v: (str(type(v)), v))
    ys = sorted({k[1] for k in cells}, key=lambda v: (str(type(v)), v))
    grid = [[(sum(cells[(a, b)]) / len(cells[(a, b)])) if (a, b) in cells else math.nan for a in xs] for b in ys]
    return xs, ys, grid


def heatmap_svg(rows: Sequence[dict[str, Any]], x: str, y: str, metric: str) -> str:
    xs, ys, grid = heatmap_grid(rows, x, y, metric)
    if not xs or not ys:
        return ""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "none", "font.size": 9}):
        figure = Figure(figsize=(6, 4.5))
        ax = figure.subplots()
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_yticks(range(len(ys)), [str(v) for v in ys])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{metric} (mean over other dimensions)")
        figure.colorbar(image, ax=ax)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.find("<svg"):]


def default_axes(rows: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """The first two parameters (by name) that take more than one value across the sweep."""
    values: dict[str, set[str]] = {}
    for row in rows:
        for key, value in (row.get("params") or {}).items():
            values.setdefault(key, set()).add(repr(value))
    varying = sorted(k for k, v in values.items() if len(v) > 1)
    return (varying[0], varying[1]) if len(varying) >= 2 else None


def render_html(report: dict[str, Any], heatmap: dict[str, str] | None, *, top: int = 50) -> str:
    rows = report["runs"]
    by_id = {r["point_id"]: r for r in rows}
    metric = report["rank_by"]["metric"]
    axes = (heatmap["x"], heatmap["y"]) if heatmap else default_axes(rows)
    heat_metric = (heatmap or {}).get("metric", metric)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>sweep {html.escape(report['sweep_id'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse}"
        "td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}figure svg{width:100%;height:auto}"
        ".muted{color:#57606a}</style></head><body>",
        f"<h1>Sweep {html.escape(report['sweep_id'])}</h1>",
        f"<p class='muted'>{report['points']} points; status "
        + ", ".join(f"{html.escape(k)} {v}" for k, v in report["by_status"].items())
        + f"; ranked by {html.escape(metric)} ({report['rank_by']['order']})</p>",
    ]
    if axes:
        svg = heatmap_svg(rows, axes[0], axes[1], heat_metric)
        if svg:
            parts.append(f"<h2>Heat map: {html.escape(heat_metric)} over {html.escape(axes[0])} x "
                         f"{html.escape(axes[1])}</h2><figure id='heatmap'>{svg}</figure>")
    parts.append(f"<h2>Ranking (top {min(top, len(report['ranking']))} of {len(report['ranking'])})</h2>")
    parts.append("<table id='ranking'><tr><th>rank</th><th>point</th><th>strategy</th><th>params</th>"
                 f"<th>dataset</th><th>seed</th><th>{html.escape(metric)}</th><th>return</th><th>trades</th></tr>")
    for entry in report["ranking"][:top]:
        row = by_id[entry["point_id"]]
        m = row.get("metrics") or {}
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in row["params"].items())
        parts.append(f"<tr><td>{entry['rank']}</td><td><code>{row['point_id']}</code></td>"
                     f"<td>{html.escape(row['strategy'])}</td><td>{params}</td>"
                     f"<td>{html.escape(row['dataset']['path'])}</td><td>{row['seed']}</td>"
                     f"<td>{_fmt(entry['value'])}</td><td>{_fmt(m.get('total_return', ''))}</td>"
                     f"<td>{_fmt(m.get('trades', ''))}</td></tr>")
    parts.append("</table>")
    failed = [r for r in rows if r["status"] != "complete"]
    if failed:
        parts.append("<h2>Runs not complete</h2><table><tr><th>point</th><th>status</th><th>reason</th></tr>")
        for row in failed:
            parts.append(f"<tr><td><code>{row['point_id']}</code></td><td>{html.escape(row['status'])}</td>"
                         f"<td>{html.escape(str(row.get('reason') or ''))}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
