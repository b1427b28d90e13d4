"""One exception hierarchy for everything a user can get wrong.

Every error a user can cause carries a stable ``code`` (documented, safe to grep and to match in
automation), a one-line ``hint`` saying how to fix it, and where known the ``path``, ``line`` and
``field`` at fault. The CLI catches :class:`TreasureError` once and prints it without a traceback;
anything else escaping is a bug in Treasure (exit code 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

#: Exit codes of the ``treasure`` command (also listed in ``treasure --help``).
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_HALTED = 3
#: Reserved for a run that completed but is ``degraded`` (e.g. adapter ERROR rate over the SSOT's
#: threshold); set by the engine, documented in ``treasure --help``.
EXIT_DEGRADED = 4

# What kind of failure a code is. The kind decides the exit code; it also tells automation whether
# re-running can help (ENVIRONMENT), the input must change (INPUT) or evidence is wrong (CHECK).
INPUT = "input"  #: the user gave a wrong file, option or SSOT field
CHECK = "check"  #: a verification failed: evidence, lock, store, gates
ENVIRONMENT = "environment"  #: disk, permissions, locks, a failing venue or strategy: fix and re-run
HALTED = "halted"  #: trading stopped on purpose (emergency flag, risk, recon escalation)
INTERNAL = "internal"  #: a bug in Treasure itself

EXIT_BY_KIND: dict[str, int] = {INPUT: EXIT_BAD_INPUT, CHECK: EXIT_BAD_INPUT, ENVIRONMENT: EXIT_BAD_INPUT,
                                HALTED: EXIT_HALTED, INTERNAL: EXIT_INTERNAL}


@dataclass(frozen=True)
class Code:
    """One registered error code: its kind (which decides the exit code) and its default hint."""

    kind: str
    hint: str

    @property
    def exit_code(self) -> int:
        return EXIT_BY_KIND[self.kind]


#: The registry: every stable code the code base raises, one line each, grouped by area. To add a
#: code, insert ``"NEW_CODE": Code(INPUT, "how to fix it"),`` next to similar codes (a bare
#: ``"NEW_CODE": "hint",`` is read as an INPUT code). Hints name real SSOT keys (``dataset.on_gap``)
#: and real commands (`treasure resume`); tests/cli/test_errors_registry.py checks both, and that every
#: code raised anywhere in treasure/ and pytest_treasure/ is registered here. A raise site may
#: still pass a more specific hint.
_REGISTRY: dict[str, Code | str] = {
    # dataset
    "DATA_MISSING": Code(INPUT, "check the dataset path (relative paths resolve against the workspace)"),
    "DATA_IS_DIR": Code(INPUT, "point at a CSV file, not a directory"),
    "DATA_EMPTY": Code(INPUT, "the file is empty; regenerate or re-fetch the dataset"),
    "DATA_HEADER_ONLY": Code(INPUT, "the file has a header but no bars; regenerate or re-fetch the "
        "dataset"),
    "DATA_BINARY": Code(INPUT, "the file is not UTF-8 text; expected CSV with header "
        "t_ms,open,high,low,close,volume"),
    "DATA_HEADER": Code(INPUT, "the first line must be exactly: t_ms,open,high,low,close,volume"),
    "DATA_SHORT_ROW": Code(INPUT, "every row needs 6 comma-separated values"),
    "DATA_LONG_ROW": Code(INPUT, "every row needs exactly 6 comma-separated values; remove the extra ones"),
    "DATA_PARSE": Code(INPUT, "values must be plain decimal numbers (t_ms an integer)"),
    "DATA_NAN": Code(INPUT, "remove or repair the NaN/inf value at that line"),
    "DATA_NONPOSITIVE_PRICE": Code(INPUT, "prices must be > 0; repair the bar at that line"),
    "DATA_NEGATIVE_VOLUME": Code(INPUT, "volume must be >= 0; repair the bar at that line"),
    "DATA_OHLC": Code(INPUT, "high must be >= max(open, close) and low <= min(open, close)"),
    "DATA_UNSORTED": Code(INPUT, "sort the bars by t_ms ascending"),
    "DATA_RANGE": Code(INPUT, "the value is absurd: t_ms must be integer ms since 1970 (years "
        "1970..2200), prices and volume at most 1e12"),
    "DATA_IO": Code(ENVIRONMENT, "the dataset exists but cannot be read: check its permissions and that "
        "it is a regular file"),
    "DATA_DUPLICATE": Code(INPUT, "de-duplicate the bars before ingestion, or set dataset.on_duplicate "
        "to 'warn' in the SSOT"),
    "DATA_GAP": Code(INPUT, "re-fetch or interpolate the missing bars, or set dataset.on_gap to 'warn' "
        "in the SSOT"),
    "DATA_SHA_MISMATCH": Code(CHECK, "the dataset changed since it was pinned: restore it, or pass "
        "--dataset to run on it explicitly (recorded as a finding), or update dataset.sha256 in the SSOT"),
    "DATA_CHANGED": Code(CHECK, "the dataset file changed while the run was reading it; re-run on a "
        "stable copy"),
    "DATA_TIME_UNIT": Code(INPUT, "t_ms must be milliseconds since 1970 UTC; convert the file with "
        "`treasure data import FILE --time-unit s|us|ns` (it writes fixtures/data/NAME.csv and pins it)"),
    "DATA_IMPORT": Code(INPUT, "the file could not be read as OHLCV bars at that line and column; fix it "
        "or name the columns with `treasure data import FILE --time-col NAME --columns open,high,low,close,volume`"),
    "DATA_IMPORT_EXISTS": Code(INPUT, "choose another --name, or pass --force to replace the workspace's "
        "dataset of that name"),
    "DATA_TOO_LARGE": Code(INPUT, "a dataset holds at most 50,000,000 bars and 4 GiB "
        "(treasure.data.loader.MAX_ROWS, MAX_BYTES); split the file by date into smaller CSVs and run "
        "each one (point dataset.path at it)"),
    "DATA_TOO_SHORT": Code(INPUT, "a run needs at least 2 bars with distinct t_ms; point dataset.path "
        "at a longer dataset (a one-bar or all-duplicate file cannot be simulated)"),
    "CALENDAR_UNKNOWN": Code(INPUT, "set dataset.calendar to '24/7', 'weekdays' or an exchange code "
        "exchange-calendars knows (e.g. XNYS, XLON)"),
    "CALENDAR_UNAVAILABLE": Code(ENVIRONMENT, "pip install 'treasure[calendars]' (exchange-calendars), or "
        "set dataset.calendar to '24/7' or 'weekdays'"),
    "CALENDAR_RANGE": Code(INPUT, "the exchange's calendar does not cover the dataset's dates; use "
        "dataset.calendar 'weekdays', or data within the calendar's range"),
    # the command line (argparse errors, --out targets, option values)
    "CLI_USAGE": Code(INPUT, "`treasure --help` lists the commands; `treasure COMMAND --help` their "
        "options"),
    "CLI_VALUE": Code(INPUT, "fix the option's value; `treasure COMMAND --help` says what each option "
        "takes"),
    "OUT_EXISTS": Code(INPUT, "choose a new file name, or pass --force to replace it"),
    "OUT_PROTECTED": Code(INPUT, "write outside the workspace's spec/, truth/, logs/, reports/, data/, "
        "evidence/, fixtures/ and archive/ folders (e.g. exports/ or an absolute path); --force does not "
        "apply to evidence or config"),
    # SSOT / config
    "SSOT_MISSING": Code(INPUT, "create spec/ssot.json (`treasure init DIR` writes a default one)"),
    "SSOT_JSON": Code(INPUT, "the SSOT is not valid JSON; fix the syntax at that line"),
    "SSOT_SCHEMA": Code(INPUT, "fix the field so it matches spec/config.schema.json"),
    "SSOT_SCHEMA_INVALID": Code(INPUT, "spec/config.schema.json is not a valid JSON Schema (draft "
        "2020-12)"),
    # run
    "RUN_ID_INVALID": Code(INPUT, "run ids match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}"),
    "SEED_INVALID": Code(INPUT, "use an integer in [0, 2**53) for run.seed or --seed: seeds are recorded "
        "as exact JSON numbers"),
    "ADAPTER_UNKNOWN": Code(INPUT, "set execution.adapter (or --adapter) to sim, dryrun or replay-live"),
    "QTY_OUT_OF_RANGE": Code(INPUT, "order sizes must be 0 < qty with qty / instrument.qty_step <= 1e30; "
        "cap the order's USD value at prices near zero"),
    "PRICE_OUT_OF_RANGE": Code(INPUT, "set instrument.price_tick to the venue's tick, or remove it"),
    "RUN_HALTED": Code(HALTED, "the emergency flag (data/emergency.flag) is set: find out why with `treasure "
        "status`, then `treasure resume` before running again"),
    "RUN_EXISTS": Code(INPUT, "pass --overwrite to replace it, or choose another --run-id"),
    "EVIDENCE_MODE_INVALID": Code(INPUT, "RunRequest.evidence is 'files' (the default: log, reports and "
        "equity.npy written) or 'memory' (nothing written; the evidence comes back on RunResult)"),
    "RUN_UNKNOWN": Code(INPUT, "list runs with `treasure status`; run ids are the names in logs/events/"),
    "STRATEGY_UNKNOWN": Code(INPUT, "use a built-in name (see `treasure run --help`), module:Class or "
        "path.py:Class"),
    "STRATEGY_INVALID": Code(INPUT, "a strategy subclasses treasure.Strategy and accepts its params as "
        "keywords"),
    "STRATEGY_PARAMS": Code(INPUT, "fix strategy.params in the SSOT to match the strategy's parameters"),
    "PLUGIN_CONFLICT": Code(INPUT, "two installed `treasure` entry-point plugins declare the same adapter or "
        "strategy name differently: uninstall or rename one (`pip show` names the packages)"),
    "STRATEGY_FAILED": Code(ENVIRONMENT, "the strategy raised; fix the strategy code (the event log "
        "holds the context)"),
    "INTENT_INVALID": Code(INPUT, "an intent needs side 'buy' or 'sell' and a finite qty > 0"),
    # workspace / files
    # signing key and anchored evidence
    "KEY_IN_WORKSPACE": Code(INPUT, "keep the signing key outside every workspace: `treasure keys init` "
        "without --path uses $XDG_CONFIG_HOME/treasure/signing_key.pem"),
    "KEY_EXISTS": Code(INPUT, "a key is already configured; pass --force to replace it (its signatures "
        "then no longer verify)"),
    "KEY_MISSING": Code(ENVIRONMENT, "create one with `treasure keys init`, or unset TREASURE_SIGNING_KEY"),
    "KEY_INVALID": Code(ENVIRONMENT, "the key file must be an Ed25519 PEM key made by `treasure keys init`"),
    "KEY_IO": Code(ENVIRONMENT, "check the permissions of the key's folder"),
    "KEY_CRYPTO_MISSING": Code(ENVIRONMENT, "install the signing extra: pip install 'treasure[sign]'"),
    "ANCHOR_UNREADABLE": Code(CHECK, "the run's manifest or report is not valid JSON: restore the run's "
        "reports from a backup, or re-run it"),
    "WORKSPACE_MISSING": Code(INPUT, "run inside a workspace or pass --workspace (`treasure init DIR` "
        "makes one)"),
    "WORKSPACE_EXISTS": Code(INPUT, "choose an empty or new directory"),
    "WORKSPACE_LAYOUT": Code(INPUT, "logs/, reports/, data/, evidence/, archive/, spec/ and truth/ must be "
        "folders: move the file aside (`treasure init --force` restores spec/ and truth/)"),
    "WORKSPACE_OLD": Code(INPUT, "an older release made this workspace: run `treasure migrate` (see what it "
        "changes first with `treasure migrate --dry-run`; it keeps a backup in archive/migrate-*/)"),
    "WORKSPACE_NEWER": Code(INPUT, "a newer Treasure made this workspace (spec/workspace.version): upgrade "
        "Treasure (pip install -U treasure) to run it"),
    "WORKSPACE_VERSION_INVALID": Code(INPUT, "spec/workspace.version must hold one format number (e.g. 2); "
        "restore it from version control, or delete it and run `treasure migrate`"),
    "MIGRATE_SSOT_INVALID": Code(INPUT, "fix the named field of spec/ssot.json so it validates against the "
        "packaged spec/config.schema.json, then run `treasure migrate` again"),
    "PATH_INVALID": Code(INPUT, "paths must be non-empty and free of NUL characters"),
    "PATH_ESCAPE": Code(INPUT, "paths must stay inside the workspace unless given as absolute CLI "
        "arguments"),
    "IO_ERROR": Code(ENVIRONMENT, "check free disk space and permissions, then re-run"),
    # approval lock (spec/ssot.lock) and fault injection
    "LOCK_MISSING": Code(CHECK, "review spec/, truth/ and the dataset, then record them with `treasure "
        "ssot approve`"),
    "LOCK_INVALID": Code(CHECK, "spec/ssot.lock is not a lock written by `treasure ssot approve`; "
        "restore it from version control or re-approve"),
    "LOCK_REFUSED": Code(INPUT, "only regular JSON files inside the workspace can be approved: replace the "
        "symlink or non-JSON file under spec/ or truth/ with the real JSON file, then `treasure ssot approve`"),
    "TAMPER_SSOT": Code(CHECK, "spec/ssot.json changed since its approval: review the change (git diff), "
        "then `treasure ssot approve`, or restore the approved file"),
    "TAMPER_SCHEMA": Code(CHECK, "a schema changed since approval: review it (git diff), then `treasure "
        "ssot approve`, or restore the approved file"),
    "TAMPER_DATASET": Code(CHECK, "the pinned dataset changed since approval: restore it, or re-pin and "
        "re-approve"),
    "TAMPER_MISSING": Code(CHECK, "an approved file is gone: restore it from version control, or "
        "re-approve"),
    "TAMPER_UNAPPROVED": Code(CHECK, "a new spec/ or truth/ file was never approved: review it, then "
        "`treasure ssot approve`"),
    "FAULTS_SPEC": Code(INPUT, "fault rules read ACTION@POINT[:N[+]] joined by ';', e.g. kill@bar:100 "
        "(crash testing only)"),
    # event logs
    "EVENTS_JSON": Code(CHECK, "the line is not valid JSON; the log is corrupted from that line on"),
    "EVENTS_SCHEMA": Code(CHECK, "the event does not match truth/event.schema.json"),
    "EVENTS_CHAIN": Code(CHECK, "the hash chain is broken: the line was edited, deleted or reordered"),
    "EVENTS_SEQ": Code(CHECK, "seq must run 0,1,2,... without gaps or repeats"),
    "EVENTS_TRUNCATED": Code(CHECK, "the last line is incomplete (the writer was interrupted); re-run "
        "the run"),
    "EVENTS_RUN_ID": Code(CHECK, "every line of a log must carry the same run_id"),
    "EVENTS_EMPTY": Code(CHECK, "the event log has no events"),
    "EVENTS_TIME": Code(CHECK, "events must be in sim-time order; the log was reordered or edited"),
    "EVENTS_IO": Code(ENVIRONMENT, "the event log exists but cannot be read: check its permissions"),
    "EVENTS_PART_MISSING": Code(CHECK, "a rotated part of the log is missing: restore it from archive/ "
        "(the chain continues across parts)"),
    "EVENTS_NOT_REGULAR": Code(CHECK, "an event log must be a regular file in logs/events/; replace the "
        "device, FIFO or symlink with the log itself (or restore it: `treasure archive --restore RUN`)"),
    "EVENTS_LINE_TOO_LONG": Code(CHECK, "no event line may exceed 16 MiB (treasure.logread.MAX_LINE_BYTES): "
        "the log is corrupted or hostile; restore it from the DB (`treasure db export`) or archive/"),
    "EVENTS_COURT_MISMATCH": Code(CHECK, "the log no longer ends where its run's court report says "
        "(events.last_hash, events.total): it was edited and re-chained, or the report was; restore both "
        "from archive/ or the DB, then `treasure verify events`"),
    "ADAPTER_FAILED": Code(ENVIRONMENT, "the execution adapter raised: fix the adapter or its venue "
        "connection; the event log holds the run up to the failure"),
    "SSOT_DUPLICATE_KEY": Code(INPUT, "a key appears twice in the same object; JSON readers disagree on "
        "which wins, so remove one"),
    "INTERNAL": Code(INTERNAL, "this is a bug in Treasure: re-run with TREASURE_DEBUG=1 and report it "
        "with the event log"),
    # gates (treasure verify)
    "GATES_MISSING": Code(ENVIRONMENT, "reinstall Treasure: the gates ship as the pytest_treasure.gates "
        "package (pip install treasure)"),
    "GATES_USAGE": Code(INPUT, "check the gate names: `treasure verify --help` lists them (or see "
        "pytest's message above)"),
    "GATES_NOT_RUN": Code(CHECK, "pytest stopped before the gates ran: read its output above (is pytest "
        "installed in this environment?)"),
    # determinism scan
    "SCAN_PATH": Code(INPUT, "pass existing files or folders to scan (default: the package and the "
        "SSOT's strategy)"),
    # schemas
    "SCHEMA_MISSING": Code(INPUT, "a contract schema is missing from truth/: restore it (`treasure init "
        "--force` refreshes the packaged defaults)"),
    "SCHEMA_INVALID": Code(INPUT, "fix the JSON Schema file (draft 2020-12)"),
    "REPORT_INVALID": Code(CHECK, "the report does not match its schema in truth/"),
    # persistence (treasure/store: the run DB) and replay
    "STORE_MISSING": Code(INPUT, "no database there yet: store a run (`treasure run --db`, `treasure db "
        "ingest LOG`) or pass --db PATH"),
    "STORE_NOT_SQLITE": Code(CHECK, "the file is not an SQLite database (or is truncated): restore it "
        "with `treasure db restore BACKUP`, or point --db at the right file"),
    "STORE_NOT_TREASURE": Code(CHECK, "the file is an SQLite database of another application: point --db "
        "at a Treasure DB"),
    "STORE_SCHEMA_NEWER": Code(CHECK, "the database was written by a newer Treasure: upgrade Treasure to "
        "read it"),
    "STORE_SCHEMA": Code(CHECK, "the schema differs from what this Treasure creates: restore the DB from "
        "a backup"),
    "STORE_CORRUPT": Code(CHECK, "the database is damaged: `treasure db restore BACKUP`, or re-ingest "
        "the event logs into a new DB (`treasure db ingest --run ID`)"),
    "STORE_LOCKED": Code(ENVIRONMENT, "another process holds the database: wait for the run writing to "
        "it to finish"),
    "STORE_IO": Code(ENVIRONMENT, "check free disk space and permissions of the database folder, then "
        "retry"),
    "STORE_UNAVAILABLE": Code(ENVIRONMENT, "the PostgreSQL server named by --db postgresql://... cannot be "
        "reached: check host, port, user, database and that the server runs (`pg_isready`), then retry"),
    "STORE_DRIVER_MISSING": Code(ENVIRONMENT, "a postgresql:// store needs psycopg: pip install "
        "'treasure[postgres]'"),
    "STORE_FOREIGN_OBJECT": Code(CHECK, "someone added triggers, views or tables to the run DB: `treasure db "
        "check` lists them; restore the DB from a backup (`treasure db restore`) before writing to it"),
    "STORE_ERROR": Code(ENVIRONMENT, "run `treasure db check`; if it fails, restore the DB from a backup"),
    "STORE_CONFLICT": Code(CHECK, "the DB already holds different content under this key: use another "
        "--run-id, re-run with --overwrite to replace the run, or inspect with `treasure db check`"),
    "STORE_GAP": Code(CHECK, "events must be stored in order from seq 0 without gaps; ingest the run's "
        "whole log"),
    "STORE_CHAIN": Code(CHECK, "the events do not chain (prev != hash of the previous event): the log "
        "was edited"),
    "STORE_EVENT_INVALID": Code(CHECK, "the events do not match truth/; verify the log before storing it"),
    "STORE_RUN_EXISTS": Code(INPUT, "the run is already in the DB: pass --overwrite to replace it (its "
        "rows are deleted first), or choose another --run-id"),
    "STORE_RUN_UNKNOWN": Code(INPUT, "list the stored runs with `treasure db runs`"),
    "STORE_REPORT_INVALID": Code(INPUT, "the reports must be the run's court_report.json and "
        "eqs_report.json"),
    "STORE_REPORT_MISMATCH": Code(CHECK, "ingest the log together with the reports of the same run "
        "(--reports DIR), or pass --no-reports"),
    "STORE_INCOMPLETE": Code(CHECK, "the DB lacks some of the run's events: `treasure db ingest` its "
        "complete log"),
    "STORE_CHECK_FAILED": Code(CHECK, "run `treasure db check` on it to see every finding; use another "
        "backup"),
    "STORE_BACKUP_EXISTS": Code(INPUT, "choose a new file name, or pass --overwrite"),
    "STORE_NOTHING": Code(INPUT, "give LOG file(s) or --run RUN_ID"),
    "STORE_RESTORE_MISMATCH": Code(CHECK, "the DB's copy of the run is not the run's log (another run under "
        "that id, or damaged): nothing was moved; `treasure db check`, and `treasure db export RUN -o FILE` "
        "to inspect it"),
    "REPLAY_NO_DB": Code(INPUT, "pass --db PATH, or set persistence.db_path in the SSOT"),
    "REPLAY_SOURCE": Code(INPUT, "--from takes db or events"),
    "REPLAY_EVIDENCE_BROKEN": Code(CHECK, "the recorded evidence does not verify, so there is nothing "
        "trustworthy to compare with: check it (`treasure db check`, the events gate) first"),
    "REPLAY_DATASET_MISSING": Code(INPUT, "restore the dataset file the run read (same path, same "
        "SHA-256)"),
    "REPLAY_DATASET_CHANGED": Code(CHECK, "the dataset changed since the run: restore the exact file the "
        "run read (its SHA-256 is in run_start), e.g. from version control or archive/"),
    "REPLAY_STRATEGY_CHANGED": Code(CHECK, "the strategy's code changed since the run: check out the "
        "version the run used, or pass --allow-strategy-change to replay anyway (expect differences)"),
    # operations (treasure/ops: status, diagnose, events, checklists, halt/resume, ack, rotate, archive)
    "QUERY_INVALID": Code(INPUT, "filters look like payload.duration_ms>1000 or level=ERROR; times are "
        "ts_ms integers or ISO-8601 UTC dates (2026-01-05 or 2026-01-05T10:00:00Z)"),
    "EVIDENCE_INVALID": Code(CHECK, "the evidence file is unreadable or has an unexpected shape; "
        "re-create it with the command that writes it"),
    "REPORT_MISSING": Code(CHECK, "the run has no court report (it stopped before writing one); "
        "`treasure diagnose RUN_ID` shows why"),
    "ALERT_UNKNOWN": Code(INPUT, "list pending alerts with `treasure ack` (no arguments) or `treasure "
        "status`"),
    "ALERT_AMBIGUOUS": Code(INPUT, "type more characters of the alert id"),
    "ALERTS_STORE": Code(CHECK, "data/alerts.jsonl (alerts and acks, append-only) or the legacy "
        "data/alerts.json has a bad line: restore it from backup (a torn last line is ignored); do not "
        "delete it, that forgets pending alerts"),
    "ALERT_INVALID": Code(INPUT, "raise_alert(ws, code, level, source, detail, run_id): level is WARN, "
        "ERROR or CRITICAL; source is lower-case letters (recon, run, emergency)"),
    "HALT_REASON": Code(INPUT, "say why: `treasure halt --reason \"...\"` (the reason goes to "
        "data/emergency.log)"),
    "RESUME_GATES_UNAVAILABLE": Code(ENVIRONMENT, "this installation has no `treasure verify` (the gates "
        "plugin); resuming needs the e2 and determinism gates to pass first"),
    "RESUME_GATES_FAILED": Code(CHECK, "fix what the gates report (runbook: Gate Failures), then "
        "`treasure resume` again"),
    "ROTATE_BUSY": Code(ENVIRONMENT, "the log changed while it was being rotated (a run is writing it); "
        "rotate after the run ends"),
    "ROTATE_LIMIT_INVALID": Code(INPUT, "--max-mb takes a size in MB > 0, e.g. `treasure rotate --max-mb 100`"),
    "RUN_IN_PROGRESS": Code(ENVIRONMENT, "another process holds the run's lock (logs/.locks/run_<id>.lock): "
        "wait for it to finish or stop it, then try again; a dead process holds no lock"),
    "LOGS_BUSY": Code(ENVIRONMENT, "another `treasure rotate`/`treasure archive` is working on logs/events/: "
        "wait for it to finish, then try again"),
    "ROTATE_CONFLICT": Code(CHECK, "rotated parts and the live log overlap in a way rotation did not "
        "produce; inspect them with `treasure events RUN_ID` and `pytest -m gate --gate events`"),
    "ARCHIVE_INVALID": Code(CHECK, "the archive does not match its manifest: restore archive/ from "
        "backup; the message names the member"),
    "DB_UNAVAILABLE": Code(CHECK, "the database cannot be opened or fails its integrity check: `treasure "
        "db check`, restore it from archive/db/ or re-create it"),
    # sweeps (treasure/sweep: treasure sweep SPEC)
    "SWEEP_SPEC_INVALID": Code(INPUT, "fix the sweep file's field named in the message (schema: "
        "truth/sweep_spec.schema.json; example: spec/sweep.example.json)"),
    "SWEEP_RANGE": Code(INPUT, "a range needs step > 0 and start <= stop (stop is inclusive), e.g. "
        "{\"start\": 5, \"stop\": 20, \"step\": 5}"),
    "SWEEP_TOO_LARGE": Code(INPUT, "the grid expands to too many points: shrink the grids/ranges or split "
        "the sweep file"),
    "SWEEP_DATASET_SHA": Code(INPUT, "the dataset's SHA-256 differs from datasets[].sha256 in the sweep "
        "file: restore the file or pin its new hash (sha256sum FILE)"),
    "SWEEP_CONFLICT": Code(CHECK, "a point's evidence already in sweeps/<sweep_id>/runs/ differs from the "
        "new result (non-deterministic run?): inspect it, then re-run `treasure sweep SPEC --force`"),
    "SWEEP_INPUT_MISMATCH": Code(ENVIRONMENT, "a worker received inputs whose SHA-256 differs from the "
        "client's: check the cluster's workers run the same Treasure version"),
    "SWEEP_DASK_MISSING": Code(ENVIRONMENT, "install the sweep extra (pip install 'treasure[sweep]') or "
        "pass --serial"),
    "SWEEP_SCHEDULER": Code(ENVIRONMENT, "check --scheduler tcp://HOST:PORT points at a running dask "
        "scheduler (`dask scheduler`), or omit it for a local cluster"),
    "SWEEP_TASK_FAILED": Code(ENVIRONMENT, "a sweep task failed on the cluster after its retries: re-run "
        "`treasure sweep SPEC` (finished points are kept) or use --serial to see the error"),
    "HUNT_REPRODUCER_CONFLICT": Code(CHECK, "fixtures/regressions/<id>/ holds a different dataset.csv or "
        "ssot.json than the case `treasure hunt --sweep` found under that id: inspect the folder, move it "
        "aside, then re-run"),
    # reconciliation (treasure/recon: recorded live sessions, treasure recon)
    "LIVE_MISSING": Code(INPUT, "pass --live PATH or set recon.live_fixture (workspace-relative, e.g. "
        "fixtures/live/clean.jsonl)"),
    "LIVE_EMPTY": Code(INPUT, "the live session holds no venue messages; re-record it"),
    "LIVE_JSON": Code(INPUT, "the line is not valid JSON; repair or re-record that line of the live "
        "session"),
    "LIVE_TRUNCATED": Code(INPUT, "the last line is incomplete (the recording was interrupted); drop it "
        "or re-record"),
    "LIVE_SCHEMA": Code(INPUT, "the message does not match the recorded-live format (see docs/recon.md)"),
    "LIVE_HEADER": Code(INPUT, "only the first line may be a session line, with format treasure-live/1"),
    "LIVE_OUT_OF_ORDER": Code(INPUT, "venue timestamps may go back at most recon.time_window_ms; the "
        "recording was reordered or its clock jumped"),
    "LIVE_DUPLICATE_FILL": Code(INPUT, "each fill_id may appear once; remove the duplicated venue message"),
    "LIVE_SYMBOL": Code(INPUT, "the live session records another instrument; pass the session of this "
        "run's symbol"),
    "RECON_OF_RECON": Code(INPUT, "pass the reconciled run's id (without 'recon-'): recon logs hold no "
        "orders"),
    "RECON_NO_SESSIONS": Code(CHECK, "derive the run's recorded live sessions from its own evidence with "
        "`treasure recon record RUN_ID` (writes fixtures/live/runs/RUN_ID/)"),
    "RECON_RECORD_FAILED": Code(CHECK, "the run has too few filled orders to derive faulty sessions from; "
        "record a longer run (more bars), or lower recon.max_mismatches for the threshold sessions"),
    "RECON_SESSIONS_EXIST": Code(INPUT, "the run's recorded sessions differ from what its evidence gives "
        "today: `treasure recon record RUN_ID --overwrite` replaces them"),

}

CODES: dict[str, Code] = {code: entry if isinstance(entry, Code) else Code(INPUT, entry)
                          for code, entry in _REGISTRY.items()}

#: Default hint per code (the registry's hints; kept for callers that only need the text).
HINTS: dict[str, str] = {code: entry.hint for code, entry in CODES.items()}


def exit_code_of(code: str, default: int = EXIT_BAD_INPUT) -> int:
    """The exit code a registered ``code`` ends the command with (``default`` if unregistered)."""
    entry = CODES.get(code)
    return default if entry is None else entry.exit_code


class TreasureError(Exception):
    """Base of every error a user can cause; carries a stable code and a fix hint.

    The exit code comes from the code's registered kind; an unregistered code (a test catches those)
    falls back to the class's ``exit_code``.
    """

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
        self.exit_code = exit_code_of(code, type(self).exit_code)
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
        if self.exit_code == EXIT_INTERNAL and os.environ.get("TREASURE_DEBUG"):
            text += "\n" + self.debug_traceback()
        return text

    def debug_traceback(self) -> str:
        """The traceback behind this error (its cause's, when it wraps one), for TREASURE_DEBUG=1."""
        import traceback

        cause = self.__cause__ or self.__context__
        source: BaseException = cause if cause is not None else self
        if source.__traceback__ is None:
            return "  (no traceback recorded)"
        return "".join(traceback.format_exception(source)).rstrip("\n")

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
