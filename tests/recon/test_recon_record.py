"""``treasure recon record RUN_ID``: a run's own recorded sessions, on any data and tolerances."""

from __future__ import annotations

import json
from typing import Any, Callable

from treasure.data.synth import bars_to_csv, generate_bars
from treasure.workspace import Workspace, pin_dataset

Cli = Callable[..., tuple[int, str, str]]


def _run(ws: Workspace, cli: Cli, *extra: Any) -> str:
    code, out, err = cli("run", "-w", ws.root, "--json", *extra)
    assert code == 0, err
    return str(json.loads(out)["run_id"])


def test_sessions_follow_the_ssot_tolerances_and_threshold(workspace: Workspace, edit_ssot, cli) -> None:
    edit_ssot(lambda s: s["recon"].update(price_tolerance_bps=20, fee_tolerance_abs_usd=0.5, max_mismatches=4))
    pin_dataset(workspace, bars_to_csv(generate_bars(n_bars=2500, seed=3, start_price=12.0)), "fixtures/data/b.csv")
    run_id = _run(workspace, cli)
    code, out, err = cli("recon", "record", run_id, "-w", workspace.root, "--json")
    assert code == 0, err
    sessions = {s["file"]: s for s in json.loads(out)["manifest"]["sessions"]}
    orders = {name: len({m["order_id"] for m in s["mismatches"]}) for name, s in sessions.items()}
    assert orders["threshold_at.jsonl"] == 4 and not sessions["threshold_at.jsonl"]["halt"]
    assert orders["threshold_over.jsonl"] == 5 and sessions["threshold_over.jsonl"]["halt"]
    # each declared session reconciles to exactly what it declares, through the CLI
    for name, session in sessions.items():
        path = workspace.fixtures_dir / "live" / "runs" / run_id / name
        code, out, err = cli("recon", run_id, "--live", path, "-w", workspace.root, "--json")
        report = json.loads(out)["report"]
        assert sorted((m["code"], m["order_id"]) for m in report["mismatches"]) == \
            sorted((m["code"], m["order_id"]) for m in session["mismatches"]), name
        assert code == (3 if session["halt"] else 0), (name, err)


def test_record_is_idempotent_and_refuses_to_replace_other_sessions(workspace: Workspace, cli) -> None:
    run_id = _run(workspace, cli)
    assert cli("recon", "record", run_id, "-w", workspace.root)[0] == 0
    code, out, _ = cli("recon", "record", run_id, "-w", workspace.root)
    assert code == 0 and "(unchanged)" in out
    clean = workspace.fixtures_dir / "live" / "runs" / run_id / "clean.jsonl"
    clean.write_bytes(clean.read_bytes()[:-200] + b"\n")
    code, _, err = cli("recon", "record", run_id, "-w", workspace.root)
    assert code == 2 and "error[RECON_SESSIONS_EXIST]" in err and "--overwrite" in err
    code, _, err = cli("recon", "record", run_id, "-w", workspace.root, "--overwrite")
    assert code == 0, err
    code, _, _ = cli("recon", "record", run_id, "-w", workspace.root)
    assert code == 0


def test_a_run_too_small_to_derive_faulty_sessions_is_refused_with_a_hint(workspace: Workspace, cli) -> None:
    pin_dataset(workspace, bars_to_csv(generate_bars(n_bars=40, seed=1)), "fixtures/data/tiny.csv")
    run_id = _run(workspace, cli)
    code, _, err = cli("recon", "record", run_id, "-w", workspace.root)
    assert code == 2 and "error[RECON_RECORD_FAILED]" in err and "hint:" in err
    assert not (workspace.fixtures_dir / "live" / "runs" / run_id).exists()
    code, _, err = cli("recon", "record", "no-such-run", "-w", workspace.root)
    assert code == 2 and "error[RUN_UNKNOWN]" in err
