"""The court report: a run's verdict and everything needed to judge and reproduce it.

:func:`build_court` is pure: it takes a :class:`RunSummary` (plain values the engine collected)
and returns the document; it knows nothing of the engine's objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from treasure import __version__


@dataclass(frozen=True)
class RunSummary:
    """What a court report is made of, as plain values."""

    run_id: str
    status: str
    reason: str | None
    inputs: Mapping[str, Any]
    metrics: Mapping[str, Any]
    events_total: int
    events_by_category: Mapping[str, int]
    events_by_level: Mapping[str, int]
    events_by_type: Mapping[str, int]
    last_hash: str
    findings: Sequence[Mapping[str, Any]]
    event_log: str
    report_dir: str
    equity_curve: str
    equity_sha256: str
    wall_ms: float
    bars_processed: int
    extra: Mapping[str, Any] = field(default_factory=dict)


#: Findings about the circumstances a run met, not about its inputs or what it did: whether the
#: SSOT was approved when it ran. A replay made under other circumstances (the change approved
#: since) legitimately differs in them only, so replay compares court reports without them.
CIRCUMSTANTIAL_FINDINGS = frozenset({"SSOT_UNAPPROVED"})


def without_circumstances(court: dict[str, Any]) -> dict[str, Any]:
    """``court`` without its circumstantial findings (a shallow copy; the input is not changed)."""
    findings = court.get("findings")
    if not isinstance(findings, list):
        return court
    kept = [f for f in findings if not (isinstance(f, dict) and f.get("code") in CIRCUMSTANTIAL_FINDINGS)]
    return {**court, "findings": kept}


def run_inputs(*, seed: int, config: Any, dataset: Any, dataset_override: bool, strategy: Any,
               adapter: str) -> dict[str, Any]:
    """The ``inputs`` section: what the run was a function of."""
    return {
        "seed": seed,
        "ssot_path": config.path,
        "ssot_sha256": config.sha256,
        "ssot_canonical_sha256": config.canonical_sha256,
        "dataset_path": dataset.path,
        "dataset_sha256": dataset.sha256,
        "dataset_pinned_sha256": config.section("dataset")["sha256"],
        "dataset_override": dataset_override,
        "strategy": {"name": strategy.name, "ref": strategy.ref,
                     "params": strategy.params, "source_sha256": strategy.source_sha256},
        "adapter": adapter,
        "symbol": config.symbol,
        "package_version": __version__,
    }


def build_court(summary: RunSummary) -> dict[str, Any]:
    s = summary
    all_findings = [dict(f) for f in s.findings]
    errors = s.events_by_level.get("ERROR", 0)
    if errors:
        all_findings.append({"code": "ERROR_EVENTS", "level": "ERROR", "count": errors,
                             "message": f"{errors} ERROR event(s) in the log"})
    limit_events = s.events_by_type.get("limit_exceeded", 0)
    if limit_events:
        all_findings.append({"code": "RISK_LIMIT_EXCEEDED", "level": "WARN", "count": limit_events,
                             "message": f"{limit_events} order(s) cut or rejected by max_position_size_usd"})
    power_events = s.events_by_type.get("insufficient_buying_power", 0)
    if power_events:
        all_findings.append({"code": "INSUFFICIENT_BUYING_POWER", "level": "WARN", "count": power_events,
                             "message": f"{power_events} order(s) or fill(s) cut or rejected by the account's "
                                        "buying power (insufficient_buying_power events)"})
    all_findings.sort(key=lambda f: (f["code"], f["message"]))
    doc: dict[str, Any] = {
        "schema_version": 1,
        "run_id": s.run_id,
        "status": s.status,
        "reason": s.reason,
        "inputs": dict(s.inputs),
        "metrics": dict(s.metrics),
        "events": {
            "total": s.events_total,
            "by_category": dict(sorted(s.events_by_category.items())),
            "by_level": dict(sorted(s.events_by_level.items())),
            "last_hash": s.last_hash,
        },
        "findings": all_findings,
        "evidence": {
            "event_log": s.event_log,
            "report_dir": s.report_dir,
            "equity_curve": s.equity_curve,
            "equity_curve_sha256": s.equity_sha256,
        },
        "timing": {
            "wall_ms": round(s.wall_ms, 3),
            "bars_per_s": round(s.bars_processed / (s.wall_ms / 1000.0), 1) if s.wall_ms > 0 else 0.0,
        },
    }
    doc.update(s.extra)
    return doc
