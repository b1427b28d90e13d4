"""Gate dryrun-live: the workspace's run reconciles with its own recorded live sessions exactly as
their manifest says, recon escalates to a halt above ``recon.max_mismatches`` and not at it, and the
matcher passes its self-test on the packaged sessions.

Which sessions: the ones recorded for the run (``treasure recon record RUN_ID`` writes
``fixtures/live/runs/RUN_ID/``), else the workspace's ``fixtures/live/manifest.json`` when it was
generated from the same dataset (the packaged default sessions on the default data). Never the
sessions of another dataset: a workspace on its own data without recorded sessions fails with
``RECON_NO_SESSIONS`` and the command that records them.

The manifest lists each session and the mismatches (code, order id) recon must find in it: none
for the clean session, exactly one code for each faulty one. The gate reconciles a fresh run of the
workspace's SSOT (``treasure_run``) against every session with the SSOT's tolerances, in a temporary
copy (the run's own evidence and the operator's workspace are never written), and checks:

* the clean session reconciles with zero mismatches, every order matched;
* every session yields exactly its declared (code, order id) pairs: one canonical diff over all
  sessions on failure (``evidence/diffs/``);
* every recon_report.json validates against truth/recon_report.schema.json, and the RECON log
  verifies (schema, chain) with one ``recon_mismatch`` event per mismatch (payload.code);
* escalation: a session halts (CRITICAL ``halt`` event, reason recon_mismatch_threshold, exit 3)
  iff its mismatched orders exceed ``recon.max_mismatches``; for the largest session, recon with the
  threshold set to its count does not halt while one below it does, and sets the emergency flag;
* self-test: the packaged sessions (``fixtures/live/`` of the installed package), reconciled with a
  dry-run of the packaged defaults in a temporary workspace, give exactly their declared mismatches
  (so a matcher bug shows on any workspace, whatever its data).

When the default run changes (order ids, fills), regenerate the packaged sessions with
``python -m treasure.recon.fixturegen``; a workspace's own with ``treasure recon record RUN_ID --overwrite``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gate("dryrun-live")

MANIFEST = "manifest.json"


def _regenerate(run_id: str) -> str:
    return (f"if the run changed, re-record its sessions with `treasure recon record {run_id} --overwrite` "
            "(the packaged default sessions: `python -m treasure.recon.fixturegen`)")


# fixtures ---------------------------------------------------------------------------------------
@pytest.fixture
def own_sessions(treasure_run: Any, treasure_workspace: Any) -> Any:
    """The recorded sessions that belong to the fresh run (see the module doc)."""
    from pytest_treasure.fresh_runs import workspace_of
    from treasure.errors import TreasureError
    from treasure.recon.record import sessions_for
    from treasure.recon.runlog import read_run

    if treasure_run.status != "complete":
        pytest.fail(f"the fresh run {treasure_run.run_id} ended {treasure_run.status}; nothing to reconcile",
                    pytrace=False)
    try:
        record = read_run(workspace_of(treasure_run), treasure_run.run_id)
    except TreasureError as exc:
        pytest.fail(f"the fresh run's log does not read:\n{exc.render()}", pytrace=False)
    found = sessions_for(treasure_workspace, treasure_run.run_id, dataset_sha256=record.dataset_sha256,
                         symbol=record.symbol)
    if found is None:
        missing = TreasureError(
            "RECON_NO_SESSIONS", f"no recorded live sessions for run {treasure_run.run_id} "
            f"(dataset {str(record.dataset_sha256)[:12]}…): neither fixtures/live/runs/{treasure_run.run_id}/"
            f"{MANIFEST} nor a fixtures/live/{MANIFEST} generated from this dataset",
            hint=f"`treasure run` (if not made yet), then `treasure recon record {treasure_run.run_id}`")
        pytest.fail(missing.render(), pytrace=False)
    if not found.manifest.get("sessions"):
        pytest.fail(f"{treasure_workspace.relative(found.folder / MANIFEST)} lists no sessions", pytrace=False)
    return found


@pytest.fixture
def manifest(own_sessions: Any) -> dict[str, Any]:
    """The manifest of the run's sessions."""
    return dict(own_sessions.manifest)


@dataclass
class Reconciled:
    """One session's recon: the outcome, and its RECON log read right after."""

    outcome: Any
    events: list[dict[str, Any]] = field(default_factory=list)
    log_error: str | None = None


#: (run log, bytes of the sessions) -> session file -> Reconciled: recon each session once per worker
_RESULTS: dict[tuple[str, bytes], dict[str, Reconciled]] = {}
#: the self-test's outcome on the packaged sessions, once per worker
_SELF_TEST: list[list[str]] = []


def _recon_workspace(treasure_run: Any, treasure_workspace: Any, sessions: Any, root: Path) -> Any:
    """A temporary workspace holding the fresh run's log, the operator's spec and truth, and the
    run's sessions at the same relative place."""
    from pytest_treasure.fresh_runs import workspace_of
    from treasure.workspace import Workspace

    source = workspace_of(treasure_run)
    for part in ("spec", "truth"):
        shutil.copytree(source.root / part, root / part)
    relative = sessions.folder.relative_to(treasure_workspace.root)
    shutil.copytree(sessions.folder, root / relative, ignore=shutil.ignore_patterns("runs"))
    ws = Workspace.at(root)
    ws.logs_dir.mkdir(parents=True)
    for log_part in source.log_parts(treasure_run.run_id):
        shutil.copy2(log_part, ws.logs_dir / log_part.name)
    return ws


@pytest.fixture
def recon_ws(treasure_run: Any, treasure_workspace: Any, own_sessions: Any,
             tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The temporary workspace the gate reconciles in (never the operator's, never the cached run's)."""
    return _recon_workspace(treasure_run, treasure_workspace, own_sessions,
                            tmp_path_factory.mktemp("dryrun_live") / "ws")


def _session_path(recon_ws: Any, treasure_workspace: Any, own_sessions: Any, name: str) -> Path:
    return recon_ws.root / own_sessions.folder.relative_to(treasure_workspace.root) / name


@pytest.fixture
def reconcile_all(recon_ws: Any, manifest: dict[str, Any], own_sessions: Any, treasure_run: Any,
                  treasure_workspace: Any, schema_validator: Any) -> dict[str, Reconciled]:
    """``treasure recon`` of the fresh run against every session of the manifest (cached per worker)."""
    from treasure.errors import TreasureError
    from treasure.eventlog import verify_log
    from treasure.recon import run_recon

    folder = own_sessions.folder
    key = (str(treasure_run.event_log), b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()))
    if key in _RESULTS:
        return _RESULTS[key]
    results: dict[str, Reconciled] = {}
    for entry in manifest["sessions"]:
        path = _session_path(recon_ws, treasure_workspace, own_sessions, entry["file"])
        try:
            outcome = run_recon(recon_ws, treasure_run.run_id, live_path=path, durable=False,
                                contracts=schema_validator, escalation=False)
        except TreasureError as exc:
            pytest.fail(f"recon of {entry['file']} refused its input:\n{exc.render()}\n"
                        f"{_regenerate(treasure_run.run_id)}", pytrace=False)
        done = Reconciled(outcome)
        try:
            verify_log(outcome.event_log, schema_validator, collect=done.events)
        except TreasureError as exc:
            done.log_error = exc.render()
        results[entry["file"]] = done
    _RESULTS[key] = results
    return results


def _max_mismatches(ws: Any) -> int:
    from treasure.config import load_config

    return int(load_config(ws.ssot_path, ws.config_schema_path).section("recon").get("max_mismatches", 10))


def self_test_packaged_sessions(root: Path) -> list[str]:
    """Reconcile a dry-run of the packaged defaults (in ``root``, a temporary folder) against every
    packaged session; the problems found (empty: the matcher finds exactly what each declares)."""
    from treasure.engine import RunRequest, run
    from treasure.recon import run_recon
    from treasure.workspace import Workspace, bundle_dir

    bundle = bundle_dir()
    live = bundle / "fixtures" / "live"
    manifest = json.loads((live / MANIFEST).read_text())
    for part in ("spec", "truth"):
        shutil.copytree(bundle / part, root / part)
    shutil.copytree(bundle / "fixtures" / "data", root / "fixtures" / "data")
    shutil.copytree(live, root / "fixtures" / "live", ignore=shutil.ignore_patterns("runs"))
    ws = Workspace.at(root)
    result = run(RunRequest(workspace=ws, adapter="dryrun", overwrite=True))
    if result.status != "complete":
        return [f"the packaged default dry-run ended {result.status}: {result.error}"]
    problems = []
    limit = _max_mismatches(ws)
    for entry in manifest["sessions"]:
        outcome = run_recon(ws, result.run_id, live_path=ws.fixtures_dir / "live" / entry["file"], durable=False,
                            escalation=False)
        want = sorted((m["code"], m["order_id"]) for m in entry["mismatches"])
        if outcome.result.pairs() != want:
            problems.append(f"{entry['file']}: recon finds {outcome.result.pairs()[:6]}, the manifest declares "
                            f"{want[:6]}")
        should = outcome.report["mismatched_orders"] > limit
        if outcome.halted != should or bool(entry["halt"]) != should:
            problems.append(f"{entry['file']}: {outcome.report['mismatched_orders']} mismatched orders, "
                            f"max_mismatches {limit}: halt {outcome.halted}, declared {entry['halt']}")
    return problems


# the gate ---------------------------------------------------------------------------------------
def test_clean_session_reconciles_with_zero_mismatches(reconcile_all: dict[str, Reconciled],
                                                       manifest: dict[str, Any]) -> None:
    clean = [e["file"] for e in manifest["sessions"] if not e["mismatches"]]
    assert clean, "the manifest declares no clean session (one with no mismatches)"
    for name in clean:
        report = reconcile_all[name].outcome.report
        listing = "\n".join(f"  {m['order_id']} {m['code']}: {m['detail']}" for m in report["mismatches"][:10])
        assert report["mismatch_count"] == 0, (
            f"clean session {name}: {report['mismatch_count']} mismatch(es) on {report['mismatched_orders']} "
            f"order(s), expected none:\n{listing}\n{_regenerate(report['run_id'])}")
        assert report["status"] == "clean" and report["matched"] == report["orders_compared"] == report["run"]["orders"]
        assert reconcile_all[name].outcome.exit_code == 0


def test_each_session_yields_exactly_its_declared_mismatches(reconcile_all: dict[str, Reconciled],
                                                             manifest: dict[str, Any], canonical: Any) -> None:
    expected = {e["file"]: sorted([m["code"], m["order_id"]] for m in e["mismatches"]) for e in manifest["sessions"]}
    actual = {name: sorted([m["code"], m["order_id"]] for m in done.outcome.report["mismatches"])
              for name, done in reconcile_all.items()}
    canonical.assert_equal(expected, actual, name="dryrun-live-sessions")


def test_reports_and_recon_logs_validate(reconcile_all: dict[str, Reconciled], schema_validator: Any) -> None:
    problems = []
    for name, done in reconcile_all.items():
        report = done.outcome.report
        problems += [f"{name}: recon_report.json {err}" for err in schema_validator.errors("recon_report", report)]
        if done.log_error is not None:
            problems.append(f"{name}: the RECON log does not verify: {done.log_error}")
            continue
        codes = sorted(e["payload"]["code"] for e in done.events if e["event_type"] == "recon_mismatch")
        if codes != sorted(m["code"] for m in report["mismatches"]):
            problems.append(f"{name}: recon_mismatch events {codes} do not match the report's mismatches")
        if {e["category"] for e in done.events} != {"RECON"}:
            problems.append(f"{name}: the RECON log holds events of other categories")
    assert not problems, "\n".join(problems)


def test_escalation_halts_above_the_threshold_and_not_at_or_below(reconcile_all: dict[str, Reconciled],
                                                                   recon_ws: Any, treasure_run: Any,
                                                                   treasure_workspace: Any, own_sessions: Any,
                                                                   schema_validator: Any) -> None:
    from treasure.recon import run_recon

    limit = _max_mismatches(recon_ws)
    problems = []
    for name, done in reconcile_all.items():
        outcome, report = done.outcome, done.outcome.report
        should = report["mismatched_orders"] > limit
        halts = [e for e in done.events if e["event_type"] == "halt"]
        fired = bool(halts) and all(e["level"] == "CRITICAL" and e["payload"]["reason"] == "recon_mismatch_threshold"
                                    for e in halts) and len(halts) == 1
        if fired != should or (outcome.exit_code == 3) != should or report["halt"]["triggered"] != should:
            problems.append(f"{name}: {report['mismatched_orders']} mismatched orders, max_mismatches {limit}: "
                            f"halt expected {should}, got halt events {len(halts)}, exit {outcome.exit_code}, "
                            f"report halt.triggered {report['halt']['triggered']}")
    assert not problems, "\n".join(problems)

    name, done = max(reconcile_all.items(), key=lambda item: item[1].outcome.report["mismatched_orders"])
    count = done.outcome.report["mismatched_orders"]
    assert count > 0, "no session has mismatches: cannot check the escalation boundary"
    ssot = json.loads(recon_ws.ssot_path.read_text())
    live = _session_path(recon_ws, treasure_workspace, own_sessions, name)
    assert not recon_ws.emergency_flag.exists()
    for threshold, should in ((count, False), (count - 1, True)):
        ssot["recon"]["max_mismatches"] = threshold
        edited = recon_ws.spec_dir / f"ssot_max_{threshold}.json"
        edited.write_text(json.dumps(ssot))
        again = run_recon(recon_ws, treasure_run.run_id, live_path=live, ssot_path=edited, durable=False,
                          contracts=schema_validator)
        assert again.halted == should and (again.exit_code == 3) == should, (
            f"{name} with {count} mismatched orders and max_mismatches {threshold}: halt expected {should}, got "
            f"{again.halted} (exit {again.exit_code})")
        assert recon_ws.emergency_flag.exists() == should, (
            f"{name} with {count} mismatched orders and max_mismatches {threshold}: the emergency flag is "
            f"{'not ' if should else ''}set; above the threshold recon must halt trading")


def test_matcher_self_test_on_the_packaged_sessions(tmp_path_factory: pytest.TempPathFactory) -> None:
    if not _SELF_TEST:
        _SELF_TEST.append(self_test_packaged_sessions(tmp_path_factory.mktemp("dryrun_live_selftest") / "ws"))
    problems = _SELF_TEST[0]
    assert not problems, ("the matcher's self-test on the packaged sessions failed (a matcher bug, or stale "
                          "packaged sessions: `python -m treasure.recon.fixturegen --check`):\n" + "\n".join(problems))
