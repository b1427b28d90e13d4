"""Rows derived from events: pure functions shared by the writer and by ``db check``.

The event line is the evidence; ``orders``, ``fills`` and ``positions`` are query-friendly
projections of it. Keeping the projection in one place means the check re-derives rows with the
exact code that wrote them, so a hand-edited fill (price, fee, qty) shows up as a mismatch.
"""

from __future__ import annotations

from typing import Any

ORDER_COLUMNS = ("run_id", "order_id", "seq", "bar_idx", "side", "qty", "requested_qty", "ref_price", "type",
                 "adapter")
FILL_COLUMNS = ("run_id", "order_id", "seq", "bar_idx", "side", "qty", "price", "fee", "remaining_qty",
                "status", "slippage_bps", "latency_bars")
POSITION_COLUMNS = ("run_id", "seq", "bar_idx", "qty", "avg_price", "position_usd", "cash", "realized_pnl",
                    "fees_paid", "equity")
EVENT_COLUMNS = ("run_id", "seq", "ts_ms", "category", "event_type", "level", "prev", "hash", "line")

#: event_type -> table it projects into
DERIVED = {"order_placed": "orders", "order_filled": "fills", "position_updated": "positions"}


def event_row(event: dict[str, Any], line: bytes) -> tuple[Any, ...]:
    return (event["run_id"], event["seq"], event["ts_ms"], event["category"], event["event_type"],
            event["level"], event["prev"], event["hash"], line.decode("utf-8"))


def order_row(event: dict[str, Any]) -> tuple[Any, ...]:
    p = event["payload"]
    return (event["run_id"], p["order_id"], event["seq"], p["bar_idx"], p["side"], float(p["qty"]),
            float(p["requested_qty"]), float(p["ref_price"]), p["type"], p["adapter"])


def fill_row(event: dict[str, Any]) -> tuple[Any, ...]:
    p = event["payload"]
    return (event["run_id"], p["order_id"], event["seq"], p["bar_idx"], p["side"], float(p["fill_qty"]),
            float(p["price"]), float(p["fee"]), float(p["remaining_qty"]), p["status"],
            float(p["slippage_bps"]), p["latency_bars"])


def position_row(event: dict[str, Any]) -> tuple[Any, ...]:
    p = event["payload"]
    return (event["run_id"], event["seq"], p["bar_idx"], float(p["qty"]), float(p["avg_price"]),
            float(p["position_usd"]), float(p["cash"]), float(p["realized_pnl"]), float(p["fees_paid"]),
            float(p["equity"]))


ROW_BUILDERS = {"orders": order_row, "fills": fill_row, "positions": position_row}
COLUMNS = {"events": EVENT_COLUMNS, "orders": ORDER_COLUMNS, "fills": FILL_COLUMNS,
           "positions": POSITION_COLUMNS}


def insert_sql(table: str) -> str:
    columns = COLUMNS[table]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def derive(events: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for ``orders``, ``fills`` and ``positions`` from a batch of events, in seq order."""
    out: dict[str, list[tuple[Any, ...]]] = {"orders": [], "fills": [], "positions": []}
    for event in events:
        table = DERIVED.get(event["event_type"])
        if table is not None:
            out[table].append(ROW_BUILDERS[table](event))
    return out
