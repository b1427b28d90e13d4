"""Anchored evidence: a re-chained forged log (or report) disagrees with a signed manifest and
with the anchor ledger; a key inside the workspace is refused (issue 17, item 4b)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest

from treasure import anchor, keys
from treasure.canonical import canonical_bytes
from treasure.errors import TreasureError
from treasure.workspace import Workspace


@pytest.fixture
def key_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A signing key in a private config folder outside every workspace."""
    cfg = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(cfg))
    monkeypatch.delenv(keys.ENV_SIGNING_KEY, raising=False)
    monkeypatch.delenv(keys.ENV_VERIFY_KEY, raising=False)
    return cfg


def _run(cli: Callable[..., tuple[int, str, str]], ws: Workspace) -> str:
    code, out, err = cli("run", "--workspace", ws.root, "--overwrite", "--json")
    assert code == 0, err
    return str(json.loads(out)["run_id"])


def _rechain(log: Path) -> None:
    """The hostile tester's forgery: halve one fill's price, recompute every hash after it."""
    lines = [orjson.loads(raw) for raw in log.read_bytes().splitlines()]
    prev = None
    forged = False
    out = []
    for event in lines:
        if not forged and event["event_type"] == "order_filled":
            event["payload"]["price"] = event["payload"]["price"] / 2
            forged = True
        if prev is not None:
            event["prev"] = prev
        body = {k: v for k, v in event.items() if k != "hash"}
        event["hash"] = hashlib.sha256(canonical_bytes(body)).hexdigest()
        prev = event["hash"]
        out.append(canonical_bytes(event))
    assert forged
    log.write_bytes(b"\n".join(out) + b"\n")


def _codes(findings: list[anchor.AnchorFinding]) -> set[str]:
    return {f.code for f in findings}


def test_signed_run_verifies_and_forgeries_fail(workspace: Workspace, cli: Any, key_env: Path) -> None:
    key = keys.init_key(workspace=workspace.root)
    run_id = _run(cli, workspace)
    anchor.anchor_run(workspace.root, run_id, key)
    vkey = keys.load_verify_key(workspace=workspace.root)
    assert anchor.verify_run(workspace.root, run_id, vkey) == []

    court = workspace.root / "reports" / "runs" / run_id / "court_report.json"
    log = workspace.root / json.loads(court.read_text())["evidence"]["event_log"]
    _rechain(log)
    assert "ANCHOR_LOG_HEAD" in _codes(anchor.verify_run(workspace.root, run_id, vkey))

    # the forger also edits the court report's head hash and re-anchors without the key
    doc = json.loads(court.read_text())
    doc["events"]["last_hash"] = orjson.loads(log.read_bytes().splitlines()[-1])["hash"]
    court.write_text(json.dumps(doc))
    assert "ANCHOR_MISMATCH" in _codes(anchor.verify_run(workspace.root, run_id, vkey))
    anchor.anchor_run(workspace.root, run_id, None)
    assert "ANCHOR_UNSIGNED" in _codes(anchor.verify_run(workspace.root, run_id, vkey))

    # ... or signs with a key of their own
    other = keys.init_key(key_env / "attacker.pem", workspace=workspace.root)
    anchor.anchor_run(workspace.root, run_id, other)
    assert "ANCHOR_SIG_KEY" in _codes(anchor.verify_run(workspace.root, run_id, vkey))


def test_without_key_the_ledger_is_a_second_place(workspace: Workspace, cli: Any, key_env: Path) -> None:
    run_id = _run(cli, workspace)
    anchor.anchor_run(workspace.root, run_id, None)
    assert anchor.verify_run(workspace.root, run_id, None) == []
    manifest = workspace.root / "reports" / "runs" / run_id / anchor.MANIFEST
    doc = json.loads(manifest.read_text())
    doc["log"]["total"] += 1
    manifest.write_text(json.dumps(doc))
    codes = _codes(anchor.verify_run(workspace.root, run_id, None))
    assert {"ANCHOR_MISMATCH", "ANCHOR_LEDGER_MISMATCH"} <= codes


def test_tampered_ledger_line_breaks_the_chain(workspace: Workspace, cli: Any, key_env: Path) -> None:
    run_id = _run(cli, workspace)
    anchor.anchor_run(workspace.root, run_id, None)
    anchor.anchor_run(workspace.root, run_id, None)
    ledger = workspace.root / anchor.LEDGER
    first, *rest = ledger.read_bytes().splitlines()
    assert len(rest) >= 2  # the run anchored itself at commit, then twice more
    record = orjson.loads(first)
    record["manifest_sha256"] = "0" * 64
    ledger.write_bytes(b"".join(line + b"\n" for line in [orjson.dumps(record), *rest]))
    assert "ANCHOR_LEDGER_BROKEN" in _codes(anchor.verify_run(workspace.root, run_id, None))


def test_missing_manifest_is_a_finding(workspace: Workspace, cli: Any, key_env: Path) -> None:
    run_id = _run(cli, workspace)
    manifest = workspace.root / "reports" / "runs" / run_id / anchor.MANIFEST
    if manifest.exists():
        manifest.unlink()
    assert _codes(anchor.verify_run(workspace.root, run_id, None)) == {"ANCHOR_MISSING"}


def test_key_inside_workspace_is_refused(workspace: Workspace, key_env: Path) -> None:
    with pytest.raises(TreasureError) as info:
        keys.init_key(workspace.root / "data" / "key.pem", workspace=workspace.root)
    assert info.value.code == "KEY_IN_WORKSPACE"


def test_configured_but_broken_key_is_an_error(key_env: Path, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    monkeypatch.setenv(keys.ENV_SIGNING_KEY, str(bad))
    with pytest.raises(TreasureError) as info:
        keys.load_signing_key()
    assert info.value.code == "KEY_INVALID"
    monkeypatch.setenv(keys.ENV_SIGNING_KEY, str(tmp_path / "absent.pem"))
    with pytest.raises(TreasureError) as info:
        keys.load_signing_key()
    assert info.value.code == "KEY_MISSING"


def test_signatures_are_deterministic(key_env: Path) -> None:
    key = keys.init_key()
    assert key.sign(b"manifest") == key.sign(b"manifest")


def test_cli_keys_verify(workspace: Workspace, cli: Any, key_env: Path) -> None:
    code, out, _ = cli("keys", "init", "--workspace", workspace.root)
    assert code == 0 and "signing key" in out
    run_id = _run(cli, workspace)
    code, out, _ = cli("keys", "anchor", run_id, "--workspace", workspace.root)
    assert code == 0
    code, out, _ = cli("keys", "verify", "--workspace", workspace.root)
    assert code == 0, out
    (workspace.root / "reports" / "runs" / run_id / anchor.SIGNATURE).unlink()
    code, out, _ = cli("keys", "verify", "--workspace", workspace.root)
    assert code == 2 and "ANCHOR_UNSIGNED" in out


# --- the anchor gate (pytest_treasure/gates/test_anchor.py) over runs that anchored themselves ---

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def two_anchored_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs ``a`` then ``b`` (the latest), each anchored by the engine at its commit point, no key."""
    import os

    from treasure.engine import RunRequest, run
    from treasure.workspace import init_workspace

    saved = {name: os.environ.pop(name, None) for name in (keys.ENV_SIGNING_KEY, keys.ENV_VERIFY_KEY)}
    saved_xdg = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("nokey"))
    try:
        ws = init_workspace(tmp_path_factory.mktemp("anchored") / "ws")
        for run_id in ("a", "b"):
            assert run(RunRequest(workspace=ws, run_id=run_id)).exit_code == 0
    finally:
        for name, value in saved.items():
            if value is not None:
                os.environ[name] = value
        if saved_xdg is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = saved_xdg
    return ws.root


@pytest.fixture
def anchored_ws(two_anchored_runs: Path, tmp_path: Path, key_env: Path) -> Workspace:
    import shutil

    shutil.copytree(two_anchored_runs, tmp_path / "ws", symlinks=True)
    return Workspace.at(tmp_path / "ws")


def _anchor_gate(pytester: pytest.Pytester, ws: Workspace) -> pytest.RunResult:
    from pytest_treasure.gates import GATES_DIR

    pytester.makepyfile(gate_anchor_under_test=(GATES_DIR / "test_anchor.py").read_text())
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              f"--treasure-workspace={ws.root}", "gate_anchor_under_test.py")


def test_the_engine_anchors_every_committed_run(anchored_ws: Workspace) -> None:
    ledger = [orjson.loads(line) for line in (anchored_ws.root / anchor.LEDGER).read_bytes().splitlines()]
    assert [record["run_id"] for record in ledger] == ["a", "b"]
    for run_id in ("a", "b"):
        assert anchor.verify_run(anchored_ws.root, run_id, None) == []


def test_the_anchor_gate_passes_a_clean_workspace(pytester: pytest.Pytester, anchored_ws: Workspace) -> None:
    result = _anchor_gate(pytester, anchored_ws)
    result.assert_outcomes(passed=1)


def test_the_anchor_gate_fails_a_rechained_non_latest_log(pytester: pytest.Pytester, anchored_ws: Workspace) -> None:
    court = anchored_ws.run_reports("a") / "court_report.json"
    _rechain(anchored_ws.event_log("a"))
    # the forger also makes the court report agree with the forged head (the events gate then passes)
    doc = json.loads(court.read_text())
    doc["events"]["last_hash"] = orjson.loads(anchored_ws.event_log("a").read_bytes().splitlines()[-1])["hash"]
    court.write_text(json.dumps(doc))
    result = _anchor_gate(pytester, anchored_ws)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*anchor: 1 of 2 run(s) disagree*", "*ANCHOR_MISMATCH: a: *",
                                 "*ANCHOR_LOG_HEAD: a: *"])
    assert ": b: " not in result.stdout.str()


def test_the_anchor_gate_on_a_fresh_workspace_checks_a_fresh_run(pytester: pytest.Pytester, tmp_path: Path,
                                                                  key_env: Path) -> None:
    from treasure.workspace import init_workspace

    ws = init_workspace(tmp_path / "fresh")
    result = _anchor_gate(pytester, ws)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*fresh workspace*verified the anchors of a fresh run*"])


def test_a_configured_but_broken_key_refuses_the_run_before_any_evidence(
        tmp_path: Path, key_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from treasure.engine import RunRequest, run
    from treasure.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    monkeypatch.setenv(keys.ENV_SIGNING_KEY, str(bad))
    with pytest.raises(TreasureError) as info:
        run(RunRequest(workspace=ws, run_id="k"))
    assert info.value.code == "KEY_INVALID" and info.value.exit_code == 2
    assert not ws.event_log("k").exists() and not ws.run_reports("k").exists()


def test_a_signed_run_signs_its_manifest_at_commit(tmp_path: Path, key_env: Path) -> None:
    from treasure.engine import RunRequest, run
    from treasure.workspace import init_workspace

    key = keys.init_key()
    ws = init_workspace(tmp_path / "ws")
    assert run(RunRequest(workspace=ws, run_id="s")).exit_code == 0
    assert json.loads((ws.run_reports("s") / anchor.MANIFEST).read_text())["key_id"] == key.key_id
    assert anchor.verify_run(ws.root, "s", keys.load_verify_key(workspace=ws.root)) == []
