"""`treasure run` and `treasure init` end to end: verdicts, exit codes, refusals without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from treasure.workspace import init_workspace

GOOD_HEAD = "t_ms,open,high,low,close,volume\n"
GOOD_ROW = "1767225600000,100,101,99,100.5,10\n"

BAD_DATASETS = {
    "DATA_NAN": GOOD_HEAD + GOOD_ROW + "1767225900000,nan,101,99,100,10\n",
    "DATA_NONPOSITIVE_PRICE": GOOD_HEAD + GOOD_ROW + "1767225900000,-1,101,99,100,10\n",
    "DATA_NEGATIVE_VOLUME": GOOD_HEAD + GOOD_ROW + "1767225900000,100,101,99,100,-10\n",
    "DATA_OHLC": GOOD_HEAD + GOOD_ROW + "1767225900000,100,99,98,100,10\n",
    "DATA_UNSORTED": GOOD_HEAD + GOOD_ROW + "1767225000000,100,101,99,100,10\n",
    "DATA_HEADER": "time,open,high,low,close,volume\n" + GOOD_ROW,
    "DATA_SHORT_ROW": GOOD_HEAD + GOOD_ROW + "1767225900000,100,101,99\n",
    "DATA_EMPTY": "",
    "DATA_HEADER_ONLY": GOOD_HEAD,
}


def first_error(err: str) -> str:
    """stderr from the first ``error[...]`` line on (warnings such as an unapproved SSOT may precede it)."""
    at = err.find("error[")
    return err[at:] if at >= 0 else err


def python_treasure(*args, cwd=None, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "treasure", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


def test_init_then_run_prints_a_verdict(tmp_path):
    ws = tmp_path / "desk"
    done = python_treasure("init", ws)
    assert done.returncode == 0 and (ws / "spec" / "ssot.json").is_file()
    assert (ws / "fixtures" / "data" / "default_bars.csv").is_file()
    done = python_treasure("run", cwd=ws)
    assert done.returncode == 0, done.stderr
    for needle in ("COMPLETE", "run id", "trades", "return", "max drawdown", "evidence", "court_report.json"):
        assert needle in done.stdout
    assert "Traceback" not in done.stderr


def test_same_run_under_different_hash_seeds_is_byte_identical(tmp_path):
    logs = []
    for seed in ("0", "4242"):
        ws = init_workspace(tmp_path / f"ws{seed}")
        done = python_treasure("run", "--workspace", ws.root, "--run-id", "det", "--quiet",
                               env={"PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        logs.append((ws.event_log("det").read_bytes(), (ws.run_reports("det") / "eqs_report.json").read_bytes()))
    assert logs[0] == logs[1]


def test_json_verdict(workspace, cli):
    code, out, _ = cli("run", "--workspace", workspace.root, "--json", "--run-id", "j1")
    assert code == 0
    doc = json.loads(out)
    assert doc["status"] == "complete" and doc["run_id"] == "j1"
    assert doc["court_report"]["metrics"]["trades"] > 0


@pytest.mark.parametrize("code", sorted(BAD_DATASETS))
def test_bad_datasets_are_refused_with_their_code(workspace, cli, code):
    bad = workspace.root / "data" / "bad.csv"
    bad.write_text(BAD_DATASETS[code])
    exit_code, out, err = cli("run", "--workspace", workspace.root, "--dataset", bad)
    assert exit_code == 2
    assert first_error(err).startswith(f"error[{code}]"), err
    assert "hint:" in err and "Traceback" not in err
    assert not any(workspace.logs_dir.iterdir()) and not any(workspace.reports_dir.iterdir())


@pytest.mark.parametrize("target, code", [("missing.csv", "DATA_MISSING"), ("data", "DATA_IS_DIR")])
def test_missing_and_directory_datasets(workspace, cli, target, code):
    exit_code, _, err = cli("run", "--workspace", workspace.root, "--dataset", workspace.root / target)
    assert exit_code == 2 and first_error(err).startswith(f"error[{code}]")


def test_binary_dataset_is_refused(workspace, cli):
    bad = workspace.root / "data" / "bin.csv"
    bad.write_bytes(b"\x00\xff\xfe" * 100)
    exit_code, _, err = cli("run", "--workspace", workspace.root, "--dataset", bad)
    assert exit_code == 2 and first_error(err).startswith("error[DATA_BINARY]")


def test_emergency_flag_run_exits_3(workspace, cli):
    workspace.emergency_flag.write_text('{"status": "EMERGENCY_HALT", "reason": "drill"}')
    exit_code, out, _ = cli("run", "--workspace", workspace.root)
    assert exit_code == 3 and "HALTED" in out and "emergency_flag" in out


@pytest.mark.parametrize("run_id", ["../escape", "a/b", ""])
def test_bad_run_id_via_cli(workspace, cli, run_id):
    exit_code, _, err = cli("run", "--workspace", workspace.root, "--run-id", run_id)
    assert exit_code == 2 and first_error(err).startswith("error[RUN_ID_INVALID]")


def test_existing_run_is_refused_then_overwritten(workspace, cli):
    assert cli("run", "--workspace", workspace.root, "--run-id", "r1", "-q")[0] == 0
    exit_code, _, err = cli("run", "--workspace", workspace.root, "--run-id", "r1")
    assert exit_code == 2 and first_error(err).startswith("error[RUN_EXISTS]") and "--overwrite" in err
    assert cli("run", "--workspace", workspace.root, "--run-id", "r1", "--overwrite", "-q")[0] == 0


def test_schema_breaking_ssot_names_the_field(workspace, edit_ssot, cli):
    edit_ssot(lambda s: s["risk"].update(max_position_size_usd="lots"))
    exit_code, _, err = cli("run", "--workspace", workspace.root)
    assert exit_code == 2 and "error[SSOT_SCHEMA]" in err and "risk.max_position_size_usd" in err


def test_not_a_workspace(tmp_path, cli):
    exit_code, _, err = cli("run", "--workspace", tmp_path)
    assert exit_code == 2 and first_error(err).startswith("error[WORKSPACE_MISSING]")


def test_relative_cli_path_outside_the_workspace_is_refused(workspace, cli, monkeypatch, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text(GOOD_HEAD + GOOD_ROW)
    monkeypatch.chdir(workspace.root)
    exit_code, _, err = cli("run", "--dataset", "../outside.csv")
    assert exit_code == 2 and first_error(err).startswith("error[PATH_ESCAPE]")


def test_help_lists_exit_codes(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "exit codes:" in out and "3  halted" in out


def test_internal_errors_are_reported_without_traceback(workspace, cli, monkeypatch):
    import treasure.cli.commands.run as run_command

    def explode(*_a, **_k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(run_command, "handle", explode)
    exit_code, _, err = cli("run", "--workspace", workspace.root)
    assert exit_code == 1 and "internal error: RuntimeError: kaboom" in err and "Traceback" not in err
