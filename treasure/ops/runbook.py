"""Which error codes the runbook has an entry for: the one home for that question.

``checklist eod``'s "Update runbook if new issues found" warns about ERROR/CRITICAL events whose
code has no procedure. An event's code is its ``payload.code`` (adapter errors, recon mismatches),
else ``payload.reason`` (halts: ``daily_loss_limit``, ``emergency_flag``, ...), else
``payload.status`` (run_end). A code *has an entry* when one of these knows it:

- :data:`ENTRIES` below: the runbook's own sections (halt reasons, recon mismatch codes, data
  issues), each with the section title and the command that answers it;
- the findings of ``treasure diagnose`` (:data:`treasure.ops.diagnose.ACTIONS`, including
  ``HALT_<REASON>``);
- the error registry (:data:`treasure.errors.HINTS`): a coded error carries its own fix.
"""

from __future__ import annotations

from treasure.errors import HINTS

#: code -> (runbook section, command that answers it)
ENTRIES: dict[str, tuple[str, str]] = {
    # halt reasons (halt events' payload.reason)
    "daily_loss_limit": ("Risk Management: Daily Loss Limit Hit",
                         "treasure diagnose RUN; treasure events RUN --type daily_loss_limit --tail 1"),
    "emergency_flag": ("Emergency Procedures: Emergency Halt",
                       "treasure status; cat data/emergency.log; treasure resume once the cause is fixed"),
    "recon_mismatch_threshold": ("Escalation: Reconciliation mismatch >10 orders",
                                 "treasure diagnose RUN; treasure recon history; treasure resume"),
    "fault": ("Diagnostic Procedures: Run Crashed / No Output", "treasure diagnose RUN"),
    # reconciliation mismatch codes (recon_mismatch payload.code)
    "PRICE_MISMATCH": ("Symptom: Reconciliation Mismatches", "treasure events '*' --type recon_mismatch --count-by payload.code"),
    "FEE_MISMATCH": ("Symptom: Reconciliation Mismatches", "treasure events '*' --type recon_mismatch --count-by payload.code"),
    "MISSING_FILL": ("Symptom: Reconciliation Mismatches", "treasure events '*' --type recon_mismatch --count-by payload.code"),
    "ORDER_STATE_DRIFT": ("Symptom: Reconciliation Mismatches", "treasure events '*' --type recon_mismatch --count-by payload.code"),
    # run_end statuses and data issues
    "complete": ("Step 1: Check Run Status", "treasure status"),
    "halted": ("Step 1: Check Run Status", "treasure diagnose RUN"),
    "error": ("Symptom: Run Crashed / No Output", "treasure diagnose RUN"),
    "degraded": ("Symptom: Orders Not Executing", "treasure diagnose RUN"),
    "data_gap": ("Data Issues: Data Gap Detected", "treasure events RUN --type data_gap_detected"),
    "duplicate_timestamp": ("Data Issues: Duplicate Timestamps", "treasure events RUN --type duplicate_timestamp"),
}


def entry(code: str) -> str | None:
    """Where the runbook covers ``code`` (a short phrase), or None if nowhere."""
    if code in ENTRIES:
        section, command = ENTRIES[code]
        return f"runbook {section}: {command}"
    from treasure.ops.diagnose import ACTIONS  # diagnose imports heavier modules: only when needed

    for key in (code, f"HALT_{code.upper()}", code.upper()):
        if key in ACTIONS:
            return f"`treasure diagnose RUN` finding {key}: {ACTIONS[key]}"
    if code in HINTS:
        return f"error[{code}] hint: {HINTS[code]}"
    return None


def has_entry(code: str) -> bool:
    """True when ``code`` has a runbook entry (numbers and ``-``, i.e. no code, count as known)."""
    return code in ("-", "") or code.isdigit() or entry(code) is not None


__all__ = ["ENTRIES", "entry", "has_entry"]
