"""Tamper detection: the approval lock (spec/ssot.lock) and the event log's hash chain.

``check_tamper`` must name every changed SSOT, schema and dataset since ``treasure ssot approve``;
the event verifier must name the first broken line of a log edited, cut or reordered anywhere.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import orjson
import pytest

from treasure.contracts import Contracts
from treasure.data import bars_to_csv, generate_bars
from treasure.engine import RunRequest, run
from treasure.errors import ConfigError, DataError, EventLogError
from treasure.events import seal
from treasure.eventlog import verify_log
from treasure.approval import LOCK_NAME, approve, check_tamper, compute_lock, read_lock
from treasure.workspace import Workspace, init_workspace, pin_dataset


def pinned_workspace(root: Path, *, n_bars: int = 400, seed: int = 9) -> Workspace:
    ws = init_workspace(root)
    pin_dataset(ws, bars_to_csv(generate_bars(n_bars=n_bars, seed=seed)), "fixtures/data/tamper.csv",
                interval_ms=300_000)
    return ws


@pytest.fixture
def approved(tmp_path) -> Workspace:
    ws = pinned_workspace(tmp_path / "ws")
    approve(ws)
    assert check_tamper(ws) == [] and check_tamper(str(ws.root)) == []  # a Workspace or a path
    return ws


def codes(ws) -> list[tuple[str, str]]:
    return [(f.code, f.path) for f in check_tamper(ws)]


# -- the lock ----------------------------------------------------------------------------------------


def test_lock_covers_ssot_every_schema_and_the_dataset(approved):
    lock = read_lock(approved)
    truth = sorted(p.relative_to(approved.root).as_posix() for p in approved.truth_dir.rglob("*.json"))
    assert set(truth) <= set(lock.files)
    assert {"spec/ssot.json", "spec/config.schema.json"} <= set(lock.files)
    assert lock.dataset_path == "fixtures/data/tamper.csv"
    raw = (approved.root / "fixtures/data/tamper.csv").read_bytes()
    assert lock.dataset_sha256 == hashlib.sha256(raw).hexdigest()


def test_approve_is_idempotent_and_deterministic(approved, tmp_path):
    path = approved.spec_dir / LOCK_NAME
    before = path.read_bytes()
    result = approve(approved)
    assert path.read_bytes() == before
    assert (result.added, result.changed, result.removed) == ([], [], [])
    twin = pinned_workspace(tmp_path / "twin")
    approve(twin)
    assert (twin.spec_dir / LOCK_NAME).read_bytes() == before  # no clock, no absolute paths


def test_changed_ssot_is_detected(approved):
    doc = json.loads(approved.ssot_path.read_text())
    doc["risk"]["daily_loss_limit_usd"] = 1e9
    approved.ssot_path.write_text(json.dumps(doc, indent=2))
    [finding] = check_tamper(approved)
    assert (finding.code, finding.path) == ("TAMPER_SSOT", "spec/ssot.json")
    assert "changed since approval" in finding.message


def test_whitespace_only_change_to_the_ssot_is_still_a_change(approved):
    approved.ssot_path.write_bytes(approved.ssot_path.read_bytes() + b"\n")
    assert codes(approved) == [("TAMPER_SSOT", "spec/ssot.json")]


def test_changed_truth_schema_is_detected(approved):
    schema_path = approved.truth_dir / "events" / "order_filled.schema.json"
    schema = json.loads(schema_path.read_text())
    schema.pop("required", None)  # a loosened contract
    schema_path.write_text(json.dumps(schema))
    assert codes(approved) == [("TAMPER_SCHEMA", "truth/events/order_filled.schema.json")]


def test_changed_config_schema_is_detected(approved):
    path = approved.config_schema_path
    path.write_text(path.read_text().replace('"maximum": 1000000000000.0', '"maximum": 1e300', 1))
    assert codes(approved) == [("TAMPER_SCHEMA", "spec/config.schema.json")]


def test_deleted_and_added_schemas_are_detected(approved):
    (approved.truth_dir / "court_report.schema.json").unlink()
    (approved.truth_dir / "events" / "sneaky.schema.json").write_text("{}")
    assert codes(approved) == [("TAMPER_MISSING", "truth/court_report.schema.json"),
                               ("TAMPER_UNAPPROVED", "truth/events/sneaky.schema.json")]


def test_changed_or_missing_dataset_is_detected(approved):
    dataset = approved.root / "fixtures/data/tamper.csv"
    raw = dataset.read_bytes()
    dataset.write_bytes(raw.replace(b"\n", b"\r\n"))  # same bars, different bytes
    [finding] = check_tamper(approved)
    assert (finding.code, finding.path) == ("TAMPER_DATASET", "fixtures/data/tamper.csv")
    dataset.unlink()
    [finding] = check_tamper(approved)
    assert finding.code == "TAMPER_DATASET" and "missing" in finding.message


def test_every_change_is_listed_at_once(approved):
    approved.ssot_path.write_bytes(approved.ssot_path.read_bytes() + b" ")
    (approved.truth_dir / "event.schema.json").write_text("{}")
    (approved.root / "fixtures/data/tamper.csv").write_bytes(b"x")
    assert [c for c, _ in codes(approved)] == ["TAMPER_DATASET", "TAMPER_SSOT", "TAMPER_SCHEMA"]


def test_missing_or_malformed_lock_is_a_finding_not_a_crash(approved):
    lock = approved.spec_dir / LOCK_NAME
    good = lock.read_bytes()
    lock.unlink()
    assert codes(approved) == [("LOCK_MISSING", "spec/ssot.lock")]
    for bad in (b"{", b"[]", b'{"lock_version": 1}', good.replace(b'"spec/ssot.json"', b'"../escape.json"'),
                good.replace(b'"path": "fixtures', b'"path": "../../fixtures')):
        lock.write_bytes(bad)
        assert [c for c, _ in codes(approved)] == ["LOCK_INVALID"], bad[:40]


def test_approve_refuses_states_that_must_not_be_approved(approved):
    doc = json.loads(approved.ssot_path.read_text())
    doc["risk"]["daily_loss_limit_usd"] = -5
    approved.ssot_path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as exc:
        approve(approved)
    assert exc.value.code == "SSOT_SCHEMA" and exc.value.field == "risk.daily_loss_limit_usd"
    doc["risk"]["daily_loss_limit_usd"] = 5
    approved.ssot_path.write_text(json.dumps(doc))
    (approved.root / "fixtures/data/tamper.csv").write_bytes(b"t_ms,open,high,low,close,volume\n")
    with pytest.raises(DataError) as exc:
        compute_lock(approved)
    assert exc.value.code == "DATA_SHA_MISMATCH"
    assert check_tamper(approved)  # the refused approval left the old lock in place


def test_approve_refuses_an_invalid_schema(approved):
    (approved.truth_dir / "events" / "run_end.schema.json").write_text('{"type": 12}')
    with pytest.raises(ConfigError) as exc:
        approve(approved)
    assert exc.value.code == "SCHEMA_INVALID"


def test_cli_check_passes_clean_and_fails_tampered(approved, cli):
    code, out, err = cli("ssot", "check", "--workspace", approved.root)
    assert code == 0 and "clean" in out
    approved.ssot_path.write_bytes(approved.ssot_path.read_bytes() + b" ")
    code, out, err = cli("ssot", "check", "--workspace", approved.root)
    assert code == 2
    assert "error[TAMPER_SSOT]: spec/ssot.json: changed since approval" in out
    assert "hint[TAMPER_SSOT]" in out and "Traceback" not in out + err
    code, out, _ = cli("ssot", "check", "--workspace", approved.root, "--json")
    doc = json.loads(out)
    assert code == 2 and doc["clean"] is False and doc["findings"][0]["code"] == "TAMPER_SSOT"
    code, out, _ = cli("ssot", "approve", "--workspace", approved.root)
    assert code == 0 and "~ spec/ssot.json" in out
    assert cli("ssot", "check", "--workspace", approved.root)[0] == 0


def test_cli_approve_refusal_is_coded(approved, cli):
    approved.ssot_path.write_text("{ torn")
    code, out, err = cli("ssot", "approve", "--workspace", approved.root)
    assert code == 2 and "error[SSOT_JSON]" in err and "Traceback" not in err


def test_repo_lock_exists_and_parses():
    """The repo workspace ships an approval lock (re-run `treasure ssot approve` after changes)."""
    root = Path(__file__).resolve().parents[2]
    lock = read_lock(Workspace.at(root))
    assert "spec/ssot.json" in lock.files


# -- the event log's hash chain ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def log_lines(tmp_path_factory) -> tuple[list[bytes], Contracts, dict]:
    ws = pinned_workspace(tmp_path_factory.mktemp("chain") / "ws", n_bars=300)
    result = run(RunRequest(ws, run_id="t"))
    lines = result.event_log.read_bytes().splitlines(keepends=True)
    assert len(lines) > 20
    return lines, Contracts(ws.truth_dir), result.court


def _verify(tmp_path, lines, contracts):
    path = tmp_path / "run_t.jsonl"
    path.write_bytes(b"".join(lines))
    return verify_log([path], contracts)


def _edit(line: bytes) -> bytes:
    event = orjson.loads(line)
    event["payload"]["tampered"] = True  # an extra member; hash left as it was
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS) + b"\n"


def _reseal(line: bytes, payload_change) -> bytes:
    event = orjson.loads(line)
    event.pop("hash")
    payload_change(event["payload"])
    return seal(event)[1] + b"\n"


def test_every_edited_line_is_named(log_lines, tmp_path):
    lines, contracts, _ = log_lines
    for k in range(len(lines)):
        broken = lines[:k] + [_edit(lines[k])] + lines[k + 1:]
        with pytest.raises(EventLogError) as exc:
            _verify(tmp_path, broken, contracts)
        assert exc.value.line == k + 1, (k, exc.value)


def test_every_deleted_line_is_named(log_lines, tmp_path):
    lines, contracts, court = log_lines
    for k in range(len(lines) - 1):
        with pytest.raises(EventLogError) as exc:
            _verify(tmp_path, lines[:k] + lines[k + 1:], contracts)
        assert exc.value.line == k + 1 and exc.value.code in ("EVENTS_SEQ", "EVENTS_CHAIN"), (k, exc.value)
    # dropping the LAST line leaves a valid prefix: only the court report's anchor shows it
    summary = _verify(tmp_path, lines[:-1], contracts)
    assert summary.events == court["events"]["total"] - 1
    assert summary.last_hash != court["events"]["last_hash"]


def test_every_swapped_pair_is_named(log_lines, tmp_path):
    lines, contracts, _ = log_lines
    for k in range(len(lines) - 1):
        swapped = lines[:k] + [lines[k + 1], lines[k]] + lines[k + 2:]
        with pytest.raises(EventLogError) as exc:
            _verify(tmp_path, swapped, contracts)
        assert exc.value.line == k + 1, (k, exc.value)


def test_resealed_edit_breaks_the_next_link(log_lines, tmp_path):
    """An editor who recomputes the edited line's hash still breaks the next line's ``prev``."""
    lines, contracts, _ = log_lines
    k = next(i for i, line in enumerate(lines[:-1]) if orjson.loads(line)["event_type"] == "order_placed")
    assert _reseal(lines[k], lambda p: None) == lines[k]  # resealing reproduces a line byte for byte
    forged = _reseal(lines[k], lambda p: p.update(qty=p["qty"] * 2))
    with pytest.raises(EventLogError) as exc:
        _verify(tmp_path, lines[:k] + [forged] + lines[k + 1:], contracts)
    assert (exc.value.code, exc.value.line, exc.value.field) == ("EVENTS_CHAIN", k + 2, "prev")


def test_resealing_the_whole_suffix_is_caught_only_by_the_court_anchor(log_lines, tmp_path):
    lines, contracts, court = log_lines
    events = [orjson.loads(line) for line in lines]
    k = next(i for i, e in enumerate(events) if e["event_type"] == "order_placed" and i > 0)
    forged = lines[:k]
    prev = events[k - 1]["hash"]
    for event in events[k:]:
        event.pop("hash")
        event["prev"] = prev
        if event is events[k]:
            event["payload"]["qty"] *= 2
        prev, line = seal(event)
        forged.append(line + b"\n")
    summary = _verify(tmp_path, forged, contracts)  # the chain alone is self-consistent ...
    assert summary.events == court["events"]["total"]
    assert summary.last_hash != court["events"]["last_hash"]  # ... the court report's anchor is not
