"""Issue 12's "Done when", end to end: the README's real-data walkthrough, run as written.

The ```bash block under "## Real data: from a CSV to `treasure verify`" in README.md is parsed and
executed command by command through the CLI in-process (the ``cli`` fixture), in a fresh
temporary folder, with the shell's meaning of ``&&`` (stop unless 0) and ``;`` (go on): a README
edit that breaks the walkthrough fails this test. ``python -c CODE`` runs CODE in-process (GOOG
from the installed backtesting package, written to GOOG.csv); ``RUN_ID`` is the run id ``treasure
run`` printed. Then what the issue promises is checked on the evidence: no data_gap_detected
event and no DATA_GAP finding for weekends and holidays, the court report's annualisation from the
XNYS calendar (252 sessions a year), and ``treasure verify``: every gate passed, exit 0.

``treasure verify`` spawns pytest over all gates (persist's SIGKILL drills and determinism's
subprocess runs are most of it); it runs exactly as the README says, with the product's default
settings (there are no smaller ones).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Callable

import pytest

from treasure import gate_catalog
from treasure.workspace import Workspace

Cli = Callable[..., tuple[int, str, str]]
README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Real data: from a CSV to `treasure verify`"


def walkthrough() -> list[str]:
    """The lines of the section's first ```bash block, comments stripped."""
    text = README.read_text()
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1]
    match = re.search(r"```bash\n(.*?)```", body, re.S)
    assert match is not None, "the real-data section has no ```bash block"
    lines = []
    for raw in match.group(1).splitlines():
        # a comment starts at " #" outside quotes: shlex knows the quoting
        lexer = shlex.shlex(raw, posix=True, punctuation_chars=";&")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        if tokens:
            lines.append(shlex.join(tokens))
    return lines


def split_commands(line: str) -> list[tuple[list[str], str]]:
    """``a && b; c`` -> [(a, '&&'), (b, ';'), (c, ';')]: each command with the operator after it."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&")
    lexer.whitespace_split = True
    out: list[tuple[list[str], str]] = []
    current: list[str] = []
    for token in lexer:
        if token in ("&&", ";"):
            out.append((current, token))
            current = []
        else:
            current.append(token)
    if current:
        out.append((current, ";"))
    return out


class Shell:
    """Runs the walkthrough's commands: ``treasure`` in-process, ``cd``, ``python -c``."""

    def __init__(self, cli: Cli, monkeypatch: pytest.MonkeyPatch, start: Path) -> None:
        self.cli, self.monkeypatch, self.cwd = cli, monkeypatch, start
        monkeypatch.chdir(start)
        self.run_id: str | None = None
        self.results: list[tuple[str, int, str, str]] = []

    def command(self, argv: list[str]) -> int:
        if argv[0] == "cd":
            self.cwd = (self.cwd / argv[1]).resolve()
            self.monkeypatch.chdir(self.cwd)
            return 0
        if argv[0] == "python":
            assert argv[1] == "-c", argv
            exec(compile(argv[2], "<README python -c>", "exec"), {"__name__": "__main__"})  # noqa: S102
            return 0
        assert argv[0] == "treasure", f"the walkthrough runs {argv[0]!r}, which this test cannot"
        args = [self.run_id if a == "RUN_ID" else a for a in argv[1:]]
        assert None not in args, "RUN_ID used before `treasure run` printed one"
        code, out, err = self.cli(*args)
        self.results.append((shlex.join(argv), code, out, err))
        if args[0] == "run" and code == 0:
            found = re.search(r"^\s*run id\s+(\S+)", out, re.M)
            assert found, out
            self.run_id = found.group(1)
        return code

    def line(self, line: str) -> None:
        for argv, op in split_commands(line):
            code = self.command(argv)
            if op == "&&":
                assert code == 0, f"`{shlex.join(argv)}` exited {code}: {self.results[-1][2:]}"
            elif argv[0] == "treasure" and argv[1:3] != ["ssot", "diff"]:
                # `;` goes on whatever happened; but the walkthrough's own commands must succeed
                # (only `ssot diff` exits 2 by design: there are changes to review)
                assert code == 0, f"`{shlex.join(argv)}` exited {code}: {self.results[-1][2:]}"


def test_the_readme_walkthrough_parses_into_the_commands_the_issue_names() -> None:
    commands = [" ".join(argv[:3]) for line in walkthrough() for argv, _ in split_commands(line)]
    assert commands[0] == "treasure init goog" and "cd goog" in commands
    for wanted in ("treasure data import", "treasure ssot diff", "treasure ssot approve", "treasure run --db",
                   "treasure recon record", "treasure verify"):
        assert any(c.startswith(wanted) for c in commands), (wanted, commands)
    # the operator's review may not gate the approval on diff's exit code (2 when anything changed)
    assert not any("ssot diff &&" in line for line in walkthrough())


def test_a_daily_stock_csv_imports_runs_records_and_verifies(cli: Cli, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    shell = Shell(cli, monkeypatch, tmp_path)
    for line in walkthrough():
        shell.line(line)
    ws = Workspace.at(tmp_path / "goog")
    by_command = {c.split(" RUN_ID")[0]: (code, out, err) for c, code, out, err in shell.results}

    # import pinned the data, calendar and interval but did not approve
    code, out, _ = by_command["treasure data import GOOG.csv --calendar XNYS"]
    assert code == 0 and "gaps under it: 0" in out and "not approved" in out
    ssot = json.loads(ws.ssot_path.read_text())
    assert ssot["dataset"]["path"] == "fixtures/data/GOOG.csv"
    assert (ssot["dataset"]["interval_ms"], ssot["dataset"]["calendar"]) == (86_400_000, "XNYS")
    assert by_command["treasure ssot diff"][0] == 2  # there was something to review
    assert "dataset.calendar" in by_command["treasure ssot diff"][1]

    # the run: no gaps for weekends and holidays, a year of 252 XNYS sessions, stored in the DB
    run_id = shell.run_id
    assert run_id is not None
    events = [json.loads(line) for line in ws.event_log(run_id).read_text().splitlines()]
    assert len(events) > 100 and events[-1]["payload"]["status"] == "complete"
    loaded = next(e for e in events if e["event_type"] == "dataset_loaded")["payload"]
    assert (loaded["bars"], loaded["gaps"]) == (2148, 0)
    assert not [e for e in events if e["event_type"] == "data_gap_detected"]
    court = json.loads((ws.run_reports(run_id) / "court_report.json").read_text())
    assert court["metrics"]["annualization"] == {"source": "calendar:XNYS", "periods_per_year": 252.0}
    assert not [f for f in court["findings"] if f["code"] in ("DATA_GAP", "SSOT_UNAPPROVED")]
    assert "db " in by_command["treasure run --db"][1]

    # recon record wrote this run's own sessions
    assert (ws.root / "fixtures" / "live" / "runs" / run_id / "clean.jsonl").is_file()

    # verify: every gate ran and passed
    code, out, err = by_command["treasure verify"]
    assert code == 0, out + err
    report = json.loads((ws.root / "evidence" / "gates.json").read_text())
    statuses = {g["name"]: g["status"] for g in report["gates"]}
    assert statuses == {name: "passed" for name in gate_catalog.NAMES}, statuses
    assert report["status"] == "passed"
