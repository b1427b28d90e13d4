"""One exception hierarchy for everything a user can get wrong.

Every error a user can cause carries a stable ``code`` (documented, safe to grep and to match in
automation), a one-line ``hint`` saying how to fix it, and where known the ``path``, ``line`` and
``field`` at fault. The CLI catches :class:`TreasureError` once and prints it without a traceback;
anything else escaping is a bug in Treasure (exit code 1).
"""

from __future__ import annotations

from typing import Any

#: Exit codes of the ``treasure`` command (also listed in ``treasure --help``).
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_HALTED = 3

#: Default hints per stable code. A raise site may pass a more specific hint.
HINTS: dict[str, str] = {
    # dataset
    "DATA_MISSING": "check the dataset path (relative paths resolve against the workspace)",
    "DATA_IS_DIR": "point at a CSV file, not a directory",
    "DATA_EMPTY": "the file is empty; regenerate or re-fetch the dataset",
    "DATA_HEADER_ONLY": "the file has a header but no bars; regenerate or re-fetch the dataset",
    "DATA_BINARY": "the file is not UTF-8 text; expected CSV with header t_ms,open,high,low,close,volume",
    "DATA_HEADER": "the first line must be exactly: t_ms,open,high,low,close,volume",
    "DATA_SHORT_ROW": "every row needs 6 comma-separated values",
    "DATA_LONG_ROW": "every row needs exactly 6 comma-separated values; remove the extra ones",
    "DATA_PARSE": "values must be plain decimal numbers (t_ms an integer)",
    "DATA_NAN": "remove or repair the NaN/inf value at that line",
    "DATA_NONPOSITIVE_PRICE": "prices must be > 0; repair the bar at that line",
    "DATA_NEGATIVE_VOLUME": "volume must be >= 0; repair the bar at that line",
    "DATA_OHLC": "high must be >= max(open, close) and low <= min(open, close)",
    "DATA_UNSORTED": "sort the bars by t_ms ascending",
    "DATA_RANGE": "the value is absurd: t_ms must be integer ms since 1970 (years 1970..2200), "
    "prices and volume at most 1e12",
    "DATA_IO": "the dataset exists but cannot be read: check its permissions and that it is a "
    "regular file",
    "DATA_DUPLICATE": "de-duplicate the bars before ingestion, or set data.duplicates to 'warn'",
    "DATA_GAP": "re-fetch or interpolate the missing bars, or set data.gaps to 'warn'",
    "DATA_SHA_MISMATCH": "the dataset changed since it was pinned: restore it, or pass --dataset to "
    "run on it explicitly (recorded as a finding), or update dataset.sha256 in the SSOT",
    "DATA_CHANGED": "the dataset file changed while the run was reading it; re-run on a stable copy",
    # SSOT / config
    "SSOT_MISSING": "create spec/ssot.json (`treasure init DIR` writes a default one)",
    "SSOT_JSON": "the SSOT is not valid JSON; fix the syntax at that line",
    "SSOT_SCHEMA": "fix the field so it matches spec/config.schema.json",
    "SSOT_SCHEMA_INVALID": "spec/config.schema.json is not a valid JSON Schema (draft 2020-12)",
    "SSOT_PATH_ESCAPE": "paths in the SSOT must stay inside the workspace",
    # run
    "RUN_ID_INVALID": "run ids match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
    "RUN_EXISTS": "pass --overwrite to replace it, or choose another --run-id",
    "RUN_UNKNOWN": "list runs with `treasure status`; run ids are the names in logs/events/",
    "STRATEGY_UNKNOWN": "use a built-in name (see `treasure run --help`), module:Class or path.py:Class",
    "STRATEGY_INVALID": "a strategy subclasses treasure.Strategy and accepts its params as keywords",
    "STRATEGY_PARAMS": "fix strategy.params in the SSOT to match the strategy's parameters",
    "STRATEGY_FAILED": "the strategy raised; fix the strategy code (the event log holds the context)",
    "INTENT_INVALID": "an intent needs side 'buy' or 'sell' and a finite qty > 0",
    # workspace / files
    "WORKSPACE_MISSING": "run inside a workspace or pass --workspace (`treasure init DIR` makes one)",
    "WORKSPACE_EXISTS": "choose an empty or new directory",
    "PATH_INVALID": "paths must be non-empty and free of NUL characters",
    "PATH_ESCAPE": "paths must stay inside the workspace unless given as absolute CLI arguments",
    "IO_ERROR": "check free disk space and permissions, then re-run",
    # approval lock (spec/ssot.lock) and fault injection
    "LOCK_MISSING": "review spec/, truth/ and the dataset, then record them with `treasure ssot approve`",
    "LOCK_INVALID": "spec/ssot.lock is not a lock written by `treasure ssot approve`; restore it from "
    "version control or re-approve",
    "TAMPER_SSOT": "spec/ssot.json changed since its approval: review the change (git diff), then "
    "`treasure ssot approve`, or restore the approved file",
    "TAMPER_SCHEMA": "a schema changed since approval: review it (git diff), then `treasure ssot "
    "approve`, or restore the approved file",
    "TAMPER_DATASET": "the pinned dataset changed since approval: restore it, or re-pin and re-approve",
    "TAMPER_MISSING": "an approved file is gone: restore it from version control, or re-approve",
    "TAMPER_UNAPPROVED": "a new spec/ or truth/ file was never approved: review it, then `treasure "
    "ssot approve`",
    "FAULTS_SPEC": "fault rules read ACTION@POINT[:N[+]] joined by ';', e.g. kill@bar:100 (crash testing only)",
    # event logs
    "EVENTS_JSON": "the line is not valid JSON; the log is corrupted from that line on",
    "EVENTS_SCHEMA": "the event does not match truth/event.schema.json",
    "EVENTS_CHAIN": "the hash chain is broken: the line was edited, deleted or reordered",
    "EVENTS_SEQ": "seq must run 0,1,2,... without gaps or repeats",
    "EVENTS_TRUNCATED": "the last line is incomplete (the writer was interrupted); re-run the run",
    "EVENTS_RUN_ID": "every line of a log must carry the same run_id",
    "EVENTS_EMPTY": "the event log has no events",
    "EVENTS_TIME": "events must be in sim-time order; the log was reordered or edited",
    "EVENTS_IO": "the event log exists but cannot be read: check its permissions",
    "EVENTS_PART_MISSING": "a rotated part of the log is missing: restore it from archive/ (the chain "
    "continues across parts)",
    "ADAPTER_FAILED": "the execution adapter raised: fix the adapter or its venue connection; the event log "
    "holds the run up to the failure",
    "SSOT_DUPLICATE_KEY": "a key appears twice in the same object; JSON readers disagree on which wins, so remove one",
    "INTERNAL": "this is a bug in Treasure: re-run with TREASURE_DEBUG=1 and report it with the event log",
    # gates (treasure verify)
    "GATES_USAGE": "check the gate names: `treasure verify --help` lists them (or see pytest's message above)",
    "GATES_NOT_RUN": "pytest stopped before the gates ran: read its output above (is pytest installed in "
    "this environment?)",
    # determinism scan
    "SCAN_PATH": "pass existing files or folders to scan (default: the package and the SSOT's strategy)",
    # schemas
    "SCHEMA_INVALID": "fix the JSON Schema file (draft 2020-12)",
    "REPORT_INVALID": "the report does not match its schema in truth/",
    # persistence (treasure/store: the run DB) and replay
    "STORE_MISSING": "no database there yet: store a run (`treasure run --db`, `treasure db ingest LOG`) or "
    "pass --db PATH",
    "STORE_NOT_SQLITE": "the file is not an SQLite database (or is truncated): restore it with `treasure db "
    "restore BACKUP`, or point --db at the right file",
    "STORE_NOT_TREASURE": "the file is an SQLite database of another application: point --db at a Treasure DB",
    "STORE_SCHEMA_NEWER": "the database was written by a newer Treasure: upgrade Treasure to read it",
    "STORE_SCHEMA": "the schema differs from what this Treasure creates: restore the DB from a backup",
    "STORE_CORRUPT": "the database is damaged: `treasure db restore BACKUP`, or re-ingest the event logs "
    "into a new DB (`treasure db ingest --run ID`)",
    "STORE_LOCKED": "another process holds the database: wait for the run writing to it to finish",
    "STORE_IO": "check free disk space and permissions of the database folder, then retry",
    "STORE_ERROR": "run `treasure db check`; if it fails, restore the DB from a backup",
    "STORE_CONFLICT": "the DB already holds different content under this key: use another --run-id, "
    "re-run with --overwrite to replace the run, or inspect with `treasure db check`",
    "STORE_GAP": "events must be stored in order from seq 0 without gaps; ingest the run's whole log",
    "STORE_CHAIN": "the events do not chain (prev != hash of the previous event): the log was edited",
    "STORE_EVENT_INVALID": "the events do not match truth/; verify the log before storing it",
    "STORE_RUN_EXISTS": "the run is already in the DB: pass --overwrite to replace it (its rows are deleted "
    "first), or choose another --run-id",
    "STORE_RUN_UNKNOWN": "list the stored runs with `treasure db runs`",
    "STORE_REPORT_INVALID": "the reports must be the run's court_report.json and eqs_report.json",
    "STORE_REPORT_MISMATCH": "ingest the log together with the reports of the same run (--reports DIR), or "
    "pass --no-reports",
    "STORE_INCOMPLETE": "the DB lacks some of the run's events: `treasure db ingest` its complete log",
    "STORE_CHECK_FAILED": "run `treasure db check` on it to see every finding; use another backup",
    "STORE_BACKUP_EXISTS": "choose a new file name, or pass --overwrite",
    "STORE_NOTHING": "give LOG file(s) or --run RUN_ID",
    "REPLAY_NO_DB": "pass --db PATH, or set persistence.db_path in the SSOT",
    "REPLAY_SOURCE": "--from takes db or events",
    "REPLAY_EVIDENCE_BROKEN": "the recorded evidence does not verify, so there is nothing trustworthy to "
    "compare with: check it (`treasure db check`, the events gate) first",
    "REPLAY_DATASET_MISSING": "restore the dataset file the run read (same path, same SHA-256)",
    "REPLAY_DATASET_CHANGED": "the dataset changed since the run: restore the exact file the run read (its "
    "SHA-256 is in run_start), e.g. from version control or archive/",
    "REPLAY_STRATEGY_CHANGED": "the strategy's code changed since the run: check out the version the run "
    "used, or pass --allow-strategy-change to replay anyway (expect differences)",
    # operations (treasure/ops: status, diagnose, events, checklists, halt/resume, ack, rotate, archive)
    "QUERY_INVALID": "filters look like payload.duration_ms>1000 or level=ERROR; times are ts_ms "
    "integers or ISO-8601 UTC dates (2026-01-05 or 2026-01-05T10:00:00Z)",
    "EVIDENCE_INVALID": "the evidence file is unreadable or has an unexpected shape; re-create it with "
    "the command that writes it",
    "REPORT_MISSING": "the run has no court report (it stopped before writing one); `treasure diagnose "
    "RUN_ID` shows why",
    "ALERT_UNKNOWN": "list pending alerts with `treasure ack` (no arguments) or `treasure status`",
    "ALERT_AMBIGUOUS": "type more characters of the alert id",
    "ALERTS_STORE": "data/alerts.json is not a valid ack store: restore it from backup, or delete it "
    "and acknowledge the pending alerts again",
    "HALT_REASON": "say why: `treasure halt --reason \"...\"` (the reason goes to data/emergency.log)",
    "RESUME_GATES_UNAVAILABLE": "this installation has no `treasure verify` (the gates plugin); resuming "
    "needs the e2 and determinism gates to pass first",
    "RESUME_GATES_FAILED": "fix what the gates report (runbook: Gate Failures), then `treasure resume` again",
    "ROTATE_BUSY": "the log changed while it was being rotated (a run is writing it); rotate after the run ends",
    "ROTATE_CONFLICT": "rotated parts and the live log overlap in a way rotation did not produce; inspect "
    "them with `treasure events RUN_ID` and `pytest -m gate --gate events`",
    "ARCHIVE_INVALID": "the archive does not match its manifest: restore archive/ from backup; the "
    "message names the member",
    "DB_UNAVAILABLE": "the database cannot be opened or fails its integrity check: `treasure db check`, "
    "restore it from archive/db/ or re-create it",
    # reconciliation (treasure/recon: recorded live sessions, treasure recon)
    "LIVE_MISSING": "pass --live PATH or set recon.live_fixture (workspace-relative, e.g. fixtures/live/clean.jsonl)",
    "LIVE_EMPTY": "the live session holds no venue messages; re-record it",
    "LIVE_JSON": "the line is not valid JSON; repair or re-record that line of the live session",
    "LIVE_TRUNCATED": "the last line is incomplete (the recording was interrupted); drop it or re-record",
    "LIVE_SCHEMA": "the message does not match the recorded-live format (see docs/recon.md)",
    "LIVE_HEADER": "only the first line may be a session line, with format treasure-live/1",
    "LIVE_OUT_OF_ORDER": "venue timestamps may go back at most recon.time_window_ms; the recording was "
    "reordered or its clock jumped",
    "LIVE_DUPLICATE_FILL": "each fill_id may appear once; remove the duplicated venue message",
    "LIVE_SYMBOL": "the live session records another instrument; pass the session of this run's symbol",
    "RECON_OF_RECON": "pass the reconciled run's id (without 'recon-'): recon logs hold no orders",
}


class TreasureError(Exception):
    """Base of every error a user can cause; carries a stable code and a fix hint."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(
        self,
        code: str,
        message: str,
        *,
        hint: str | None = None,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint if hint is not None else HINTS.get(code, "")
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field

    @property
    def location(self) -> str:
        """``path:line (field x)`` as far as it is known, else an empty string."""
        where = self.path or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        if self.field:
            where = f"{where} field {self.field}" if where else f"field {self.field}"
        return where

    def __str__(self) -> str:
        where = self.location
        return f"{self.message} ({where})" if where else self.message

    def render(self) -> str:
        """The CLI form: ``error[CODE]: message (where)`` and an indented hint line."""
        text = f"error[{self.code}]: {self}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "path": self.path,
            "line": self.line,
            "field": self.field,
        }


class DataError(TreasureError):
    """The dataset is missing, malformed or not what the SSOT pinned."""


class ConfigError(TreasureError):
    """The SSOT or a schema is missing, malformed or invalid."""


class RunError(TreasureError):
    """A run cannot start: bad run id, existing run, unknown strategy or run."""


class StrategyError(TreasureError):
    """A user strategy misbehaved (raised, returned a malformed intent)."""


class EventLogError(TreasureError):
    """An event log is malformed, truncated or tampered with."""


class WorkspaceError(TreasureError):
    """The workspace is missing or a path escapes it."""


class InternalError(TreasureError):
    """A bug in Treasure itself: the run's evidence records it; exit code 1."""

    exit_code = EXIT_INTERNAL


class TreasureIOError(TreasureError):
    """Writing evidence failed (disk full, permission); nothing half-written was kept."""
