"""``treasure diagnose RUN_ID``: the runbook's triage of a run in one screen.

One streaming pass over the run's log gathers what the runbook's greps looked for (SYS run_start
and run_end, the dataset SHA, CRITICAL and ERROR events with the events just before them, the
ERROR rate, risk events, halts, data gaps and duplicates with their bar_idx, rejected orders and
adapter errors); the log's integrity is verified separately (schema, seq, time order, hash
chain); reconciliation comes from the recon evidence. Every finding carries the runbook's
"Action" for it. ``--json`` prints a document valid against truth/diagnose.schema.json.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from treasure.contracts import Contracts
from treasure.errors import HINTS, TreasureError
from treasure.ops.archive import verify_archives
from treasure.ops.emergency import read_flag
from treasure.ops.evidence import read_recon, read_ssot, sha256_file
from treasure.ops.query import ScanStats, format_event, iter_events
from treasure.ops.run_catalog import latest_run_id, read_court, run_verdict
from treasure.ops.segments import require_segments
from treasure.workspace import Workspace

SCHEMA_VERSION = 1
SEVERITY_RANK = {"info": 0, "warn": 1, "error": 2, "critical": 3}
MAX_ITEMS = 20          # items kept per finding in the JSON document
SHOWN_ITEMS = 3         # items printed per finding on screen
CONTEXT = 3             # events kept before each ERROR/CRITICAL event
ERROR_RATE_GOOD = 0.05  # runbook Step 3: "<5% ERROR rate" is good, ">10%" bad
ERROR_RATE_BAD = 0.10
RECON_ESCALATION = 10   # runbook Escalation: "Reconciliation mismatch >10 orders"

#: The runbook's actions, by finding code (quoted where the runbook has a line for it).
ACTIONS = {
    "LOG_BROKEN": "verify:events fails -> the log was edited, truncated or emitted wrongly at that line; "
                  "restore it from the DB with `treasure db restore-log RUN` (it moves the broken log to "
                  "logs/broken/), or from archive/ (`treasure archive --restore RUN`), or re-run "
                  "(`treasure replay` / `treasure run`)",
    "LOG_TRUNCATED": "the writer was interrupted: check SYS events (below) and re-run the run",
    "RUN_INCOMPLETE": "Run Crashed / No Output: check system events, the error cascade and the last events "
                      "(`treasure events RUN --category SYS --tail 20`). Common causes: data gap -> DATA events, "
                      "risk halt -> RISK events, adapter failure -> EXEC events",
    "RUN_ERROR": "the run stopped on an error: fix what its code says, then re-run",
    "HALT_EMERGENCY_FLAG": "emergency halt in force: read data/emergency.log; once the cause is fixed, "
                           "`treasure resume` (it runs the e2 and determinism gates)",
    "HALT_DAILY_LOSS_LIMIT": "Daily Loss Limit Hit: reset (next day only) or override (with approval)",
    "HALT_RECON_MISMATCH_THRESHOLD": "Reconciliation mismatch >10 orders -> halt trading, escalate to trading desk",
    "HALT_FAULT": "an injected or detected fault stopped the run: check SYS events and re-run",
    "CRITICAL_EVENTS": "CRITICAL event detected -> page on-call engineer immediately",
    "ERROR_RATE": "more than 5% ERROR events (runbook: <5% good, >10% bad): analyze them with "
                  "`treasure events RUN --level ERROR --count-by event_type`",
    "ERROR_EVENTS": "error cascade: start from the first ERROR event (shown) and its context",
    "POSITION_LIMIT": "Position Limit Exceeded: close positions or increase limit (with risk approval)",
    "POSITION_OVER_LIMIT": "a position beyond max_position_size_usd was recorded: halt trading, escalate to "
                           "risk management",
    "ORDERS_NOT_EXECUTING": "Orders Not Executing: common causes are risk limits hit (daily loss, position size), "
                            "adapter offline/error, intent validation failed",
    "ORDERS_NOT_EXECUTING_ADAPTER": "Orders Not Executing: adapter offline/error -> check the adapter "
                                    "(`treasure events RUN --type adapter_error --count-by payload.code`), "
                                    "repair or re-record the venue feed, then re-run; do not trust this run's PnL",
    "RUN_DEGRADED": "the run finished but its adapter failed too often (status degraded, exit code 4): its orders "
                    "did not execute as intended; see ORDERS_NOT_EXECUTING, fix the venue feed and re-run",
    "ADAPTER_ERROR": "Adapter failure: check the adapter logs (the event names the fixture line), then re-run",
    "RECON_MISMATCH": "Check adapter logs, verify network latency, review tolerance settings",
    "RECON_ESCALATION": "Reconciliation mismatch >10 orders -> halt trading, escalate to trading desk",
    "RECON_UNREADABLE": "re-run `treasure recon RUN` to rewrite the reconciliation evidence",
    "DATA_GAP": "Data Gap Detected: re-fetch or interpolate data",
    "DUPLICATE_TIMESTAMP": "Duplicate Timestamps: check the data source, de-duplicate before ingestion",
    "DATASET_SHA_MISMATCH": "Data corruption suspected -> stop all runs, escalate to data team",
    "DATASET_OVERRIDE": "the run used an explicit --dataset, not the pinned one: replay needs that file",
    "DATASET_CHANGED": "the pinned dataset changed since this run: restore it to replay, or re-pin it with approval",
    "EMERGENCY_FLAG_SET": "an emergency halt is in force: new runs halt at once; `treasure resume` when safe",
    "SSOT_UNAPPROVED": "the run used an SSOT not approved in spec/ssot.lock: `treasure ssot diff` shows what "
                       "changed; if the change is reviewed, `treasure ssot approve` (and re-run), else restore "
                       "the approved files and re-run",
}


@dataclass
class Finding:
    code: str
    severity: str
    title: str
    count: int = 1
    items: list[dict[str, Any]] = field(default_factory=list)
    more: int = 0
    action: str = ""

    def add(self, item: dict[str, Any]) -> None:
        if len(self.items) < MAX_ITEMS:
            self.items.append(item)
        else:
            self.more += 1


def _item(event: dict[str, Any], context: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    item = {k: event.get(k) for k in ("seq", "ts_ms", "level", "category", "event_type")}
    item["payload"] = event.get("payload") if isinstance(event.get("payload"), dict) else {}
    if context is not None:
        item["context"] = context
    return item


def _brief(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event.get(k) for k in ("seq", "level", "category", "event_type")}


class _Collector:
    """Everything the triage needs, gathered in one pass with bounded memory."""

    def __init__(self) -> None:
        self.by_level: Counter[str] = Counter()
        self.by_category: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.total = 0
        self.run_start: dict[str, Any] | None = None
        self.dataset: dict[str, Any] | None = None
        self.run_end: dict[str, Any] | None = None
        self.last_seq: int | None = None
        self.recent: deque[dict[str, Any]] = deque(maxlen=CONTEXT)
        self.findings: dict[str, Finding] = {}
        self.reject_reasons: Counter[str] = Counter()
        self.limit_actions: Counter[str] = Counter()
        self.max_position_usd = 0.0
        self.max_position_event: dict[str, Any] | None = None
        self.worst_day: dict[str, Any] | None = None
        self.run_errors: list[dict[str, Any]] = []

    def finding(self, code: str, severity: str, title: str = "") -> Finding:
        if code not in self.findings:
            self.findings[code] = Finding(code, severity, title, count=0, action=ACTIONS.get(code, ""))
        return self.findings[code]

    def feed(self, event: dict[str, Any]) -> None:
        level, kind = event.get("level"), event.get("event_type")
        payload = payload_raw if isinstance(payload_raw := event.get("payload"), dict) else {}
        self.total += 1
        self.by_level[str(level)] += 1
        self.by_category[str(event.get("category"))] += 1
        self.by_type[str(kind)] += 1
        self.last_seq = event.get("seq")
        if kind == "run_start":
            self.run_start = payload
        elif kind == "dataset_loaded":
            self.dataset = payload
        elif kind == "run_end":
            self.run_end = payload
        elif kind == "run_error" and len(self.run_errors) < MAX_ITEMS:
            self.run_errors.append(_item(event))
        elif kind == "data_gap_detected":
            f = self.finding("DATA_GAP", "warn")
            f.count += 1
            f.add(_item(event))
        elif kind == "duplicate_timestamp":
            f = self.finding("DUPLICATE_TIMESTAMP", "warn")
            f.count += 1
            f.add(_item(event))
        elif kind == "limit_exceeded":
            f = self.finding("POSITION_LIMIT", "warn")
            f.count += 1
            f.add(_item(event))
            self.limit_actions[str(payload.get("action"))] += 1
        elif kind == "order_rejected":
            self.reject_reasons[str(payload.get("reason"))] += 1
            self.finding("ORDERS_NOT_EXECUTING", "warn").add(_item(event))
        elif kind == "adapter_error":
            f = self.finding("ADAPTER_ERROR", "error")
            f.count += 1
        elif kind == "position_updated":
            usd = payload.get("position_usd")
            if isinstance(usd, (int, float)) and abs(usd) > self.max_position_usd:
                self.max_position_usd = abs(usd)
                self.max_position_event = event
        elif kind == "day_end":
            pnl = payload.get("min_pnl_usd", payload.get("pnl_usd"))
            if isinstance(pnl, (int, float)) and (self.worst_day is None or pnl < self.worst_day["min_pnl_usd"]):
                self.worst_day = {"day": payload.get("day"), "min_pnl_usd": pnl, "pnl_usd": payload.get("pnl_usd"),
                                  "limit_usd": payload.get("limit_usd")}
        if kind == "halt":
            reason = str(payload.get("reason", "unknown"))
            f = self.finding(f"HALT_{reason.upper()}", "critical")
            f.count += 1
            f.add(_item(event, [_brief(e) for e in self.recent]))
        elif level == "CRITICAL" and kind != "run_end":
            f = self.finding("CRITICAL_EVENTS", "critical")
            f.count += 1
            f.add(_item(event, [_brief(e) for e in self.recent]))
        elif level == "ERROR":
            f = self.finding("ERROR_EVENTS", "error")
            f.count += 1
            f.add(_item(event, [_brief(e) for e in self.recent]))
        self.recent.append(event)


def _integrity(ws: Workspace, run_id: str, segments: list) -> dict[str, Any]:
    """Verify the whole chain (archived logs: against their manifest, then read from the archive)
    and tie it to the run's own court report (head hash, totals, counts; treasure.eventlog)."""
    from treasure.eventlog import court_mismatches, verify_run
    from treasure.logfiles import locate

    checked = "chain"
    if not all(s.path is not None for s in segments):
        names = {s.archive for s in segments}
        problems = [p for p in verify_archives(ws) if any(ws.relative(n) in p for n in names)]
        if problems:
            return {"ok": False, "checked": "archive", "code": "ARCHIVE_INVALID", "message": problems[0],
                    "path": None, "line": None, "field": None, "hint": HINTS["ARCHIVE_INVALID"]}
        checked = "archive"
    try:
        summary = verify_run(locate(ws, run_id), Contracts(ws.truth_dir), ws=ws)
    except TreasureError as exc:
        shown = exc.path if not exc.path or not Path(exc.path).is_absolute() else ws.relative(Path(exc.path))
        return {"ok": False, "checked": checked, "code": exc.code, "message": exc.message,
                "path": shown, "line": exc.line, "field": exc.field, "hint": exc.hint}
    court, _problem = read_court(ws, run_id)
    mismatches = court_mismatches(summary, court, shown=f"reports/runs/{run_id}/court_report.json") \
        if isinstance(court, dict) else []
    if mismatches:
        return {"ok": False, "checked": checked, "code": "EVENTS_COURT_MISMATCH", "message": mismatches[0],
                "path": f"reports/runs/{run_id}/court_report.json", "line": None, "field": "events",
                "hint": HINTS.get("EVENTS_COURT_MISMATCH")}
    where = "archived members match their manifest; " if checked == "archive" else ""
    tied = ", matches its court report" if isinstance(court, dict) else ""
    return {"ok": True, "checked": checked, "code": None, "message": f"{where}{summary.events} events, chain "
            f"intact{tied}", "path": None, "line": None, "field": None, "hint": None}


def diagnose(ws: Workspace, run_id: str, *, verify: bool = True) -> dict[str, Any]:
    """The triage document of a run (truth/diagnose.schema.json)."""
    segments = require_segments(ws, run_id)
    stats = ScanStats()
    col = _Collector()
    scan_error: TreasureError | None = None
    try:
        for hit in iter_events(ws, run_id, stats=stats, segments=segments):
            col.feed(hit.event)
    except TreasureError as exc:
        scan_error = exc
    findings = col.findings
    integrity = _integrity(ws, run_id, segments) if verify else \
        {"ok": None, "checked": "skipped", "code": None, "message": "not verified (--no-verify)",
         "path": None, "line": None, "field": None, "hint": None}
    if scan_error is not None and integrity.get("ok") is not False:
        integrity = {"ok": False, "checked": "read", "code": scan_error.code, "message": scan_error.message,
                     "path": scan_error.path, "line": scan_error.line, "field": scan_error.field,
                     "hint": scan_error.hint}
    if integrity.get("ok") is False:
        where = f" ({integrity['path']}:{integrity['line']})" if integrity.get("line") else ""
        code = "LOG_TRUNCATED" if integrity["code"] == "EVENTS_TRUNCATED" else "LOG_BROKEN"
        f = col.finding(code, "critical", f"event log {integrity['code']}: {integrity['message']}{where}")
        f.count = 1
        f.action = f.action.replace(" RUN`", f" {run_id}`")  # the commands, ready to paste
        if integrity.get("hint"):
            f.action = f"{f.action}; {integrity['hint']}"
    elif stats.truncated_at:
        f = col.finding("LOG_TRUNCATED", "critical", f"the log ends in a torn line at {stats.truncated_at}")
        f.count = 1

    court, court_problem = read_court(ws, run_id)
    # the one rule (treasure.ops.run_catalog): committed by the court report; diagnose read the whole log,
    # so a committed run whose log lost its run_end is not called complete either
    run_state = run_verdict(court, court_problem, col.run_end, log_read=True)
    status, reason = ("incomplete" if run_state.status == "open" else run_state.status), run_state.reason
    if col.run_end is None:
        f = col.finding("RUN_INCOMPLETE", "critical",
                        f"no run_end: the run crashed or is still running (last seq {col.last_seq})")
        f.count = 1
    elif not run_state.committed:
        f = col.finding("RUN_INCOMPLETE", "critical",
                        f"{run_state.reason}: the run never reached its commit point (killed or failed while "
                        f"writing its reports), so it is not complete")
        f.count = 1
    # how the run ended: its court's word when committed, else what its log's run_end says
    ended, why_ended = (str(court.get("status")), court.get("reason")) if isinstance(court, dict) else \
        (str(col.run_end.get("status")), col.run_end.get("reason")) if col.run_end is not None else (None, None)
    if ended == "degraded":
        why = why_ended or "adapter ERROR rate above the threshold"
        f = col.finding("RUN_DEGRADED", "error", f"run ended degraded ({why}): exit code 4")
        f.count = 1
    elif ended == "error":
        f = col.finding("RUN_ERROR", "critical", f"run ended in error ({why_ended})")
        f.count = 1
        f.items = col.run_errors
        if why_ended in HINTS:
            f.action = f"{f.action}: {HINTS[why_ended]}"

    # titles that need the totals --------------------------------------------------------------
    errors = col.by_level.get("ERROR", 0)
    rate = errors / col.total if col.total else 0.0
    if "ERROR_EVENTS" in findings:
        cascade = ", ".join(f"{t}×{n}" for t, n in _error_types(findings["ERROR_EVENTS"]))
        findings["ERROR_EVENTS"].title = f"{errors} ERROR event(s) ({rate:.1%} of {col.total}): {cascade}"
        findings["ERROR_EVENTS"].severity = "warn" if rate <= ERROR_RATE_GOOD else "error"
    if rate > ERROR_RATE_GOOD:
        f = col.finding("ERROR_RATE", "error" if rate > ERROR_RATE_BAD else "warn",
                        f"ERROR rate {rate:.1%} (runbook: <5% good, >10% bad)")
        f.count = errors
    if "CRITICAL_EVENTS" in findings:
        f = findings["CRITICAL_EVENTS"]
        f.title = f"{f.count} CRITICAL event(s)"
    for code in [c for c in findings if c.startswith("HALT_")]:
        f = findings[code]
        first = f.items[0]["payload"] if f.items else {}
        f.title = f"run halted: {first.get('reason')} at bar {first.get('bar_idx')} — {first.get('detail', '')}"
        f.action = f.action or ACTIONS.get(code, "check the halt's detail and the events before it")
    if "DATA_GAP" in findings:
        f = findings["DATA_GAP"]
        where = ", ".join(f"bar {i['payload'].get('bar_idx')} ({i['payload'].get('missing_bars')} missing)"
                          for i in f.items[:5])
        f.title = f"{f.count} data gap(s): {where}{' …' if f.count > 5 else ''}"
    if "DUPLICATE_TIMESTAMP" in findings:
        f = findings["DUPLICATE_TIMESTAMP"]
        where = ", ".join(f"bar {i['payload'].get('bar_idx')} (t_ms {i['payload'].get('t_ms')})" for i in f.items[:5])
        f.title = f"{f.count} duplicate timestamp(s) skipped: {where}{' …' if f.count > 5 else ''}"
    if "POSITION_LIMIT" in findings:
        f = findings["POSITION_LIMIT"]
        actions = ", ".join(f"{a}×{n}" for a, n in sorted(col.limit_actions.items()))
        f.title = f"{f.count} order(s) hit max_position_size_usd ({actions})"
    if "ORDERS_NOT_EXECUTING" in findings:
        f = findings["ORDERS_NOT_EXECUTING"]
        f.count = sum(col.reject_reasons.values())
        placed = col.by_type.get("order_placed", 0)
        reasons = ", ".join(f"{r}×{n}" for r, n in col.reject_reasons.most_common(4))
        f.title = f"{f.count} order(s) rejected, {placed} placed: {reasons}"
        f.severity = "error" if placed == 0 else "warn"
    if "ADAPTER_ERROR" in findings:
        f = findings["ADAPTER_ERROR"]
        f.title = f"{f.count} adapter error(s) (EXEC): see the ERROR events"
        _adapter_health(col, findings, rate)

    risk = _risk_limits(ws, col.run_start)
    limit = risk.get("max_position_size_usd")
    if isinstance(limit, (int, float)) and col.max_position_usd > limit * (1 + 1e-9) and col.max_position_event:
        f = col.finding("POSITION_OVER_LIMIT", "error",
                        f"a position of {col.max_position_usd:,.2f} USD exceeds max_position_size_usd {limit:,.0f}")
        f.add(_item(col.max_position_event))
        f.count = 1

    dataset = col.dataset or {}
    if dataset and dataset.get("sha_matches") is False:
        start_ds = (col.run_start or {}).get("dataset") or {}
        if start_ds.get("override"):
            f = col.finding("DATASET_OVERRIDE", "warn", f"ran on {dataset.get('path')} (explicit --dataset), "
                            f"sha {str(dataset.get('dataset_sha'))[:12]}… not the pinned {str(dataset.get('pinned_sha'))[:12]}…")
        else:
            f = col.finding("DATASET_SHA_MISMATCH", "critical",
                            f"dataset sha {str(dataset.get('dataset_sha'))[:12]}… differs from the pinned "
                            f"{str(dataset.get('pinned_sha'))[:12]}…")
        f.count = 1
    current_sha = _current_dataset_sha(ws, dataset.get("path"))
    if dataset and current_sha is not None and current_sha != dataset.get("dataset_sha"):
        f = col.finding("DATASET_CHANGED", "warn", f"{dataset.get('path')} now hashes to {current_sha[:12]}…, "
                        f"the run read {str(dataset.get('dataset_sha'))[:12]}…")
        f.count = 1

    try:
        latest = latest_run_id(ws)
    except TreasureError:
        latest = None
    recon = read_recon(ws, run_id, latest_run=latest)
    if recon.problem:
        f = col.finding("RECON_UNREADABLE", "error", f"recon evidence unreadable: {recon.problem}")
        f.count = 1
    elif recon.mismatches:
        codes = ", ".join(f"{c}×{n}" for c, n in sorted(recon.by_code.items()))
        escalate = recon.halted or recon.mismatched_orders > RECON_ESCALATION
        f = col.finding("RECON_ESCALATION" if escalate else "RECON_MISMATCH", "critical" if escalate else "error",
                        f"{recon.mismatches} reconciliation mismatch(es) on {recon.mismatched_orders} order(s): "
                        f"{codes}" + (" — recon halted" if recon.halted else ""))
        f.count = recon.mismatches
        if escalate:
            f.action = f"{ACTIONS['RECON_ESCALATION']}; {ACTIONS['RECON_MISMATCH']}"

    flag = read_flag(ws)
    if flag.halted:
        f = col.finding("EMERGENCY_FLAG_SET", "warn",
                        f"data/emergency.flag is set ({flag.describe()})")
        f.count = 1

    _court_findings(col, court)

    ordered = sorted(findings.values(), key=lambda f: (-SEVERITY_RANK[f.severity], f.code))
    worst = ordered[0].severity if ordered else "info"
    verdict = "bad" if SEVERITY_RANK[worst] >= SEVERITY_RANK["error"] else "warn" if worst == "warn" else "ok"
    start = col.run_start or {}
    strategy = strategy_raw if isinstance(strategy_raw := start.get("strategy"), dict) else {}
    end = col.run_end or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "verdict": verdict,
        "status": status,
        "reason": reason,
        "run": {
            "seed": start.get("seed"), "strategy": strategy.get("name"), "strategy_ref": strategy.get("ref"),
            "adapter": start.get("adapter"), "package_version": start.get("package_version"),
            "ssot_sha256": start.get("ssot_sha256"),
            "dataset_path": dataset.get("path"), "dataset_sha256": dataset.get("dataset_sha"),
            "dataset_pinned_sha256": dataset.get("pinned_sha"), "dataset_sha_matches": dataset.get("sha_matches"),
            "bars": dataset.get("bars"), "gaps": dataset.get("gaps"), "duplicates": dataset.get("duplicates"),
            "bars_processed": end.get("bars_processed"), "bars_total": end.get("bars_total"),
            "orders": end.get("orders"), "fills": end.get("fills"), "trades": end.get("trades"),
            "final_equity": end.get("final_equity"), "total_return": end.get("total_return"),
        },
        "log": {"events": col.total, "bytes": sum(s.size for s in segments), "segments": stats.segments,
                "archived": any(s.archived for s in segments), "integrity": integrity},
        "counts": {"by_level": dict(sorted(col.by_level.items())),
                   "by_category": dict(sorted(col.by_category.items())),
                   "error_rate": round(rate, 6)},
        "recon": recon.to_dict(),
        "reports": {"court_report": court is not None, "court_problem": None if court_problem in (None, "absent")
                    else court_problem},
        "risk": {"position_limit_usd": limit if isinstance(limit, (int, float)) else None,
                 "max_position_usd": col.max_position_usd,
                 "daily_loss_limit_usd": risk.get("daily_loss_limit_usd")
                 if isinstance(risk.get("daily_loss_limit_usd"), (int, float)) else None,
                 "worst_day": col.worst_day},
        "findings": [asdict(f) for f in ordered],
        "replay": _replay(ws, run_id, start, dataset),
    }


def _court_findings(col: _Collector, court: dict[str, Any] | None) -> None:
    """Findings the engine recorded only in the court report (no event carries them): today the
    run's SSOT approval state (SSOT_UNAPPROVED, a circumstance of the run, not one of its inputs)."""
    if not isinstance(court, dict) or not isinstance(court.get("findings"), list):
        return
    for entry in court["findings"]:
        if not isinstance(entry, dict) or entry.get("code") != "SSOT_UNAPPROVED":
            continue
        message = str(entry.get("message") or "the SSOT was not approved")
        f = col.finding("SSOT_UNAPPROVED", "warn", f"court report: {message}")
        count = entry.get("count")
        f.count = count if isinstance(count, int) and count > 0 else 1


def _adapter_health(col: _Collector, findings: dict[str, Finding], rate: float) -> None:
    """The runbook's "Orders Not Executing" when the adapter fails: its ERROR rate (ERROR events
    over all events, runbook Step 3: <5% good, >10% bad) and its errors against the orders placed."""
    adapter_errors = col.by_type.get("adapter_error", 0)
    placed = col.by_type.get("order_placed", 0) or int((col.run_end or {}).get("orders") or 0)
    fills = col.by_type.get("order_filled", 0)
    end_fills = (col.run_end or {}).get("fills")
    if isinstance(end_fills, int):
        fills = end_fills
    dead = placed > 0 and fills == 0
    if rate <= ERROR_RATE_GOOD and not dead:
        return
    per_order = f"{adapter_errors / placed:.0%} of the {placed} order(s) placed" if placed else "no order placed"
    title = (f"ERROR rate {rate:.1%} (runbook: <5% good, >10% bad), {adapter_errors} adapter error(s), "
             f"{per_order}, {fills} fill(s)")
    severity = "error" if rate > ERROR_RATE_BAD or dead else "warn"
    existing = findings.get("ORDERS_NOT_EXECUTING")
    if existing is not None:  # rejected orders too: keep their items, say both
        existing.title = f"{existing.title}; {title}"
        existing.severity = "error" if severity == "error" else existing.severity
        existing.action = f"{ACTIONS['ORDERS_NOT_EXECUTING_ADAPTER']}; {existing.action}"
        return
    f = col.finding("ORDERS_NOT_EXECUTING", severity, title)
    f.count = adapter_errors
    f.action = ACTIONS["ORDERS_NOT_EXECUTING_ADAPTER"]


def _risk_limits(ws: Workspace, run_start: dict[str, Any] | None) -> dict[str, Any]:
    """The risk section in force during the run (run_start's SSOT snapshot), else the current one."""
    snapshot = (run_start or {}).get("ssot")
    if not isinstance(snapshot, dict):
        snapshot, _ = read_ssot(ws)
    risk = (snapshot or {}).get("risk")
    return risk if isinstance(risk, dict) else {}


def _error_types(finding: Finding) -> list[tuple[str, int]]:
    counts = Counter(i["event_type"] for i in finding.items)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _current_dataset_sha(ws: Workspace, path: Any) -> str | None:
    if not isinstance(path, str):
        return None
    try:
        target = ws.resolve_inside(path)
    except TreasureError:
        return None
    return sha256_file(target) if target.is_file() else None


def _replay(ws: Workspace, run_id: str, start: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The runbook's "How to Replay a Run": the same inputs as a command."""
    from importlib.util import find_spec

    if find_spec("treasure.cli.commands.replay") is not None:
        return {"command": f"treasure replay {run_id} --from events", "ssot_changed": None}
    strategy = strategy_raw if isinstance(strategy_raw := start.get("strategy"), dict) else {}
    parts = ["treasure run", f"--seed {start.get('seed')}", f"--strategy {strategy.get('ref') or strategy.get('name')}",
             "--run-id replay_001"]
    ds = ds_raw if isinstance(ds_raw := start.get("dataset"), dict) else {}
    if ds.get("override"):
        parts.append(f"--dataset {ds.get('path')}")
    changed = None
    if ws.ssot_path.is_file() and isinstance(start.get("ssot_sha256"), str):
        changed = sha256_file(ws.ssot_path) != start["ssot_sha256"]
        if changed:
            parts.append("--ssot <the SSOT snapshot in run_start's payload.ssot>")
    return {"command": " ".join(parts), "ssot_changed": changed}


def render(doc: dict[str, Any]) -> str:
    """One screen: header, then each finding with up to three items and its Action line."""
    run, log = doc["run"], doc["log"]
    status = doc["status"] + (f" ({doc['reason']})" if doc["reason"] else "")
    lines = [f"treasure diagnose {doc['run_id']}: {doc['verdict'].upper()}",
             f"  status     {status}"]
    if run["seed"] is not None:
        lines.append(f"  run_start  seed {run['seed']}  strategy {run['strategy']} ({run['strategy_ref']})  "
                     f"adapter {run['adapter']}  version {run['package_version']}  ssot {str(run['ssot_sha256'])[:12]}…")
    else:
        lines.append("  run_start  MISSING")
    if run["dataset_sha256"]:
        match = "matches the pin" if run["dataset_sha_matches"] else "DIFFERS from the pin"
        lines.append(f"  dataset    {run['dataset_path']}  sha {run['dataset_sha256'][:12]}… {match}  "
                     f"{run['bars']} bars, {run['gaps']} gap(s), {run['duplicates']} duplicate(s)")
    if run["bars_processed"] is not None:
        ret = f" ({run['total_return'] * 100:+.2f}%)" if isinstance(run["total_return"], (int, float)) else ""
        lines.append(f"  run_end    bars {run['bars_processed']}/{run['bars_total']}  orders {run['orders']}  "
                     f"fills {run['fills']}  trades {run['trades']}  final equity {run['final_equity']:,.2f}{ret}")
    else:
        lines.append("  run_end    MISSING")
    by_level = doc["counts"]["by_level"]
    integrity = log["integrity"]
    check = "chain OK" if integrity["ok"] else "not verified" if integrity["ok"] is None else \
        f"BROKEN ({integrity['code']})"
    where = "an archive" if log["archived"] else f"{len(log['segments'])} file(s)"
    lines.append(f"  events     {log['events']} in {where}  ERROR {by_level.get('ERROR', 0)} "
                 f"({doc['counts']['error_rate']:.1%})  CRITICAL {by_level.get('CRITICAL', 0)}  {check}")
    recon = doc["recon"]
    if recon["source"]:
        lines.append(f"  recon      {recon['mismatches']} mismatch(es) from {recon['source']}"
                     + (f", {recon['matched']} matched" if recon["matched"] is not None else ""))
    if not doc["findings"]:
        lines.append("findings   none: the run is clean")
    else:
        lines.append("findings")
    for finding in doc["findings"]:
        lines.append(f"  [{finding['severity']}] {finding['code']}: {finding['title']}")
        for item in finding["items"][:SHOWN_ITEMS]:
            lines.append(f"      {format_event(item, width=110)}")
            for ctx in item.get("context") or []:
                lines.append(f"        after #{ctx['seq']} {ctx['level']} {ctx['category']} {ctx['event_type']}")
        hidden = len(finding["items"]) - SHOWN_ITEMS + finding["more"]
        if hidden > 0 and finding["items"]:
            lines.append(f"      … {hidden} more (--json, or treasure events)")
        if finding["action"]:
            lines.append(f"      Action: {finding['action']}")
    lines.append(f"replay     {doc['replay']['command']}")
    return "\n".join(lines)
