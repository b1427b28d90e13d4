"""Gate history: every gate result ever recorded in a workspace, and the latest state derived from it.

Two files under ``evidence/``:

``gates_history.jsonl``
    append-only, one JSON record per gate per session (schema ``truth/gate_history.schema.json``):
    the gate, its outcome, reason, test counts, duration, when it finished and who ran it
    (``run_by``: ``cli`` for ``treasure verify``/``resume``, ``checklist`` for
    ``treasure checklist pre --run-gates``, ``pytest`` for a plain pytest session; taken from the
    ``TREASURE_GATE_RUN_BY`` environment variable). Lines are appended under an exclusive
    ``fcntl.flock`` (an xdist controller and a concurrent ``treasure verify`` may write at once)
    and fsynced. Nothing is ever rewritten or dropped.
``gates.json``
    the merged LATEST state: for each gate its last record (status, reason, counts, tests, time,
    duration, who ran it), plus a ``session`` block describing the session that wrote it. It is
    derived from the history on every append, under the same lock, so a partial run (``verify e2``)
    updates e2 and keeps every other gate's last result.

Gate history is operational metadata, not canonical evidence: it is the one place where Treasure
records wall-clock time on purpose (the runbook asks for gate execution time trends and for the
age of the last gate run). The clock is read in :func:`now_utc` only.

This module has no pytest import: the plugin, ``treasure gates history``, ``treasure status`` and
``treasure checklist`` all read and write through it.
"""

from __future__ import annotations

import json
import os
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

SCHEMA_VERSION = 1
LATEST_SCHEMA_VERSION = 2
HISTORY_NAME = "gates_history.jsonl"
LATEST_NAME = "gates.json"
LOCK_NAME = ".gates_history.lock"
RUN_BY_ENV = "TREASURE_GATE_RUN_BY"
RUN_BY = ("cli", "pytest", "checklist")
OUTCOMES = ("passed", "failed", "skipped", "missing")

#: A gate result older than this (seconds) no longer vouches for the workspace: ``treasure
#: checklist pre`` fails on it ("stale"). 24 hours: the runbook runs the gates at least daily
#: (pre-run checklist), so a verdict from before yesterday's session is not evidence for today.
STALE_AFTER_S = 24 * 3600

#: The runbook escalates "> 5 consecutive gate failures": more than this many failures in a row
#: of one gate makes ``checklist pre`` report GATE_ESCALATE.
ESCALATE_AFTER = 5

#: Longest history line the reader accepts (bytes); a longer one is reported as corrupt.
MAX_LINE_BYTES = 1 << 20

#: Warning code of a history line that cannot be read (torn, hand-edited, wrong shape).
CORRUPT_CODE = "GATE_HISTORY_CORRUPT"


def now_utc() -> datetime:
    """The current time, UTC. The only clock read of gate history: gate results are operational
    metadata (age, duration trends), never part of a run's canonical evidence."""
    return datetime.now(timezone.utc)  # treasure: allow-nondeterminism gate history records when a gate ran (operational metadata, not evidence)


def format_time(moment: datetime) -> str:
    """``2025-01-31T12:00:00.123Z``: UTC, millisecond precision."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime | None:
    """The inverse of :func:`format_time` (any ISO 8601 with an offset); ``None`` if unreadable."""
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def run_by_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Who runs this gate session: ``TREASURE_GATE_RUN_BY`` if it names a known runner, else
    ``pytest``."""
    value = (os.environ if environ is None else environ).get(RUN_BY_ENV, "").strip()
    return value if value in RUN_BY else "pytest"


def session_id(moment: datetime, pid: int | None = None) -> str:
    """An id for one gate session: its finishing time and process id (unique per writer)."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z-{os.getpid() if pid is None else pid}"


def history_path(ws_root: Path | str) -> Path:
    return Path(ws_root) / "evidence" / HISTORY_NAME


def latest_path(ws_root: Path | str) -> Path:
    return Path(ws_root) / "evidence" / LATEST_NAME


def is_workspace(root: Path | str) -> bool:
    """Whether ``root`` is a Treasure workspace (it has ``spec/ssot.json``): gate results are only
    ever written into one."""
    return (Path(root) / "spec" / "ssot.json").is_file()


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryWarning:
    """A history line that was skipped: ``code`` (:data:`CORRUPT_CODE`), 1-based ``line``, why."""

    code: str
    line: int
    message: str

    def render(self) -> str:
        return f"warning[{self.code}]: evidence/{HISTORY_NAME} line {self.line}: {self.message}"


@dataclass
class History:
    """The readable records of a history file, oldest first, and the lines that were skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[HistoryWarning] = field(default_factory=list)
    lines: int = 0  # lines read, readable or not

    def of(self, gate: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["gate"] == gate]

    def gates(self) -> list[str]:
        return sorted({r["gate"] for r in self.records})


def _problem(record: Any) -> str | None:
    """Why a parsed line is not a usable record (the fields readers rely on), else ``None``."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if not isinstance(record.get("gate"), str) or not record["gate"]:
        return "no gate name"
    if record.get("outcome") not in OUTCOMES:
        return f"outcome {record.get('outcome')!r} is not one of {', '.join(OUTCOMES)}"
    if not isinstance(record.get("finished_at"), str) or parse_time(record["finished_at"]) is None:
        return "finished_at is not an ISO 8601 time"
    duration = record.get("duration_s")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0:
        return "duration_s is not a number >= 0"
    return None


def read(ws_root: Path | str, *, limit: int | None = None) -> History:
    """The workspace's gate history. Never raises for a bad file: an absent history is empty; an
    unreadable, torn or hand-edited line is skipped and reported in ``warnings`` (code
    :data:`CORRUPT_CODE`, with its line number). Memory stays bounded: lines longer than
    :data:`MAX_LINE_BYTES` are skipped unparsed, and with ``limit`` only the last ``limit`` records
    are kept."""
    path = history_path(ws_root)
    history = History()
    kept: deque[dict[str, Any]] = deque(maxlen=limit)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return history
    except OSError as exc:
        history.warnings.append(HistoryWarning(CORRUPT_CODE, 0, f"cannot read: {exc.strerror or exc}"))
        return history
    with handle:
        number = 0
        while True:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the over-long line
                    raw = handle.readline(MAX_LINE_BYTES + 1)
                history.warnings.append(HistoryWarning(CORRUPT_CODE, number, f"longer than {MAX_LINE_BYTES} bytes"))
                continue
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                torn = "" if raw.endswith(b"\n") else " (torn last line: a writer was interrupted)"
                history.warnings.append(HistoryWarning(CORRUPT_CODE, number, f"invalid JSON{torn}: {exc}"))
                continue
            problem = _problem(record)
            if problem is not None:
                history.warnings.append(HistoryWarning(CORRUPT_CODE, number, problem))
                continue
            kept.append(record)
        history.lines = number
    history.records = list(kept)
    return history


def _history(source: Path | str | History) -> History:
    return source if isinstance(source, History) else read(source)


def latest(source: Path | str | History) -> dict[str, dict[str, Any]]:
    """Each gate's last record (the last appended line wins), by gate name, sorted."""
    last: dict[str, dict[str, Any]] = {}
    for record in _history(source).records:
        last[record["gate"]] = record
    return dict(sorted(last.items()))


def consecutive_failures(source: Path | str | History, gate: str) -> int:
    """How many of ``gate``'s most recent results in a row are ``failed`` (0 if the last one is not)."""
    count = 0
    for record in reversed(_history(source).of(gate)):
        if record["outcome"] != "failed":
            break
        count += 1
    return count


def age_s(record: Mapping[str, Any], now: datetime | None = None) -> float | None:
    """Seconds since ``record`` finished (``None`` when its time cannot be read)."""
    finished = parse_time(str(record.get("finished_at", "")))
    if finished is None:
        return None
    return max(0.0, ((now or now_utc()) - finished).total_seconds())


def stale(source: Path | str | History, max_age_s: float = STALE_AFTER_S, *,
          now: datetime | None = None) -> dict[str, float]:
    """Gates whose latest result is older than ``max_age_s`` seconds: ``{gate: age in seconds}``."""
    moment = now or now_utc()
    found: dict[str, float] = {}
    for gate, record in latest(source).items():
        age = age_s(record, moment)
        if age is None or age > max_age_s:
            found[gate] = float("inf") if age is None else age
    return found


def format_age(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``: an age for a status line."""
    if seconds is None or seconds == float("inf"):
        return "?"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


@dataclass(frozen=True)
class Trend:
    """One gate over (the last part of) its history: what ``treasure gates history`` shows."""

    gate: str
    runs: int
    passed: int
    failed: int
    skipped: int
    missing: int
    last_outcome: str
    last_finished_at: str
    last_age_s: float | None
    last_run_by: str
    consecutive_failures: int
    mean_duration_s: float
    max_duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "runs": self.runs,
                "outcomes": {"passed": self.passed, "failed": self.failed, "skipped": self.skipped,
                             "missing": self.missing},
                "last": {"outcome": self.last_outcome, "finished_at": self.last_finished_at,
                         "age_s": None if self.last_age_s is None else round(self.last_age_s, 3),
                         "run_by": self.last_run_by},
                "consecutive_failures": self.consecutive_failures,
                "duration_s": {"mean": round(self.mean_duration_s, 3), "max": round(self.max_duration_s, 3)}}


def trends(source: Path | str | History, *, gate: str | None = None, last: int | None = None,
           now: datetime | None = None) -> list[Trend]:
    """Per gate (sorted by name, or only ``gate``): outcome counts, last result and its age, mean
    and max duration over each gate's last ``last`` results (all when ``None``), and its
    consecutive failures (always over the whole history)."""
    history = _history(source)
    moment = now or now_utc()
    result = []
    for name in ([gate] if gate is not None else history.gates()):
        records = history.of(name)
        streak = consecutive_failures(history, name)  # over the whole history, whatever ``last`` says
        if last is not None:
            records = records[-last:] if last > 0 else []
        if not records:
            continue
        outcomes = [r["outcome"] for r in records]
        durations = [float(r["duration_s"]) for r in records if r["outcome"] != "missing"] or [0.0]
        final = records[-1]
        result.append(Trend(name, len(records), outcomes.count("passed"), outcomes.count("failed"),
                            outcomes.count("skipped"), outcomes.count("missing"), final["outcome"],
                            final["finished_at"], age_s(final, moment), str(final.get("run_by", "?")),
                            streak, sum(durations) / len(durations), max(durations)))
    return result


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------
def make_record(entry: Mapping[str, Any], *, session: str, finished_at: str, run_by: str,
                selected: Sequence[str] | None) -> dict[str, Any]:
    """A history record from one gate entry of a session report (``name, description, status,
    reason, counts, tests, notes, duration_s``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "session": session,
        "gate": entry["name"],
        "description": entry.get("description", ""),
        "outcome": entry["status"],
        "reason": entry.get("reason"),
        "counts": dict(entry.get("counts") or {"passed": 0, "failed": 0, "skipped": 0}),
        "tests": list(entry.get("tests") or ()),
        "notes": list(entry.get("notes") or ()),
        "duration_s": round(float(entry.get("duration_s") or 0.0), 3),
        "finished_at": finished_at,
        "run_by": run_by if run_by in RUN_BY else "pytest",
        "selected": sorted(selected) if selected is not None else None,
    }


def _line(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def append(ws_root: Path | str, records: Iterable[Mapping[str, Any]], *,
           session: Mapping[str, Any] | None = None) -> Path:
    """Append ``records`` to the history (fsynced, under the lock) and rewrite ``gates.json`` as
    the latest state derived from the whole history, with ``session`` as its session block.
    Returns the path of gates.json. ``OSError`` propagates (the caller decides how to report a
    read-only workspace)."""
    evidence = Path(ws_root) / "evidence"
    evidence.mkdir(parents=True, exist_ok=True)
    data = b"".join(_line(r) for r in records)
    from treasure.file_locks import exclusive  # the writers of every append-only store share it

    with exclusive(evidence / LOCK_NAME):
        path = history_path(ws_root)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if data:
                _repair_torn_tail(fd, path)
                os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        document = latest_document(read(ws_root), session=session)
        from treasure.jsonio import atomic_write_bytes, dumps_pretty

        target = latest_path(ws_root)
        atomic_write_bytes(target, dumps_pretty(document), durable=True)
    return target


def _repair_torn_tail(fd: int, path: Path) -> None:
    """A writer killed mid-line leaves no newline at the end: start the next record on its own
    line so only the torn record is lost, never the new one."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) != b"\n":
            os.write(fd, b"\n")


def _overall(statuses: Iterable[str]) -> str:
    values = list(statuses)
    if "failed" in values or "missing" in values:
        return "failed"
    if "skipped" in values or not values:
        return "incomplete"
    return "passed"


def _totals(statuses: Iterable[str]) -> dict[str, int]:
    values = list(statuses)
    return {status: values.count(status) for status in OUTCOMES}


def latest_document(history: History, *, session: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The gates.json document (schema truth/gates_report.schema.json, version 2): every gate's
    last record from ``history`` and the ``session`` block of the session that wrote it."""
    gates = []
    for name, record in latest(history).items():
        gates.append({
            "name": name,
            "description": record.get("description", ""),
            "status": record["outcome"],
            "reason": record.get("reason"),
            "counts": record.get("counts") or {"passed": 0, "failed": 0, "skipped": 0},
            "tests": record.get("tests") or [],
            "notes": record.get("notes") or [],
            "duration_s": record["duration_s"],
            "finished_at": record["finished_at"],
            "run_by": record.get("run_by", "pytest"),
            "session": record.get("session", ""),
            "consecutive_failures": consecutive_failures(history, name),
        })
    statuses = [g["status"] for g in gates]
    return {
        "schema_version": LATEST_SCHEMA_VERSION,
        "status": _overall(statuses),
        "totals": _totals(statuses),
        "gates": gates,
        "history": {"path": f"evidence/{HISTORY_NAME}", "records": len(history.records),
                    "corrupt_lines": len(history.warnings)},
        "session": dict(session) if session is not None else None,
    }


def session_block(entries: Sequence[Mapping[str, Any]], *, session: str, finished_at: str, run_by: str,
                  selected: Sequence[str] | None, goldens_updated: Sequence[str] = ()) -> dict[str, Any]:
    """What one session ran: its id, time, runner, selection, its gates' verdict and totals."""
    statuses = [str(e["status"]) for e in entries]
    return {
        "id": session,
        "finished_at": finished_at,
        "run_by": run_by if run_by in RUN_BY else "pytest",
        "selected": sorted(selected) if selected is not None else None,
        "status": _overall(statuses),
        "totals": _totals(statuses),
        "gates": sorted(str(e["name"]) for e in entries),
        "goldens_updated": sorted(goldens_updated),
        "duration_s": round(sum(float(e.get("duration_s") or 0.0) for e in entries), 3),
    }


def record_session(ws_root: Path | str, entries: Sequence[Mapping[str, Any]], *,
                   selected: Sequence[str] | None = None, goldens_updated: Sequence[str] = (),
                   run_by: str | None = None, now: datetime | None = None) -> tuple[Path, dict[str, Any]]:
    """Record one gate session's per-gate ``entries`` (as in the session report): append one
    history record per gate and rewrite gates.json. Returns the path of gates.json and the
    session block written into it."""
    moment = now or now_utc()
    finished_at = format_time(moment)
    sid = session_id(moment)
    who = run_by or run_by_from_env()
    records = [make_record(e, session=sid, finished_at=finished_at, run_by=who, selected=selected)
               for e in sorted(entries, key=lambda e: str(e["name"]))]
    block = session_block(entries, session=sid, finished_at=finished_at, run_by=who, selected=selected,
                          goldens_updated=goldens_updated)
    return append(ws_root, records, session=block), block


def session_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """gates.json narrowed to the session that wrote it: its verdict, totals and its gates' entries
    (what ``treasure verify`` reports: the gates it ran, not every gate's latest state). A document
    without a session block (written by hand, or an older version) is returned as it is."""
    session = document.get("session")
    if not isinstance(session, dict) or not isinstance(session.get("gates"), list):
        return dict(document)
    names = set(session["gates"])
    gates = [g for g in document.get("gates", []) if isinstance(g, dict) and g.get("name") in names]
    return dict(document, status=session.get("status"), totals=session.get("totals"),
                selected=session.get("selected"), gates=gates)


def summary(ws_root: Path | str, *, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per gate, its latest result as ``treasure status`` and ``checklist pre`` show it: outcome,
    finished_at, age_s, run_by, consecutive_failures, stale, escalate (sorted by gate)."""
    history = read(ws_root)
    moment = now or now_utc()
    found: dict[str, dict[str, Any]] = {}
    for gate, record in latest(history).items():
        age = age_s(record, moment)
        streak = consecutive_failures(history, gate)
        found[gate] = {"outcome": record["outcome"], "finished_at": record["finished_at"],
                       "age_s": None if age is None else round(age, 3), "run_by": record.get("run_by", "pytest"),
                       "consecutive_failures": streak, "stale": age is None or age > STALE_AFTER_S,
                       "escalate": streak > ESCALATE_AFTER}
    return found


@contextmanager
def running_as(who: str) -> Iterator[None]:
    """Within the block, gate sessions started as child processes record ``run_by=who``
    (sets :data:`RUN_BY_ENV`; restores the previous value afterwards)."""
    if who not in RUN_BY:
        raise ValueError(f"run_by must be one of {', '.join(RUN_BY)}, not {who!r}")
    before = os.environ.get(RUN_BY_ENV)
    os.environ[RUN_BY_ENV] = who
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_BY_ENV, None)
        else:
            os.environ[RUN_BY_ENV] = before
