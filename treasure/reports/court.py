"""The court report: a run's verdict and everything needed to judge and reproduce it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treasure import __version__

if TYPE_CHECKING:  # pragma: no cover
    from treasure.engine import PreparedRun
    from treasure.events import EventBus


def build_court(*, prep: "PreparedRun", status: str, reason: str | None, metrics: dict[str, Any],
                bus: "EventBus", findings: list[dict[str, Any]], equity_sha256: str, wall_ms: float,
                bars_processed: int) -> dict[str, Any]:
    ws = prep.workspace
    cfg = prep.config
    all_findings = list(findings)
    if bus.by_level.get("ERROR", 0):
        all_findings.append({"code": "ERROR_EVENTS", "level": "ERROR", "count": bus.by_level["ERROR"],
                             "message": f"{bus.by_level['ERROR']} ERROR event(s) in the log"})
    limit_events = bus.by_type.get("limit_exceeded", 0)
    if limit_events:
        all_findings.append({"code": "RISK_LIMIT_EXCEEDED", "level": "WARN", "count": limit_events,
                             "message": f"{limit_events} order(s) cut or rejected by max_position_size_usd"})
    all_findings.sort(key=lambda f: (f["code"], f["message"]))
    return {
        "schema_version": 1,
        "run_id": prep.run_id,
        "status": status,
        "reason": reason,
        "inputs": {
            "seed": prep.seed,
            "ssot_path": cfg.path,
            "ssot_sha256": cfg.sha256,
            "ssot_canonical_sha256": cfg.canonical_sha256,
            "dataset_path": prep.dataset.path,
            "dataset_sha256": prep.dataset.sha256,
            "dataset_pinned_sha256": cfg.section("dataset")["sha256"],
            "dataset_override": prep.dataset_override,
            "strategy": {"name": prep.strategy.name, "ref": prep.strategy.ref,
                         "params": prep.strategy.params, "source_sha256": prep.strategy.source_sha256},
            "adapter": prep.adapter,
            "symbol": cfg.symbol,
            "package_version": __version__,
        },
        "metrics": metrics,
        "events": {
            "total": bus.seq,
            "by_category": dict(sorted(bus.by_category.items())),
            "by_level": dict(sorted(bus.by_level.items())),
            "last_hash": bus.prev,
        },
        "findings": all_findings,
        "evidence": {
            "event_log": ws.relative(ws.event_log(prep.run_id)),
            "report_dir": ws.relative(ws.run_reports(prep.run_id)),
            "equity_curve": ws.relative(ws.run_reports(prep.run_id) / "equity.npy"),
            "equity_curve_sha256": equity_sha256,
        },
        "timing": {
            "wall_ms": round(wall_ms, 3),
            "bars_per_s": round(bars_processed / (wall_ms / 1000.0), 1) if wall_ms > 0 else 0.0,
        },
    }
