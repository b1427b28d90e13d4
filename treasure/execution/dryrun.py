"""The dry-run adapter: decide everything as for a live venue, send nothing.

Fills are the sim fill model's (the same draws from the same seeded generator, so a dry-run fills
exactly like ``sim``); what it adds is a *journal*: the intended orders and the venue messages the
dry-run expects for them (ack, fills, cancels), in the recorded-live format of ``fixtures/live``.
At the end of the run the journal is written to ``reports/runs/<run_id>/dryrun_session.jsonl``, so
``treasure recon RUN_ID --live reports/runs/RUN_ID/dryrun_session.jsonl`` reconciles the engine's
own books against what its adapter expected, and a recorded live session can be diffed against it
line by line.

The journal records the adapter's view: a fill the engine then cuts at a risk limit appears whole,
followed by the engine's cancel, because that is what the venue would have executed.
"""

from __future__ import annotations

from typing import Any

from treasure.execution.base import register_adapter
from treasure.execution.messages import ExecReport, Order
from treasure.execution.sim import SimAdapter
from treasure.strategy.base import Bar

JOURNAL_NAME = "dryrun_session.jsonl"


class DryRunAdapter(SimAdapter):
    """``sim`` fills plus a journal of intended orders and expected venue messages."""

    name = "dryrun"
    simulated = True
    live_paced = True

    def __init__(self, *, execution: Any, workspace: Any = None, run_id: str | None = None,
                 config: Any = None, **_: Any) -> None:
        super().__init__(execution=execution)
        self.workspace = workspace
        self.run_id = run_id
        self.symbol = None if config is None else getattr(config, "symbol", None)
        self.journal: list[dict[str, Any]] = []
        self._acks: dict[str, str] = {}
        self._fills = 0
        self._now = 0

    def start(self, *, rng: Any, config: Any, symbol: str) -> None:
        super().start(rng=rng, config=config, symbol=symbol)
        self.symbol = symbol

    def submit(self, order: Order) -> list[ExecReport]:
        venue_id = f"D{len(self._acks) + 1:07d}"
        self._acks[order.order_id] = venue_id
        self._now = max(self._now, order.ts_ms)
        self.journal.append({"type": "ack", "order_id": order.order_id, "venue_ts_ms": order.ts_ms,
                             "venue_order_id": venue_id, "side": order.side, "qty": order.qty})
        return super().submit(order)

    def cancel(self, order_id: str) -> list[ExecReport]:
        reports = super().cancel(order_id)
        if reports:
            self.journal.append({"type": "cancel", "order_id": order_id, "venue_ts_ms": self._now,
                                 "venue_order_id": self._acks.get(order_id, ""), "reason": "cancelled"})
        return reports

    def on_bar(self, bar: Bar) -> list[ExecReport]:
        self._now = max(self._now, bar.t_ms)
        reports = super().on_bar(bar)
        for report in reports:
            fill = report.fill
            if fill is None:
                continue
            self._fills += 1
            self.journal.append({
                "type": "fill", "order_id": fill.order_id, "venue_ts_ms": fill.ts_ms,
                "venue_order_id": self._acks.get(fill.order_id, ""), "fill_id": f"DF{self._fills:07d}",
                "qty": fill.qty, "price": fill.price, "fee": fill.fee,
                "status": "partially_filled" if fill.order_id in self._open else "filled"})
        return reports

    def journal_bytes(self) -> bytes:
        from treasure.recon.venue_sessions import dump_session

        header = {"venue": "dryrun", "symbol": self.symbol or "", "run_id": self.run_id or ""}
        return dump_session(self.journal, header=header)

    def stop(self) -> list[ExecReport]:
        reports = super().stop()
        if self.workspace is not None and self.run_id is not None:
            from treasure.errors import TreasureError
            from treasure.jsonio import atomic_write_bytes

            try:
                atomic_write_bytes(self.workspace.run_reports(self.run_id) / JOURNAL_NAME, self.journal_bytes())
            except (TreasureError, OSError) as exc:  # never crash a run over its journal: say so in the log
                reports.append(ExecReport("error", None, reason=f"dry-run journal not written: {exc}",
                                          code="DRYRUN_JOURNAL_WRITE"))
        return reports


register_adapter("dryrun", DryRunAdapter)
