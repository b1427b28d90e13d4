"""``treasure checklist pre|post|eod``: the runbook's checklists, each line a check.

Every line of the runbook's Pre-Run, Post-Run and End-of-Day checklists is a :class:`Check` with
``pass``, ``warn`` or ``fail`` and a reason (plus the runbook's action when it fails); a checklist
passes (exit 0) only when nothing fails. Warnings are for what cannot be confirmed rather than
what is wrong: gates that have not run yet, a run without reconciliation evidence, an SSOT
without an approval lock. So ``checklist pre`` passes on a fresh clone after one ``treasure run``
(with warnings), and fails as soon as a gate fails, the dataset or SSOT changed, or an alert is
pending. It does not run the gates itself unless asked (``--run-gates``): the full suite takes
seconds to minutes and writes evidence, and a checklist should be a quick, read-only look.

Two extra lines beyond the runbook's, because the checklists would be wrong without them: ``pre``
checks that no emergency halt is in force, and ``post`` checks the event log's integrity and the
ERROR rate (the runbook's Step 3).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeGuard

from treasure import gate_history
from treasure.config import load_config
from treasure.contracts import Contracts
from treasure.errors import HINTS, TreasureError
from treasure.ops import alerts as alerts_mod
from treasure.ops.archive import pack
from treasure.ops.diagnose import diagnose
from treasure.ops.emergency import read_flag, run_gates, verify_available
from treasure.ops.evidence import (
    RUNBOOK_GATES,
    backup_db,
    read_db,
    read_gates,
    read_lock,
    read_ssot,
    sha256_file,
)
from treasure.ops.query import EventFilter, iter_events
from treasure.ops.run_catalog import is_recon_log, latest_run_id, read_court, resolve_run_id
from treasure.workspace import Workspace

SCHEMA_VERSION = 1
STATUSES = ("pass", "warn", "fail")
NEAR_LIMIT = 0.8              # a day that lost 80% of the daily limit is worth a look
REPEAT_WARN = 2               # an error pattern seen this often is "repeated"
REPEAT_FAIL_RUNS = 3          # ... and in this many runs, systemic
MAX_LEVERAGE = 10.0           # position limit above 10x starting cash is refused


@dataclass(frozen=True)
class Check:
    id: str
    title: str      # the runbook's checklist line
    status: str     # pass | warn | fail
    reason: str
    action: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _doc(name: str, checks: list[Check], run_id: str | None = None) -> dict[str, Any]:
    counts = {s: sum(1 for c in checks if c.status == s) for s in STATUSES}
    return {"schema_version": SCHEMA_VERSION, "checklist": name, "run_id": run_id, "ok": counts["fail"] == 0,
            "counts": counts, "checks": [c.to_dict() for c in checks]}


def _guard(check_id: str, title: str, fn: Callable[[], Check]) -> Check:
    """A check that meets broken evidence fails with the coded error instead of crashing."""
    try:
        return fn()
    except TreasureError as exc:
        return Check(check_id, title, "fail", f"{exc.code}: {exc}", exc.hint)


# ------------------------------------------------------------------------------------------
# pre
# ------------------------------------------------------------------------------------------
def _check_gates(ws: Workspace) -> Check:
    title = "All gates passing (verify:e2, verify:phase2, verify:determinism, etc.)"
    state = read_gates(ws)
    if not state.ran:
        return Check("pre.gates", title, "warn", "gates not run yet: no evidence/gates.json",
                     "run `treasure verify` (or `treasure checklist pre --run-gates`)")
    if state.problem:
        return Check("pre.gates", title, "fail", f"evidence/gates.json is {state.problem}",
                     "re-run `treasure verify` to rewrite it")
    details = {"gates": dict(sorted(state.gates.items()))}
    latest = gate_history.summary(ws.root)
    failed = [g for g, s in state.gates.items() if s == "failed"]
    if failed:
        reasons = "; ".join(f"{g}: {state.reasons.get(g, 'failed')}"
                            + (f" ({latest[g]['consecutive_failures']} in a row)" if g in latest else "")
                            for g in sorted(failed))
        return Check("pre.gates", title, "fail", f"failing: {reasons}",
                     "runbook Gate Failures: fix, then `treasure verify` again", details)
    old = _stale_gates(state, latest)
    if old:
        return Check("pre.gates", title, "fail", f"stale: {', '.join(old)}: the last result is older than "
                     f"{gate_history.STALE_AFTER_S // 3600} h and vouches for nothing today",
                     "re-run `treasure verify` (or `treasure checklist pre --run-gates`)", details)
    not_passed = [f"{g} {state.gates.get(g, 'not run')}" for g in RUNBOOK_GATES if state.gates.get(g) != "passed"]
    stale = _changed_since(ws, state.mtime)
    if stale:
        return Check("pre.gates", title, "warn", f"gates ran before {stale} changed: their verdict may be stale",
                     "re-run `treasure verify`", details)
    if not_passed:
        return Check("pre.gates", title, "warn", f"no failures, but not passed: {', '.join(not_passed)}",
                     "run the missing gates with `treasure verify`", details)
    return Check("pre.gates", title, "pass", f"all {len(RUNBOOK_GATES)} runbook gates passed", details=details)


def _stale_gates(state: Any, latest: dict[str, dict[str, Any]]) -> list[str]:
    """Gates of gates.json whose latest result is older than gate_history.STALE_AFTER_S: aged from
    the gate history, or from gates.json's mtime for a gate the history does not know."""
    import time

    file_age = None if state.mtime is None else time.time() - state.mtime  # treasure: allow-nondeterminism age of operational evidence, not a run
    old = []
    for gate in sorted(state.gates):
        age = latest[gate]["age_s"] if gate in latest else file_age
        if age is not None and age > gate_history.STALE_AFTER_S:
            old.append(f"{gate} ({gate_history.format_age(age)} old)")
    return old


def _check_gate_escalation(ws: Workspace) -> Check | None:
    """A GATE_ESCALATE line when a gate failed more than gate_history.ESCALATE_AFTER times in a
    row (runbook Escalation: ">5 consecutive gate failures -> escalate to engineering team")."""
    over = {g: s["consecutive_failures"] for g, s in gate_history.summary(ws.root).items() if s["escalate"]}
    if not over:
        return None
    which = ", ".join(f"{g} failed {n} times in a row" for g, n in over.items())
    return Check("pre.gates_escalate", "Escalate after >5 consecutive gate failures", "fail",
                 f"GATE_ESCALATE: {which}",
                 "runbook Escalation: >5 consecutive gate failures -> escalate to the engineering team; "
                 "`treasure gates history` shows the trend", {"consecutive_failures": over})


def _changed_since(ws: Workspace, mtime: float | None) -> str | None:
    if mtime is None:
        return None
    candidates = [ws.ssot_path, ws.config_schema_path]
    if ws.truth_dir.is_dir():
        candidates += sorted(ws.truth_dir.rglob("*.json"))
    for path in candidates:
        try:
            if path.stat().st_mtime > mtime:
                return ws.relative(path)
        except OSError:
            continue
    return None


def _check_db(ws: Workspace, ssot: dict[str, Any] | None) -> Check:
    title = "Database available (if persistence enabled)"
    state = read_db(ws, ssot)
    details = state.to_dict(ws)
    if state.state == "disabled":
        return Check("pre.db", title, "pass", "persistence disabled: no database needed", details=details)
    if state.state == "absent":
        return Check("pre.db", title, "pass", f"{details['path']} {state.detail}", details=details)
    if state.state == "ok":
        return Check("pre.db", title, "pass", f"{details['path']}: {state.detail}", details=details)
    if not state.relevant:
        return Check("pre.db", title, "pass", f"persistence disabled: {state.detail}", details=details)
    return Check("pre.db", title, "fail", f"{details['path'] or 'database'}: {state.detail}",
                 HINTS["DB_UNAVAILABLE"], details)


def _check_dataset(ws: Workspace, ssot: dict[str, Any]) -> Check:
    title = "Dataset validated (SHA256 matches expected)"
    section = section_raw if isinstance(section_raw := ssot.get("dataset"), dict) else {}
    pinned, raw_path = section.get("sha256"), section.get("path")
    if not isinstance(raw_path, str) or not isinstance(pinned, str):
        return Check("pre.dataset", title, "fail", "the SSOT has no dataset.path / dataset.sha256", HINTS["SSOT_SCHEMA"])
    path = ws.resolve_inside(raw_path, field="dataset.path", source="spec/ssot.json")
    if not path.is_file():
        return Check("pre.dataset", title, "fail", f"{raw_path} does not exist", HINTS["DATA_MISSING"])
    actual = sha256_file(path)
    details = {"path": raw_path, "sha256": actual, "pinned_sha256": pinned}
    if actual != pinned:
        return Check("pre.dataset", title, "fail", f"{raw_path} hashes to {actual[:12]}…, pinned {pinned[:12]}…",
                     HINTS["DATA_SHA_MISMATCH"], details)
    return Check("pre.dataset", title, "pass", f"{raw_path} matches its pinned SHA-256 {pinned[:12]}…", details=details)


def _check_ssot(ws: Workspace) -> Check:
    title = "SSOT unchanged (spec/ssot.json)"
    config = load_config(ws.ssot_path, ws.config_schema_path, display_path=ws.relative(ws.ssot_path))
    lock = read_lock(ws)
    details = lock.to_dict()
    if lock.present:
        if lock.problem:
            return Check("pre.ssot", title, "fail", f"spec/ssot.lock: {lock.problem}",
                         "re-approve with `treasure ssot approve`", details)
        if lock.tamper:
            return Check("pre.ssot", title, "fail", "changed since approval: " + "; ".join(lock.tamper),
                         "review the change; approve it with `treasure ssot approve` or restore the approved files",
                         details)
        if lock.matches:
            return Check("pre.ssot", title, "pass", f"matches its approval (spec/ssot.lock, {config.sha256[:12]}…)",
                         details=details)
        return Check("pre.ssot", title, "fail", f"spec/ssot.json ({config.sha256[:12]}…) differs from the approved "
                     f"{str(lock.approved_sha256)[:12]}…", "review the change; approve it with `treasure ssot approve` "
                     "or restore the approved SSOT", details)
    try:
        last = latest_run_id(ws)
    except TreasureError:
        return Check("pre.ssot", title, "warn", "no approval lock (spec/ssot.lock) and no previous run to compare with",
                     "approve the SSOT with `treasure ssot approve`", details)
    court, _ = read_court(ws, last)
    recorded = ((court or {}).get("inputs") or {}).get("ssot_sha256")
    if recorded == config.sha256:
        return Check("pre.ssot", title, "pass", f"same as in the latest run {last} ({config.sha256[:12]}…); "
                     "no approval lock (spec/ssot.lock)", details=details)
    if recorded is None:
        return Check("pre.ssot", title, "warn", f"no approval lock, and the latest run {last} recorded no SSOT hash",
                     "approve the SSOT with `treasure ssot approve`", details)
    return Check("pre.ssot", title, "warn", f"changed since the latest run {last} ({recorded[:12]}… -> "
                 f"{config.sha256[:12]}…) and no approval lock to say the change was approved",
                 "review the change, then `treasure ssot approve`", details)


def _daily_sigma(ws: Workspace, ssot: dict[str, Any]) -> float | None:
    """Standard deviation of close-to-close daily returns of the pinned dataset (None if unknown)."""
    import numpy as np

    from treasure.data import load_dataset

    section = ssot.get("dataset") or {}
    try:
        path = ws.resolve_inside(section["path"], field="dataset.path")
        bars = load_dataset(path, display_path=section["path"]).bars
    except (TreasureError, KeyError, TypeError):
        return None
    days = np.asarray(bars.t_ms) // 86_400_000
    last_of_day = np.flatnonzero(np.append(days[1:] != days[:-1], True))
    closes = np.asarray(bars.close)[last_of_day]
    if len(closes) < 3:
        return None
    returns = np.diff(closes) / closes[:-1]
    return float(np.std(returns, ddof=1))


def _positive(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and value > 0


def _check_risk(ws: Workspace, ssot: dict[str, Any]) -> Check:
    title = "Risk limits appropriate for market conditions"
    risk = risk_raw if isinstance(risk_raw := ssot.get("risk"), dict) else {}
    cash = ((ssot.get("run") or {}).get("starting_cash_usd"))
    position, daily = risk.get("max_position_size_usd"), risk.get("daily_loss_limit_usd")
    if not (_positive(cash) and _positive(position) and _positive(daily)):
        return Check("pre.risk", title, "fail", "risk.max_position_size_usd, risk.daily_loss_limit_usd and "
                     "run.starting_cash_usd must be positive numbers", HINTS["SSOT_SCHEMA"])
    fails: list[str] = []
    warns: list[str] = []
    if position > MAX_LEVERAGE * cash:
        fails.append(f"max_position_size_usd {position:,.0f} is over {MAX_LEVERAGE:g}x the starting cash {cash:,.0f}")
    elif position > cash:
        warns.append(f"max_position_size_usd {position:,.0f} exceeds the starting cash {cash:,.0f} (leverage)")
    if daily >= cash:
        fails.append(f"daily_loss_limit_usd {daily:,.0f} is not below the starting cash {cash:,.0f}: it can never "
                     "stop a loss in time")
    elif daily > 0.2 * cash:
        warns.append(f"daily_loss_limit_usd {daily:,.0f} allows losing over 20% of the starting cash in a day")
    order = ((ssot.get("strategy") or {}).get("params") or {}).get("order_usd")
    if isinstance(order, (int, float)) and order > position:
        warns.append(f"strategy order_usd {order:,.0f} exceeds max_position_size_usd {position:,.0f}: orders will be cut")
    band = (ssot.get("expected") or {}).get("pnl_band_usd")
    if isinstance(band, list) and len(band) == 2 and all(isinstance(b, (int, float)) for b in band) and band[0] >= band[1]:
        fails.append(f"expected.pnl_band_usd {band} is empty (low >= high): every post-run check would fail")
    sigma = _daily_sigma(ws, ssot)
    details: dict[str, Any] = {"max_position_size_usd": position, "daily_loss_limit_usd": daily,
                               "starting_cash_usd": cash, "daily_return_sigma": sigma}
    if sigma is not None and math.isfinite(sigma):
        typical = sigma * min(position, cash)
        details["typical_daily_move_usd"] = round(typical, 2)
        if daily < typical:
            warns.append(f"daily_loss_limit_usd {daily:,.0f} is below one typical daily move of a full position "
                         f"(~{typical:,.0f} USD at the dataset's {sigma:.2%} daily volatility): expect frequent halts")
    if fails:
        return Check("pre.risk", title, "fail", "; ".join(fails + warns),
                     "adjust spec/ssot.json's risk section (with risk approval)", details)
    if warns:
        return Check("pre.risk", title, "warn", "; ".join(warns), "review with risk management", details)
    return Check("pre.risk", title, "pass", f"position limit {position:,.0f} USD, daily loss limit {daily:,.0f} USD "
                 f"against {cash:,.0f} USD starting cash"
                 + (f", typical daily move ~{details['typical_daily_move_usd']:,.0f} USD" if "typical_daily_move_usd"
                    in details else ""), details=details)


def _check_alerts(ws: Workspace) -> Check:
    title = "No pending alerts from previous runs"
    pending = alerts_mod.pending(ws)
    if pending:
        listed = "; ".join(f"{a.id} {a.title}" for a in pending[:5]) + (" …" if len(pending) > 5 else "")
        return Check("pre.alerts", title, "fail", f"{len(pending)} pending: {listed}",
                     "review each with `treasure diagnose RUN_ID`, then `treasure ack ALERT`",
                     {"pending": [a.id for a in pending]})
    return Check("pre.alerts", title, "pass", "no pending alerts")


def _check_flag(ws: Workspace) -> Check:
    title = "No emergency halt in force (data/emergency.flag)"
    flag = read_flag(ws)
    if flag.halted:
        return Check("pre.emergency", title, "fail", f"halted {flag.describe()}",
                     "a run would halt at once; fix the cause, then `treasure resume`", flag.to_dict())
    return Check("pre.emergency", title, "pass", "flag clear")


def pre(ws: Workspace, *, run_all_gates: bool = False) -> dict[str, Any]:
    checks: list[Check] = []
    if run_all_gates:
        if verify_available():
            with gate_history.running_as("checklist"):  # recorded as run_by=checklist in the gate history
                run_gates(ws, ())
        else:
            checks.append(Check("pre.run_gates", "Run the gates (--run-gates)", "warn",
                                "`treasure verify` is not available in this installation"))
    ssot, problem = read_ssot(ws)

    def needs_ssot(check: Callable[[dict[str, Any]], Check], check_id: str, title: str) -> Check:
        if ssot is None:
            return Check(check_id, title, "fail", f"spec/ssot.json is {problem}", HINTS["SSOT_JSON"])
        return _guard(check_id, title, lambda: check(ssot))

    checks.append(_guard("pre.gates", "All gates passing", lambda: _check_gates(ws)))
    escalation = _check_gate_escalation(ws)
    if escalation is not None:
        checks.append(escalation)
    checks.append(_guard("pre.db", "Database available (if persistence enabled)", lambda: _check_db(ws, ssot)))
    checks.append(needs_ssot(lambda doc: _check_dataset(ws, doc), "pre.dataset",
                             "Dataset validated (SHA256 matches expected)"))
    checks.append(_guard("pre.ssot", "SSOT unchanged (spec/ssot.json)", lambda: _check_ssot(ws)))
    checks.append(needs_ssot(lambda doc: _check_risk(ws, doc), "pre.risk",
                             "Risk limits appropriate for market conditions"))
    checks.append(_guard("pre.alerts", "No pending alerts from previous runs", lambda: _check_alerts(ws)))
    checks.append(_guard("pre.emergency", "No emergency halt in force", lambda: _check_flag(ws)))
    return _doc("pre", checks)


# ------------------------------------------------------------------------------------------
# post
# ------------------------------------------------------------------------------------------
def post(ws: Workspace, run_id: str | None = None) -> dict[str, Any]:
    run_id = resolve_run_id(ws, run_id)
    doc = diagnose(ws, run_id)
    checks = [
        _check_complete(doc),
        _check_log(doc),
        _guard("post.recon", "All orders reconciled", lambda: _check_recon(ws, run_id, doc)),
        _check_critical(doc),
        _check_error_rate(doc),
        _guard("post.pnl", "PnL within expected range", lambda: _check_pnl(ws, run_id)),
        _check_positions(doc),
        _guard("post.reports", "Reports generated (court_report.json, eqs_report.json)",
               lambda: _check_reports(ws, run_id)),
    ]
    return _doc("post", checks, run_id)


def _check_complete(doc: dict[str, Any]) -> Check:
    title = "Run completed successfully (check SYS events)"
    status, reason = doc["status"], doc["reason"]
    if status == "complete":
        return Check("post.complete", title, "pass", f"run_end status complete after {doc['run']['bars_processed']} bars")
    if status == "incomplete":  # diagnose asked treasure.ops.run_catalog.run_verdict: no court report, or no run_end
        why = "no run_end event: the run crashed or is still running" if doc["run"]["bars_processed"] is None \
            and not doc["reports"]["court_report"] else f"incomplete ({doc['reason'] or 'no court report'})"
        return Check("post.complete", title, "fail", why, f"`treasure diagnose {doc['run_id']}`")
    action = next((f["action"] for f in doc["findings"] if f["code"].startswith(("HALT_", "RUN_ERROR", "RUN_DEGRADED"))), "")
    return Check("post.complete", title, "fail", f"run_end status {status}" + (f" ({reason})" if reason else ""),
                 action or f"`treasure diagnose {doc['run_id']}`")


def _check_log(doc: dict[str, Any]) -> Check:
    title = "Event log valid (schema, seq, time order, hash chain)"
    integrity = doc["log"]["integrity"]
    if integrity["ok"]:
        return Check("post.log", title, "pass", integrity["message"])
    where = f" at {integrity['path']}:{integrity['line']}" if integrity.get("line") else ""
    return Check("post.log", title, "fail", f"{integrity['code']}: {integrity['message']}{where}",
                 integrity.get("hint") or "")


def _check_recon(ws: Workspace, run_id: str, doc: dict[str, Any]) -> Check:
    title = "All orders reconciled (verify:dryrun-live or check recon_report.json)"
    recon = doc["recon"]
    if recon["problem"]:
        return Check("post.recon", title, "fail", f"recon evidence unreadable: {recon['problem']}",
                     f"re-run `treasure recon {run_id}`")
    if recon["source"]:
        codes = ", ".join(f"{c}×{n}" for c, n in sorted(recon["by_code"].items()))
        if recon["mismatches"] or recon["halted"]:
            return Check("post.recon", title, "fail", f"{recon['mismatches']} mismatch(es): {codes}",
                         "check adapter logs, verify network latency, review tolerance settings", recon)
        matched = f"{recon['matched']} matched, " if recon["matched"] is not None else ""
        return Check("post.recon", title, "pass", f"{matched}0 mismatches ({recon['source']})", details=recon)
    gates = read_gates(ws)
    if gates.status_of("dryrun-live") == "passed":
        return Check("post.recon", title, "pass", "no recon evidence for this run; the dryrun-live gate passed")
    return Check("post.recon", title, "warn", "no reconciliation evidence for this run",
                 f"reconcile with `treasure recon {run_id}` (or run `treasure verify dryrun-live`)")


def _check_critical(doc: dict[str, Any]) -> Check:
    title = "No CRITICAL events in log"
    count = doc["counts"]["by_level"].get("CRITICAL", 0)
    if count:
        types = ", ".join(f["code"] for f in doc["findings"] if f["severity"] == "critical")
        return Check("post.critical", title, "fail", f"{count} CRITICAL event(s) ({types})",
                     "CRITICAL event detected -> page on-call engineer immediately")
    return Check("post.critical", title, "pass", "none")


def _check_error_rate(doc: dict[str, Any]) -> Check:
    title = "ERROR rate below 5% (runbook Step 3)"
    rate = doc["counts"]["error_rate"]
    errors = doc["counts"]["by_level"].get("ERROR", 0)
    text = f"{errors} ERROR event(s), {rate:.1%} of {doc['log']['events']}"
    action = f"`treasure events {doc['run_id']} --level ERROR --count-by event_type`"
    if rate > 0.10:
        return Check("post.error_rate", title, "fail", text + " (>10% is bad)", action)
    if rate >= 0.05:
        return Check("post.error_rate", title, "warn", text + " (5-10%)", action)
    return Check("post.error_rate", title, "pass", text)


def _check_pnl(ws: Workspace, run_id: str) -> Check:
    title = "PnL within expected range"
    court, problem = read_court(ws, run_id)
    if court is None:
        return Check("post.pnl", title, "fail", f"court report {problem}", HINTS["REPORT_MISSING"])
    metrics = court.get("metrics") or {}
    final, start = metrics.get("final_equity_usd"), metrics.get("starting_cash_usd")
    if not isinstance(final, (int, float)) or not isinstance(start, (int, float)):
        return Check("post.pnl", title, "fail", "the court report has no final_equity_usd / starting_cash_usd",
                     HINTS["REPORT_INVALID"])
    pnl = final - start
    ssot, _ = read_ssot(ws)
    band = ((ssot or {}).get("expected") or {}).get("pnl_band_usd")
    details = {"pnl_usd": round(pnl, 2), "band_usd": band}
    if not (isinstance(band, list) and len(band) == 2 and all(isinstance(b, (int, float)) for b in band)):
        return Check("post.pnl", title, "warn", f"PnL {pnl:+,.2f} USD; no expected band in the SSOT",
                     "set expected.pnl_band_usd in spec/ssot.json", details)
    low, high = band
    if low <= pnl <= high:
        return Check("post.pnl", title, "pass", f"PnL {pnl:+,.2f} USD within [{low:,.0f}, {high:,.0f}]", details=details)
    return Check("post.pnl", title, "fail", f"PnL {pnl:+,.2f} USD outside the expected band [{low:,.0f}, {high:,.0f}]",
                 "review the strategy and market before the next run; widen the band only with approval", details)


def _check_positions(doc: dict[str, Any]) -> Check:
    title = "Position sizes within limits"
    risk = doc["risk"]
    limit, peak = risk["position_limit_usd"], risk["max_position_usd"]
    if limit is None:
        return Check("post.positions", title, "warn", f"largest position {peak:,.2f} USD; no limit recorded",
                     "the run_start event holds no risk.max_position_size_usd")
    details = {"max_position_usd": peak, "limit_usd": limit}
    if peak > limit * (1 + 1e-9):
        return Check("post.positions", title, "fail", f"a position of {peak:,.2f} USD exceeded max_position_size_usd "
                     f"{limit:,.0f}", "Position Limit Exceeded: close positions or increase limit (with risk approval)",
                     details)
    return Check("post.positions", title, "pass", f"largest position {peak:,.2f} USD <= limit {limit:,.0f}",
                 details=details)


def _check_reports(ws: Workspace, run_id: str) -> Check:
    title = "Reports generated (court_report.json, eqs_report.json)"
    from treasure.ops.evidence import read_json_doc

    contracts = Contracts(ws.truth_dir)
    problems = []
    for name in ("court_report", "eqs_report"):
        path = ws.run_reports(run_id) / f"{name}.json"
        doc, problem = read_json_doc(path)
        if problem is not None:
            problems.append(f"{ws.relative(path)} {problem}")
            continue
        errors = contracts.errors(name, doc)
        if errors:
            problems.append(f"{ws.relative(path)} invalid: {errors[0]}")
        elif isinstance(doc, dict) and doc.get("run_id") != run_id:
            problems.append(f"{ws.relative(path)} names run {doc.get('run_id')!r}")
    from treasure.ops.run_catalog import latest_pair_problem

    pair, named = latest_pair_problem(ws)
    if pair is not None and run_id in (named or "").split(","):
        problems.append(pair)
        if len(problems) == 1:
            return Check("post.reports", title, "fail", pair, "the run's own reports (reports/runs/<id>/) are "
                         "the evidence; `treasure run --overwrite` of the latest run rewrites both latest copies")
    if problems:
        return Check("post.reports", title, "fail", "; ".join(problems), HINTS["REPORT_INVALID"])
    return Check("post.reports", title, "pass", "both present and valid against truth/")


# ------------------------------------------------------------------------------------------
# end of day
# ------------------------------------------------------------------------------------------
def day_runs(ws: Workspace) -> list[str]:
    """The runs since the last end of day: engine runs whose logs are still in logs/events/."""
    return [r for r in ws.run_ids() if not is_recon_log(r)]


def eod(ws: Workspace, *, dry_run: bool = False) -> dict[str, Any]:
    runs = day_runs(ws)
    reviews = [diagnose(ws, run_id, verify=False) for run_id in runs]
    patterns, new_codes = _error_patterns(ws, ws.run_ids())  # engine and recon logs alike
    checks = [
        _guard("eod.archive", "Archive event logs (tar.gz and move to archive/)", lambda: _eod_archive(ws, dry_run)),
        _guard("eod.db_backup", "Backup database (if persistence enabled)", lambda: _eod_backup(ws, dry_run)),
        _eod_pnl(reviews),
        _eod_critical(patterns),
        _eod_errors(patterns),
        _eod_runbook(new_codes),
    ]
    doc = _doc("eod", checks)
    doc["runs"] = runs
    return doc


def _eod_archive(ws: Workspace, dry_run: bool) -> Check:
    title = "Archive event logs (tar.gz and move to archive/)"
    result = pack(ws, dry_run=dry_run)
    details = result.to_dict()
    skipped = "; ".join(f"{r}: {why}" for r, why in sorted(result.skipped.items()))
    if not result.runs:
        if skipped:
            return Check("eod.archive", title, "warn", f"nothing archived; left: {skipped}",
                         "finished runs are archived; check the open ones with `treasure diagnose`", details)
        return Check("eod.archive", title, "pass", "nothing to archive", details=details)
    verb = "would archive" if dry_run else "archived"
    text = f"{verb} {len(result.runs)} run(s), {result.members} file(s), {result.bytes:,} bytes into {result.archive}"
    if skipped:
        return Check("eod.archive", title, "warn", f"{text}; left: {skipped}",
                     "check the open runs with `treasure diagnose`", details)
    return Check("eod.archive", title, "pass", text, details=details)


def _eod_backup(ws: Workspace, dry_run: bool) -> Check:
    title = "Backup database (if persistence enabled)"
    state = read_db(ws)
    details = state.to_dict(ws)
    if state.state == "disabled":
        return Check("eod.db_backup", title, "pass", f"nothing to back up: {state.detail}", details=details)
    if state.state == "absent":
        return Check("eod.db_backup", title, "warn", f"persistence enabled but {details['path']} does not exist yet",
                     "runs with --db create it", details)
    if state.state != "ok" or state.path is None:
        return Check("eod.db_backup", title, "fail", f"{details['path']}: {state.detail}", HINTS["DB_UNAVAILABLE"], details)
    if dry_run:
        return Check("eod.db_backup", title, "pass", f"would back up {details['path']} to archive/db/", details=details)
    import sqlite3

    try:
        dest, created = backup_db(state.path, ws.archive_dir / "db")
    except (sqlite3.Error, OSError, TreasureError) as exc:
        return Check("eod.db_backup", title, "fail", f"backup of {details['path']} failed: {exc}",
                     HINTS["DB_UNAVAILABLE"], details)
    details["backup"] = ws.relative(dest)
    return Check("eod.db_backup", title, "pass", f"{'backed up to' if created else 'unchanged since'} "
                 f"{ws.relative(dest)} (integrity checked)", details=details)


def _eod_pnl(reviews: list[dict[str, Any]]) -> Check:
    title = "Review daily PnL vs risk limits"
    if not reviews:
        return Check("eod.daily_pnl", title, "pass", "no runs since the last end of day")
    breaches, near, rows = [], [], []
    for doc in reviews:
        risk = doc["risk"]
        worst, limit = risk["worst_day"], risk["daily_loss_limit_usd"]
        if worst is None or limit is None:
            continue
        rows.append({"run_id": doc["run_id"], **worst, "limit_usd": limit})
        text = f"{doc['run_id']} {worst['day']}: low {worst['min_pnl_usd']:+,.2f} vs limit -{limit:,.0f}"
        if worst["min_pnl_usd"] < -limit:
            breaches.append(text)
        elif worst["min_pnl_usd"] < -NEAR_LIMIT * limit:
            near.append(text)
    details = {"days": rows}
    if breaches:
        return Check("eod.daily_pnl", title, "fail", "daily loss limit breached: " + "; ".join(breaches),
                     "Daily Loss Limit Hit: reset (next day only) or override (with approval)", details)
    if near:
        return Check("eod.daily_pnl", title, "warn", f"within {1 - NEAR_LIMIT:.0%} of the limit: " + "; ".join(near),
                     "review the limit with risk management", details)
    if not rows:
        return Check("eod.daily_pnl", title, "pass", f"{len(reviews)} run(s), no closed days to review", details=details)
    worst_row = min(rows, key=lambda r: r["min_pnl_usd"])
    return Check("eod.daily_pnl", title, "pass", f"{len(rows)} run(s) reviewed; worst day {worst_row['day']} "
                 f"low {worst_row['min_pnl_usd']:+,.2f} USD vs limit -{worst_row['limit_usd']:,.0f}", details=details)


def _error_patterns(ws: Workspace, runs: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """ERROR/CRITICAL events grouped by (event_type, code or reason), with the runs they occur in."""
    counts: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[str]] = {}
    criticals: set[tuple[str, str]] = set()
    flt = EventFilter(levels=("ERROR", "CRITICAL"))
    for run_id in runs:
        try:
            for hit in iter_events(ws, run_id, flt):
                payload = hit.event.get("payload") or {}
                code = str(payload.get("code") or payload.get("reason") or payload.get("status") or "-")
                key = (hit.event["event_type"], code)
                counts[key] += 1
                where.setdefault(key, set()).add(run_id)
                if hit.event.get("level") == "CRITICAL":
                    criticals.add(key)
        except TreasureError as exc:
            key = ("unreadable_log", exc.code)
            counts[key] += 1
            where.setdefault(key, set()).add(run_id)
    patterns: list[dict[str, Any]] = [{"event_type": t, "code": c, "count": n, "runs": sorted(where[(t, c)]),
                                       "critical": (t, c) in criticals}
                for (t, c), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    from treasure.ops.runbook import has_entry

    new_codes = sorted({str(p["code"]) for p in patterns if not has_entry(str(p["code"]))})
    return patterns, new_codes


def _eod_critical(patterns: list[dict[str, Any]]) -> Check:
    title = "No CRITICAL events since the last end of day (engine and recon logs)"
    found = [p for p in patterns if p["critical"]]
    if not found:
        return Check("eod.critical", title, "pass", "none")
    text = "; ".join(f"{p['event_type']}/{p['code']}×{p['count']} in {', '.join(p['runs'][:3])}" for p in found[:5])
    return Check("eod.critical", title, "fail", f"{sum(p['count'] for p in found)} CRITICAL event(s): {text}",
                 "CRITICAL event detected -> page on-call engineer immediately; `treasure diagnose RUN` "
                 "(recon logs: `treasure recon history`)", {"patterns": found})


def _eod_errors(patterns: list[dict[str, Any]]) -> Check:
    title = "Check for repeated errors (analyze ERROR events)"
    if not patterns:
        return Check("eod.errors", title, "pass", "no ERROR or CRITICAL events since the last end of day")
    details = {"patterns": patterns}
    systemic = [p for p in patterns if len(p["runs"]) >= REPEAT_FAIL_RUNS]
    repeated = [p for p in patterns if p["count"] >= REPEAT_WARN]
    text = "; ".join(f"{p['event_type']}/{p['code']}×{p['count']} in {len(p['runs'])} run(s)" for p in patterns[:5])
    if systemic:
        return Check("eod.errors", title, "fail", f"systemic (in {REPEAT_FAIL_RUNS}+ runs): {text}",
                     ">5 consecutive failures -> escalate to the engineering team", details)
    if repeated:
        return Check("eod.errors", title, "warn", f"repeated: {text}",
                     "analyze with `treasure events RUN --level ERROR --count-by payload.code`", details)
    return Check("eod.errors", title, "pass", f"no pattern repeats: {text}", details=details)


def _eod_runbook(new_codes: list[str]) -> Check:
    title = "Update runbook if new issues found"
    if new_codes:
        return Check("eod.runbook", title, "warn", f"error codes with no runbook entry: {', '.join(new_codes)}",
                     "triage each with `treasure events '*' --level ERROR,CRITICAL --where 'payload.code=CODE'` and "
                     "`treasure diagnose RUN`, then add its procedure (symptom, command, action) to the operator "
                     "runbook", {"codes": new_codes})
    return Check("eod.runbook", title, "pass", "no new kinds of error")


def render(doc: dict[str, Any]) -> str:
    mark = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}
    head = f"treasure checklist {doc['checklist']}" + (f" {doc['run_id']}" if doc.get("run_id") else "")
    counts = doc["counts"]
    lines = [f"{head}: {'OK' if doc['ok'] else 'FAILED'} ({counts['pass']} pass, {counts['warn']} warn, "
             f"{counts['fail']} fail)"]
    for check in doc["checks"]:
        lines.append(f"  [{mark[check['status']]}] {check['title']}")
        lines.append(f"         {check['reason']}")
        if check["action"] and check["status"] != "pass":
            lines.append(f"         Action: {check['action']}")
    return "\n".join(lines)


__all__ = ["Check", "day_runs", "eod", "post", "pre", "render"]
