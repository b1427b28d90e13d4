"""Gate determinism: the same inputs give the same evidence, in any process, under any hash seed.

* Two runs of the workspace's SSOT, dataset and seed, each ``python -m treasure run`` in its own
  process with a different PYTHONHASHSEED, each in its own temporary copy of the workspace: the
  event logs must be byte-identical, and the court and EQS reports canonically identical once
  the fields truth/ marks volatile (wall-clock timing) are dropped. On a difference the full
  explanation goes to evidence/diffs/determinism_diff.txt (the runbook's file).
* An AST scan of the treasure package and of the SSOT's strategy when it is user code, for wall
  clock, global randomness, set iteration, ``hash()``, ``id()`` ordering and unsorted directory
  listings (:mod:`treasure.determinism_scan`); a justified line carries
  ``# treasure: allow-nondeterminism <reason>``.
* A hypothesis property: on generated small datasets and seeds, two in-process runs give
  identical canonical evidence (derandomized, a few examples and no shrinking: it runs in CI,
  and the first differing case is reported as it is).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.gate("determinism")

HASH_SEEDS = ("0", "4242")
RUN_ID = "det"
DIFF_NAME = "determinism_diff"
REPORTS = (("court_report.json", "court_report"), ("eqs_report.json", "eqs_report"))


def _run_in_processes(workspaces: list[Any]) -> list[subprocess.CompletedProcess[str]]:
    """``treasure run`` in one child process per workspace, concurrently, each with its own
    PYTHONHASHSEED (so set and str-hash order differ between them)."""
    children = []
    for ws, hash_seed in zip(workspaces, HASH_SEEDS):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        command = [sys.executable, "-m", "treasure", "run", "--workspace", str(ws.root), "--run-id", RUN_ID,
                   "--quiet", "--json"]
        children.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, cwd=ws.root))
    results = []
    for child in children:
        out, err = child.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
    return results


def _log_bytes(ws: Any) -> bytes:
    return b"".join(part.read_bytes() for part in ws.log_parts(RUN_ID))


def _explain(label: str, comparison: Any) -> tuple[str, str]:
    summary = "\n".join(f"  {line}" for line in comparison.summary.splitlines())
    return f"{label}:\n{summary}", f"## {label}\n{comparison.full}"


def compare_runs(left: Any, right: Any, contracts: Any, labels: tuple[str, str]) -> tuple[list[str], list[str]]:
    """Differences between the evidence of run ``det`` in two workspaces: (short, full) texts."""
    from treasure.compare import compare_documents, compare_event_logs
    from treasure.eventlog import read_events
    from treasure.jsonio import read_json

    short: list[str] = []
    full: list[str] = []
    if _log_bytes(left) != _log_bytes(right):
        # prev/hash only echo a difference before them: leave them out so the diff shows the cause.
        comparison = compare_event_logs(read_events(left.log_parts(RUN_ID)), read_events(right.log_parts(RUN_ID)),
                                        drop=("prev", "hash"))
        if comparison:  # canonically equal, yet different bytes: not canonical JSON on one side
            short.append("event logs: same events, different bytes (a line is not RFC 8785 canonical)")
            full.append("## event logs\nsame events in canonical form, but the files' bytes differ")
        else:
            text, detail = _explain(f"event log ({labels[0]} -> {labels[1]})", comparison)
            short.append(text)
            full.append(detail)
    for filename, schema in REPORTS:
        a, b = read_json(left.run_reports(RUN_ID) / filename), read_json(right.run_reports(RUN_ID) / filename)
        comparison = compare_documents(a, b, volatile=contracts.volatile_paths(schema))
        if not comparison:
            text, detail = _explain(f"{filename} ({labels[0]} -> {labels[1]})", comparison)
            short.append(text)
            full.append(detail)
    return short, full


def _write_diff(ws: Any, full: list[str]) -> Path:
    from treasure.compare import Comparison, write_diff

    return write_diff(ws.evidence_dir / "diffs", DIFF_NAME, Comparison(False, "", "\n\n".join(full) + "\n"))


def test_two_processes_with_different_hash_seeds_give_identical_evidence(treasure_workspace, schema_validator,
                                                                         tmp_path_factory):
    from pytest_treasure.fresh_runs import copy_workspace

    ws = treasure_workspace
    copies = [copy_workspace(ws, tmp_path_factory.mktemp(f"determinism_{seed}") / "ws") for seed in HASH_SEEDS]
    results = _run_in_processes(copies)
    for result, hash_seed in zip(results, HASH_SEEDS):
        if result.returncode not in (0, 3):  # complete or halted: both are deterministic outcomes
            pytest.fail(f"determinism: `treasure run` (PYTHONHASHSEED={hash_seed}) exited {result.returncode}:\n"
                        f"{result.stderr.strip() or result.stdout.strip()}", pytrace=False)
    labels = tuple(f"PYTHONHASHSEED={seed}" for seed in HASH_SEEDS)
    short, full = compare_runs(copies[0], copies[1], schema_validator, labels)  # type: ignore[arg-type]
    if short:
        path = _write_diff(ws, full)
        pytest.fail(f"determinism: two runs of the same inputs differ: {short[0].splitlines()[0]}\n"
                    + "\n".join(short) + f"\nfull diff: {ws.relative(path)}\n"
                    "hint: look for wall clock, global random or set order in the strategy and engine "
                    "(`treasure scan`)", pytrace=False)
    from treasure.compare import Comparison, write_diff

    write_diff(ws.evidence_dir / "diffs", DIFF_NAME, Comparison(True, "", ""))  # empty: the runbook's proof
    print(f"identical evidence from {labels[0]} and {labels[1]}: "
          f"{len(_log_bytes(copies[0]))} bytes of events, court and eqs reports")


def test_code_has_no_unjustified_nondeterminism(treasure_workspace, gate_note):
    from treasure.determinism_scan import default_targets, package_dir, scan_paths

    ws = treasure_workspace
    targets = default_targets(ws.root)
    bases = [ws.root, package_dir().parent]
    result = scan_paths(targets, relative_to=bases)
    shown = ", ".join(_shown(t, bases) for t in targets)
    if result.allowed:
        gate_note(f"{result.allowed} justified case(s) allowed by '# treasure: allow-nondeterminism' comments")
    if result.findings:
        listing = "\n".join(f"  {finding.render()}" for finding in result.findings[:50])
        more = f"\n  ... and {len(result.findings) - 50} more" if len(result.findings) > 50 else ""
        pytest.fail(f"determinism: {len(result.findings)} nondeterministic construct(s) in {shown}: "
                    f"{result.findings[0].render()}\n{listing}{more}\n"
                    "hint: take time from ctx.now_ms and randomness from ctx.rng, iterate sorted(...); "
                    "justify a harmless case with '# treasure: allow-nondeterminism <reason>' on its line",
                    pytrace=False)
    print(f"scanned {len(result.files)} file(s) in {shown}: clean")


def _shown(path: Path, bases: list[Path]) -> str:
    for base in bases:
        if base == path or base in path.parents:
            return path.relative_to(base).as_posix() + ("/" if path.is_dir() else "")
    return str(path)


def _small_workspace(source: Any, dest: Path, csv: bytes) -> Any:
    """A workspace with the source's spec/ and truth/ (and its strategy file, if any) and a
    generated dataset pinned in its SSOT: cheaper to make than a full copy."""
    import hashlib
    import json
    import shutil

    from treasure.determinism_scan import strategy_file
    from treasure.workspace import Workspace

    for part in ("spec", "truth"):
        shutil.copytree(source.root / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    ws = Workspace(dest.resolve())
    ssot = json.loads(ws.ssot_path.read_bytes())
    ref = ssot.get("strategy", {}).get("name")
    code = strategy_file(ref, source.root) if isinstance(ref, str) and ref.partition(":")[0].endswith(".py") else None
    if code is not None and source.root in code.resolve().parents:
        target = ws.root / code.resolve().relative_to(source.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(code, target)
    (ws.root / "data").mkdir(exist_ok=True)
    (ws.root / "data" / "generated.csv").write_bytes(csv)
    ssot["dataset"].update(path="data/generated.csv", sha256=hashlib.sha256(csv).hexdigest())
    ws.ssot_path.write_text(json.dumps(ssot, indent=2))
    return ws


@settings(max_examples=3, derandomize=True, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data_seed=st.integers(0, 2**32 - 1), run_seed=st.integers(0, 2**32 - 1), n_bars=st.integers(150, 300),
       gaps=st.integers(0, 2), duplicates=st.integers(0, 2))
def test_property_same_inputs_same_evidence(treasure_workspace, schema_validator, data_seed, run_seed, n_bars,
                                             gaps, duplicates):
    from treasure.data import bars_to_csv, generate_bars
    from treasure.engine import RunRequest, run

    interval = _interval(treasure_workspace)
    csv = bars_to_csv(generate_bars(n_bars=n_bars, seed=data_seed, gaps=gaps, duplicates=duplicates,
                                    interval_ms=interval))
    with tempfile.TemporaryDirectory(prefix="treasure-determinism-") as tmp:
        workspaces = [_small_workspace(treasure_workspace, Path(tmp) / name, csv) for name in ("a", "b")]
        for ws in workspaces:
            run(RunRequest(workspace=ws, seed=run_seed, run_id=RUN_ID))
        short, full = compare_runs(workspaces[0], workspaces[1], schema_validator, ("first run", "second run"))
        if short:
            path = _write_diff(treasure_workspace, full)
            pytest.fail(f"determinism: two in-process runs differ (dataset seed {data_seed}, {n_bars} bars, "
                        f"{gaps} gap(s), {duplicates} duplicate(s), run seed {run_seed}):\n" + "\n".join(short)
                        + f"\nfull diff: {treasure_workspace.relative(path)}", pytrace=False)


def _interval(ws: Any) -> int:
    import json

    try:
        return int(json.loads(ws.ssot_path.read_bytes())["dataset"]["interval_ms"])
    except (OSError, ValueError, KeyError, TypeError):
        return 300_000
