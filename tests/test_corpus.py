"""The bad-input corpus (tests/corpus/manifest.json) fed through the CLI, entry by entry.

Each refused input must exit non-zero with its stable ``error[CODE]`` (naming the line or field
where the manifest says), without a traceback, and leave no evidence behind (no new file under
logs/ or reports/, no run in a DB). Entries marked ``accepted`` are inputs the formats allow on
purpose (a UTF-8 BOM, CRLF) and must run cleanly. ``python tests/corpus/generate.py`` rewrites the
corpus.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from treasure.contracts import Contracts
from treasure.engine import RunRequest, run
from treasure.errors import EventLogError
from treasure.eventlog import verify_log
from treasure.workspace import Workspace, init_workspace

CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
ENTRIES = MANIFEST["entries"]
RUN_DATASET = MANIFEST["run_dataset"]


def entries(kind: str) -> list:
    """Parameters for one kind; entries with a reported ``gap`` are expected to fail (strictly)."""
    return [pytest.param(e, id=e["id"], marks=[pytest.mark.xfail(strict=True, reason=e["gap"])] if "gap" in e
                         else []) for e in ENTRIES if e["kind"] == kind]


def evidence(ws: Workspace) -> list[str]:
    return sorted(ws.relative(p) for d in (ws.logs_dir, ws.reports_dir) if d.is_dir() for p in d.rglob("*"))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Workspace:
    """A workspace pinning the corpus dataset, with one complete run ``corpus`` (for recon)."""
    ws = init_workspace(tmp_path_factory.mktemp("corpus") / "ws")
    shutil.copy(CORPUS / RUN_DATASET["file"], ws.root / RUN_DATASET["path"])
    shutil.copy(CORPUS / "ssot" / "valid.json", ws.ssot_path)
    result = run(RunRequest(ws, run_id="corpus"))
    assert result.status == "complete", result.error
    return ws


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    copy = Workspace(tmp_path / "ws")
    shutil.copytree(template.root, copy.root)
    return copy


def assert_outcome(entry: dict, code: int, out: str, err: str, before: list[str], after: list[str]) -> None:
    text = out + err
    assert "Traceback" not in text and "internal error" not in text, text
    if entry["expect"] == "accepted":
        assert code == 0, f"{entry['id']} should be accepted ({entry['why']}):\n{text}"
        return
    assert code == 2, f"{entry['id']}: exit {code}\n{text}"
    assert f"error[{entry['expect']}]" in err, f"{entry['id']}: expected {entry['expect']}:\n{text}"
    if "line" in entry:
        assert re.search(rf"(:|line ){entry['line']}\b", err), f"{entry['id']}: expected line {entry['line']}:\n{err}"
    if entry.get("field"):
        assert f"field {entry['field']}" in err, err
    assert after == before, f"{entry['id']} left evidence behind: {sorted(set(after) - set(before))}"


# -- datasets ---------------------------------------------------------------------------------------


def use_dataset(ws: Workspace, entry: dict) -> None:
    source = CORPUS / entry["file"]
    target = ws.root / "fixtures" / "data" / "corpus_input.csv"
    if source.is_dir():
        shutil.copytree(source, target)
        sha = "0" * 64
    elif source.exists():
        shutil.copy(source, target)
        sha = hashlib.sha256(source.read_bytes()).hexdigest()
    else:
        sha = "0" * 64
    doc = json.loads(ws.ssot_path.read_text())
    doc["dataset"].update(path="fixtures/data/corpus_input.csv", sha256=sha)
    ws.ssot_path.write_text(json.dumps(doc, indent=2))


@pytest.mark.parametrize("entry", entries("dataset"))
def test_dataset(entry, ws, cli):
    use_dataset(ws, entry)
    before = evidence(ws)
    code, out, err = cli("run", "--workspace", ws.root, "--run-id", "c", "--quiet")
    after = evidence(ws)
    assert_outcome(entry, code, out, err, before, after)


# -- SSOTs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["spec", "--ssot"])
@pytest.mark.parametrize("entry", entries("ssot"))
def test_ssot(entry, via, ws, cli):
    source = CORPUS / entry["file"]
    args = ["run", "--workspace", ws.root, "--run-id", "c", "--quiet"]
    if via == "spec":
        shutil.copy(source, ws.ssot_path)
    else:
        args += ["--ssot", source]
    before = evidence(ws)
    code, out, err = cli(*args)
    assert_outcome(entry, code, out, err, before, evidence(ws))


# -- event logs ---------------------------------------------------------------------------------------


def event_log_file(entry: dict, tmp_path: Path) -> Path:
    if entry["file"] is not None:
        return CORPUS / entry["file"]
    assert entry["id"] == "eventlog/huge_line"
    lines = (CORPUS / "events" / "run_valid.jsonl").read_bytes().splitlines(keepends=True)
    path = tmp_path / "run_huge_line.jsonl"
    path.write_bytes(b"".join(lines[:2]) + b"x" * (10 * 1024 * 1024) + b"\n" + b"".join(lines[2:]))
    return path


@pytest.mark.parametrize("entry", entries("eventlog"))
def test_event_log_verifier(entry, template, tmp_path):
    path = event_log_file(entry, tmp_path)
    if entry["expect"] == "accepted":
        assert verify_log([path], Contracts(template.truth_dir)).events > 0
        return
    with pytest.raises(EventLogError) as exc:
        verify_log([path], Contracts(template.truth_dir))
    assert exc.value.code == entry["expect"], str(exc.value)
    assert exc.value.line == entry.get("line"), str(exc.value)


@pytest.mark.parametrize("entry", entries("eventlog"))
def test_event_log_ingest(entry, ws, cli, tmp_path):
    """``treasure db ingest`` verifies before storing: a refused log stores nothing."""
    pytest.importorskip("treasure.store")
    path = event_log_file(entry, tmp_path)
    db = ws.data_dir / "ingest.db"
    before = evidence(ws)
    code, out, err = cli("db", "ingest", path, "--no-reports", "--db", db, "--workspace", ws.root)
    assert_outcome(entry, code, out, err, before, evidence(ws))
    if entry["expect"] != "accepted" and db.exists():
        code, out, _ = cli("db", "runs", "--db", db, "--workspace", ws.root, "--json")
        assert code == 0 and json.loads(out)["runs"] == []


# -- recorded live sessions ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", entries("live"))
def test_live_session(entry, ws, cli):
    pytest.importorskip("treasure.recon")
    before = evidence(ws)
    code, out, err = cli("recon", "corpus", "--live", CORPUS / entry["file"], "--workspace", ws.root)
    after = evidence(ws)
    if entry["expect"] == "accepted":
        assert code == 0 and "CLEAN" in out, out + err
        return
    assert_outcome(entry, code, out, err, before, after)


# -- the corpus itself ----------------------------------------------------------------------------------


def test_manifest_lists_every_file_and_every_file_exists():
    listed = {e["file"] for e in ENTRIES if e["file"]}
    on_disk = {p.relative_to(CORPUS).as_posix() for sub in ("datasets", "ssot", "events", "live")
               for p in (CORPUS / sub).iterdir()}
    missing = {f for f in listed if not (CORPUS / f).exists()} - {"datasets/does_not_exist.csv"}
    assert not missing
    assert on_disk <= listed, on_disk - listed
    assert len({e["id"] for e in ENTRIES}) == len(ENTRIES)
    assert MANIFEST["counts"] == {k: sum(e["kind"] == k for e in ENTRIES) for k in MANIFEST["counts"]}
    refused = sum(e["expect"] != "accepted" for e in ENTRIES)
    assert refused >= 80, refused


SMOKE = ["dataset/binary", "ssot/nesting_bomb", "eventlog/broken_chain", "live/torn_tail"]


@pytest.mark.parametrize("ident", SMOKE)
def test_refusals_in_a_real_process_print_no_traceback(ident, ws, tmp_path):
    entry = next(e for e in ENTRIES if e["id"] == ident)
    args = {"dataset": ["run", "--quiet", "--run-id", "c"],
            "ssot": ["run", "--quiet", "--run-id", "c", "--ssot", str(CORPUS / entry["file"])],
            "eventlog": ["db", "ingest", str(CORPUS / entry["file"]), "--no-reports", "--db",
                         str(ws.data_dir / "x.db")],
            "live": ["recon", "corpus", "--live", str(CORPUS / entry["file"])]}[entry["kind"]]
    if entry["kind"] == "dataset":
        use_dataset(ws, entry)
    before = evidence(ws)
    done = subprocess.run([sys.executable, "-m", "treasure", *args, "--workspace", str(ws.root)],
                          capture_output=True, text=True, timeout=120, cwd=ws.root)
    assert done.returncode == 2, done.stderr
    assert f"error[{entry['expect']}]" in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert evidence(ws) == before


def test_cli_seed_beyond_2p53_is_a_coded_refusal(ws, cli):
    code, out, err = cli("run", "--workspace", ws.root, "--run-id", "s", "--seed", 2**60, "--quiet")
    assert code == 2 and "error[CLI_VALUE]: argument --seed: must be in [0, 2**53)" in err  # checked at parse time
