"""The CLI's edges: global options anywhere, coded usage errors, safe --out targets, bounded numbers,
-q, refusals that protect evidence, lazy command imports and the documented exit codes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from treasure.workspace import Workspace

Cli = Callable[..., tuple[int, str, str]]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evidence_digests(ws: Workspace) -> dict[str, str]:
    return {p.relative_to(ws.root).as_posix(): digest(p)
            for folder in (ws.logs_dir, ws.reports_dir, ws.data_dir) if folder.is_dir()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def ran(workspace: Workspace, cli: Cli) -> Workspace:
    """A workspace holding one complete run ``a``, stored in the DB too."""
    code, _, err = cli("run", "--workspace", workspace.root, "--run-id", "a", "--db", "--quiet")
    assert code == 0, err
    return workspace


# -- global options before the command ---------------------------------------------------------------
def test_workspace_option_before_the_command(workspace: Workspace, cli: Cli) -> None:
    code, out, err = cli("--workspace", workspace.root, "status")
    assert code == 0, err
    assert str(workspace.root) in out


def test_short_global_options_before_the_command(workspace: Workspace, cli: Cli) -> None:
    code, out, _ = cli("-w", workspace.root, "--json", "status")
    assert code == 0
    assert isinstance(json.loads(out), dict)


def test_the_option_after_the_command_still_wins(workspace: Workspace, tmp_path: Path, cli: Cli) -> None:
    code, _, err = cli("--workspace", tmp_path / "nowhere", "status", "--workspace", workspace.root)
    assert code == 0, err


# -- argparse's errors are coded -----------------------------------------------------------------------
@pytest.mark.parametrize("argv, code, field", [
    (["run", "--seed", "abc"], "CLI_VALUE", "--seed"),
    (["run", "--seed", "-1"], "CLI_VALUE", "--seed"),
    (["run", "--no-such-option"], "CLI_USAGE", "--no-such-option"),
    (["checklist", "sometimes"], "CLI_VALUE", "which"),
    (["db"], "CLI_USAGE", "SUBCOMMAND"),
    (["no-such-command"], "CLI_USAGE", "COMMAND"),
])
def test_usage_errors_are_coded(workspace: Workspace, cli: Cli, argv: list[str], code: str, field: str) -> None:
    exit_code, out, err = cli(*argv, "--workspace", workspace.root)
    assert exit_code == 2
    assert err.startswith(f"error[{code}]: "), err
    assert f"field {field}" in err and "\n  hint: " in err
    assert "usage:" not in err and "Traceback" not in err


def test_usage_error_with_json_prints_a_document(cli: Cli) -> None:
    exit_code, out, _ = cli("run", "--seed", "abc", "--json")
    assert exit_code == 2 and json.loads(out)["error"]["code"] == "CLI_VALUE"


def test_halt_without_reason_names_its_fix(workspace: Workspace, cli: Cli) -> None:
    code, _, err = cli("halt", "--workspace", workspace.root)
    assert code == 2 and err.startswith("error[HALT_REASON]") and "--reason" in err
    assert not workspace.emergency_flag.exists()


def test_db_backup_without_a_target_is_coded(workspace: Workspace, cli: Cli) -> None:
    code, _, err = cli("db", "backup", "--workspace", workspace.root)
    assert code == 2 and err.startswith("error[CLI_USAGE]") and "-o" in err


# -- db backup / export take the same -o/--out ---------------------------------------------------------
def test_db_backup_takes_out_or_the_positional(ran: Workspace, cli: Cli, tmp_path: Path) -> None:
    for argv in (["-o", tmp_path / "b1.db"], ["--out", tmp_path / "b2.db"], [tmp_path / "b3.db"]):
        code, _, err = cli("db", "backup", "--workspace", ran.root, *argv)
        assert code == 0, err
    assert all((tmp_path / f"b{i}.db").is_file() for i in (1, 2, 3))
    code, _, err = cli("db", "backup", "--workspace", ran.root, tmp_path / "x.db", "-o", tmp_path / "y.db")
    assert code == 2 and "error[CLI_USAGE]" in err


def test_db_backup_refuses_existing_unless_forced(ran: Workspace, cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "b.db"
    target.write_bytes(b"keep")
    code, _, err = cli("db", "backup", "--workspace", ran.root, "-o", target)
    assert code == 2 and target.read_bytes() == b"keep"
    code, _, err = cli("db", "backup", "--workspace", ran.root, "-o", target, "--force")
    assert code == 0, err and target.read_bytes() != b"keep"


# -- --out never overwrites evidence or config ---------------------------------------------------------
@pytest.mark.parametrize("target", ["data/treasure.db", "logs/events/run_a.jsonl", "logs/events/run_other.jsonl",
                                    "spec/ssot.json", "reports/court_report.json", "truth/x.json",
                                    "evidence/gates.json", "fixtures/data/x.jsonl"])
@pytest.mark.parametrize("force", [False, True])
def test_db_export_refuses_workspace_evidence_and_config(ran: Workspace, cli: Cli, target: str, force: bool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    before = evidence_digests(ran)
    spec_before = digest(ran.ssot_path)
    existed = (ran.root / target).exists()
    monkeypatch.chdir(ran.root)
    code, out, err = cli("db", "export", "a", "-o", target, *(["--force"] if force else []))
    assert code == 2 and err.startswith("error[OUT_PROTECTED]"), err
    assert evidence_digests(ran) == before and digest(ran.ssot_path) == spec_before
    assert (ran.root / target).exists() == existed


def test_db_export_refuses_a_symlink_to_the_db(ran: Workspace, cli: Cli, tmp_path: Path) -> None:
    link = tmp_path / "innocent.jsonl"
    link.symlink_to(ran.root / "data" / "treasure.db")
    before = digest(ran.root / "data" / "treasure.db")
    code, _, err = cli("db", "export", "a", "--workspace", ran.root, "-o", link, "--force")
    assert code == 2 and "error[OUT_PROTECTED]" in err
    assert digest(ran.root / "data" / "treasure.db") == before


def test_db_export_refuses_an_existing_file_unless_forced(ran: Workspace, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "export.jsonl"
    out.write_text("mine\n")
    code, _, err = cli("db", "export", "a", "--workspace", ran.root, "-o", out)
    assert code == 2 and err.startswith("error[OUT_EXISTS]") and "--force" in err
    assert out.read_text() == "mine\n"
    code, _, err = cli("db", "export", "a", "--workspace", ran.root, "-o", out, "--force")
    assert code == 0, err
    assert out.read_bytes() == ran.event_log("a").read_bytes()


def test_report_out_is_guarded_the_same_way(ran: Workspace, cli: Cli, tmp_path: Path) -> None:
    before = digest(ran.ssot_path)
    code, _, err = cli("report", "a", "--workspace", ran.root, "--out", ran.ssot_path, "--force")
    assert code == 2 and "error[OUT_PROTECTED]" in err and digest(ran.ssot_path) == before
    mine = tmp_path / "mine.html"
    mine.write_text("keep")
    code, _, err = cli("report", "a", "--workspace", ran.root, "--out", mine)
    assert code == 2 and "error[OUT_EXISTS]" in err and mine.read_text() == "keep"


def test_report_needs_no_html_flag(ran: Workspace, cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("report", "a", "--workspace", ran.root)
    assert code == 0, err
    assert (ran.run_reports("a") / "report.html").is_file()
    code, _, err = cli("report", "a", "--html", "--workspace", ran.root, "-o", tmp_path / "r.html")
    assert code == 0, err and (tmp_path / "r.html").is_file()


# -- numbers are bounded before they reach the library -------------------------------------------------
@pytest.mark.parametrize("argv, field", [
    (["rotate", "--max-mb", "-1"], "--max-mb"),
    (["rotate", "--max-mb", "0"], "--max-mb"),
    (["rotate", "--max-mb", "inf"], "--max-mb"),
    (["rotate", "--max-mb", "nan"], "--max-mb"),
    (["status", "--max-mb", "1e400"], "--max-mb"),
    (["status", "--limit", "-3"], "--limit"),
    (["events", "latest", "--tail", "999999999999999999999"], "--tail"),
    (["events", "latest", "--head", "x"], "--head"),
    (["verify", "--jobs", "0"], "--jobs"),
    (["hunt", "--max-minutes", "inf"], "--max-minutes"),
    (["hunt", "--examples", "99999999999999999999"], "--examples"),
])
def test_absurd_numbers_are_coded(ran: Workspace, cli: Cli, argv: list[str], field: str) -> None:
    code, _, err = cli(*argv, "--workspace", ran.root)
    assert code == 2 and err.startswith("error[CLI_VALUE]"), err
    assert f"field {field}" in err
    assert "filter" not in err and "Overflow" not in err and "Traceback" not in err


# -- -q ------------------------------------------------------------------------------------------------
def test_quiet_run_prints_nothing_on_success(workspace: Workspace, cli: Cli) -> None:
    code, out, err = cli("run", "-q", "--workspace", workspace.root, "--run-id", "q")
    assert code == 0 and out == ""
    code, out, err = cli("-q", "run", "--workspace", workspace.root, "--run-id", "q2")
    assert code == 0 and out == ""


def test_quiet_run_still_reports_a_failure(workspace: Workspace, cli: Cli) -> None:
    bad = workspace.root / "bad.csv"
    bad.write_text("")
    code, out, err = cli("run", "-q", "--workspace", workspace.root, "--dataset", bad)
    assert code == 2 and "error[DATA_EMPTY]" in err


def _fake_pytest(ws: Workspace, status: str) -> Callable[..., Any]:
    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        report = ws.evidence_dir / "gates.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"status": status, "gates": [{"name": "e2", "status": status}]}))
        noise = b"........ pytest chatter\n"
        if kwargs.get("stdout") is None:
            sys.stdout.write(noise.decode())
            return subprocess.CompletedProcess(command, 0 if status == "passed" else 1)
        return subprocess.CompletedProcess(command, 0 if status == "passed" else 1, stdout=noise)
    return fake_run


@pytest.mark.parametrize("status", ["passed", "failed"])
def test_quiet_verify(workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    from treasure.cli.commands import verify

    monkeypatch.setattr(verify.subprocess, "run", _fake_pytest(workspace, status))
    code, out, err = cli("verify", "-q", "--workspace", workspace.root)
    if status == "passed":
        assert code == 0 and out == "" and err == ""
    else:
        assert code == 2 and "FAILED" in out and "pytest chatter" in err


# -- run --overwrite while halted ----------------------------------------------------------------------
def test_overwrite_while_halted_is_refused_before_touching_evidence(ran: Workspace, cli: Cli) -> None:
    code, _, err = cli("halt", "--workspace", ran.root, "--reason", "drill")
    assert code == 0, err
    before = {k: v for k, v in evidence_digests(ran).items() if not k.startswith("data/")}
    code, out, err = cli("run", "--workspace", ran.root, "--run-id", "a", "--overwrite")
    assert code == 3, out + err
    assert "error[RUN_HALTED]" in err and "treasure resume" in err
    after = {k: v for k, v in evidence_digests(ran).items() if not k.startswith("data/")}
    assert after == before


# -- TREASURE_DEBUG ------------------------------------------------------------------------------------
def test_debug_prints_the_traceback_of_an_engine_internal_error(workspace: Workspace, cli: Cli,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = cli("faultrun", "--faults", "crash@bar:10", "run", "--workspace", workspace.root,
                         "--run-id", "c")
    assert code == 1 and "error[INTERNAL]" in out + err and "Traceback" not in out + err
    monkeypatch.setenv("TREASURE_DEBUG", "1")
    code, out, err = cli("faultrun", "--faults", "crash@bar:10", "run", "--workspace", workspace.root,
                         "--run-id", "d")
    assert code == 1 and "Traceback (most recent call last)" in out + err


# -- help, exit codes, hidden harnesses ----------------------------------------------------------------
def test_help_documents_exit_codes_and_hides_test_harnesses(cli: Cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    for line in ("0  success", "1  internal error", "2  bad input", "3  halted", "4  run degraded"):
        assert line in out
    assert "faultrun" not in out
    assert "before or after the command" in out
    code, out, _ = cli("faultrun", "--help")
    assert code == 0 and "crash testing" in out


def test_every_command_module_is_in_the_table() -> None:
    from treasure.cli.main import COMMANDS, _installed_modules

    missing = sorted(set(_installed_modules()) - {c.module for c in COMMANDS.values()})
    assert missing == [], f"add these to treasure.cli.main.COMMANDS with a help line: {missing}"


def test_full_parser_registers_every_command() -> None:
    from treasure.cli.main import build_parser, command_table

    parser = build_parser()
    text = parser.format_help()
    for name, cmd in command_table().items():
        if cmd.help is not None:
            assert name in text


IMPORTS = """
import sys
from treasure.cli.main import main
code = main(sys.argv[1:])
print("MODULES", " ".join(sorted(sys.modules)))
"""


def _modules_after(*argv: str, cwd: Path | None = None) -> set[str]:
    done = subprocess.run([sys.executable, "-c", IMPORTS, *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=120)
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    return set(line.split()[1:])


def test_version_and_help_import_no_command_and_no_numpy() -> None:
    for argv in (["--version"], ["--help"]):
        modules = _modules_after(*argv)
        assert not any(m.startswith("treasure.cli.commands.") for m in modules), argv
        assert "numpy" not in modules and "jsonschema" not in modules, argv


def test_a_command_imports_only_its_own_module(workspace: Workspace) -> None:
    modules = _modules_after("status", "--workspace", str(workspace.root))
    commands = sorted(m for m in modules if m.startswith("treasure.cli.commands."))
    assert commands == ["treasure.cli.commands.status"]
