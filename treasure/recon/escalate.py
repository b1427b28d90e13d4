"""What a reconciliation with mismatches does besides writing evidence: alert, and halt trading.

The runbook: "Reconciliation mismatch >10 orders -> Halt trading, escalate to trading desk". So:

* any mismatch raises an alert (ERROR; CRITICAL when halted) keyed by the recon's own id, in the
  append-only alert store (:func:`treasure.ops.alerts.raise_alert`). It stays pending until
  ``treasure ack``: a later clean recon of the same run does not clear it;
* above ``recon.max_mismatches`` the emergency flag is set with the reason
  (:func:`treasure.ops.emergency.set_flag`, source ``recon``), so the next ``treasure run`` halts
  before its first bar until an operator runs ``treasure resume``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treasure.recon.model import CODES
from treasure.workspace import Workspace

ALERT_SOURCE = "recon"


@dataclass(frozen=True)
class Escalation:
    """What a recon raised: the alert id (None when clean) and whether it set the emergency flag."""

    alert_id: str | None = None
    flag_set: bool = False
    flag_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "flag_set": self.flag_set, "flag_reason": self.flag_reason}


def halt_reason(report: dict[str, Any]) -> str:
    return (f"recon {report['recon_run_id']}: {report['mismatched_orders']} mismatched orders > "
            f"recon.max_mismatches {report['halt']['threshold']} (run {report['run_id']}); "
            "escalate to the trading desk")


def escalate(ws: Workspace, report: dict[str, Any], *, report_path: str) -> Escalation:
    """Raise the recon's alert and, above the threshold, set the emergency flag."""
    if not report["mismatches"] and not report["halt"]["triggered"]:
        return Escalation()
    from treasure.ops.alerts import raise_alert
    from treasure.ops.emergency import set_flag

    halted = bool(report["halt"]["triggered"])
    counts = {code: int(report["summary"][code]) for code in CODES if report["summary"][code]}
    codes = ", ".join(f"{code}×{n}" for code, n in counts.items())
    detail = (f"{report['mismatch_count']} recon mismatch(es) on {report['mismatched_orders']} of "
              f"{report['orders_compared']} orders ({codes}) in recon {report['recon_run_id']}, see {report_path}")
    if halted:
        detail += f"; above recon.max_mismatches {report['halt']['threshold']}: trading halted"
    alert = raise_alert(
        ws, "RECON_ESCALATION" if halted else "RECON_MISMATCH", "CRITICAL" if halted else "ERROR", ALERT_SOURCE,
        detail, report["run_id"], key={"recon_id": report["recon_run_id"]},
        title=f"run {report['run_id']}: {detail}", count=int(report["mismatch_count"]),
        action=("check adapter logs, verify network latency, review tolerance settings; "
                + ("escalate to the trading desk, `treasure resume` once resolved; " if halted else "")
                + "then `treasure ack`"))
    if not halted:
        return Escalation(alert)
    reason = halt_reason(report)
    _, created = set_flag(ws, reason, ALERT_SOURCE)
    return Escalation(alert, True, reason)
