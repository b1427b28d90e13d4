"""Fuzzing the input boundaries: datasets, SSOTs, event logs and recorded live sessions.

The property is the same everywhere: whatever the bytes, the reader either accepts them (and then
what it returns satisfies the format's invariants) or raises a coded ``TreasureError``; any other
exception is a bug. Example counts come from the active Hypothesis profile (``ci`` a few hundred
in total, ``hunt`` >= 10,000 per target: ``HYPOTHESIS_PROFILE=hunt pytest tests/test_fuzz.py``).
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from treasure.config import config_from_dict, load_config, load_schema
from treasure.contracts import Contracts
from treasure.data import load_dataset
from treasure.engine import RunRequest, prepare_run, run
from treasure.errors import EventLogError, TreasureError
from treasure.eventlog import read_events, verify_log
from treasure.workspace import Workspace, init_workspace

CORPUS = Path(__file__).resolve().parent / "corpus"
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_TMP = Path(tempfile.mkdtemp(prefix="treasure-fuzz-"))
atexit.register(shutil.rmtree, _TMP, True)  # every input file is unlinked after use; this is the folder
_counter = iter(range(10**12))


def _scratch(data: bytes, suffix: str) -> Path:
    path = _TMP / f"in{next(_counter)}{suffix}"
    path.write_bytes(data)
    return path


# -- datasets --------------------------------------------------------------------------------------

HEADER = b"t_ms,open,high,low,close,volume"
TOKENS = [b"0", b"1", b"100", b"100.5", b"-1", b"-0", b"+1", b"1e3", b"1E-3", b".5", b"5.", b"1e308", b"1e309",
          b"1e-320", b"nan", b"NaN", b"inf", b"-inf", b"Infinity", b"", b" 1", b"1 ", b"0x10", b"1_0", b"1,5",
          b"\xef\xbc\x91", b"\xd9\xa3", b"99999999999999999999", b"1767225600000", b"1767225900000",
          b"9223372036854775807", b"-9223372036854775808", b"1.7976931348623157e308", b"\x00", b"\xff",
          b'"1"', b"true", b"\t", b"1e", b"e1", b"--1", b"1..0"]
SEPARATORS = [b",", b",", b",", b";", b"\t", b", "]
ENDINGS = [b"\n", b"\n", b"\n", b"\r\n", b"\r", b""]


@st.composite
def csv_like(draw) -> bytes:
    """Text shaped like a bars CSV, built from tokens that stress every parser branch."""
    header = draw(st.sampled_from([HEADER, HEADER, HEADER.upper(), b"t_ms,open,high,low,close", b"",
                                   b"\xef\xbb\xbf" + HEADER, HEADER + b",extra"]))
    ending = draw(st.sampled_from(ENDINGS[:4]))
    n = draw(st.integers(0, 12))
    lines = [header]
    t = 1_767_225_600_000
    for _ in range(n):
        if draw(st.booleans()):
            t += draw(st.sampled_from([300_000, 300_000, 0, -300_000, 600_000]))
            price = draw(st.floats(0.01, 1e6, allow_nan=False))
            spread = draw(st.floats(0, 10, allow_nan=False))
            row = [str(t).encode(), repr(price).encode(), repr(price + spread).encode(),
                   repr(max(price - spread, 0.0)).encode(), repr(price).encode(),
                   repr(draw(st.floats(0, 1e6, allow_nan=False))).encode()]
            if draw(st.integers(0, 4)) == 0:
                row[draw(st.integers(0, 5))] = draw(st.sampled_from(TOKENS))
        else:
            row = draw(st.lists(st.sampled_from(TOKENS), min_size=0, max_size=8))
        lines.append(draw(st.sampled_from(SEPARATORS)).join(row))
    return ending.join(lines) + draw(st.sampled_from(ENDINGS))


@st.composite
def mutated(draw, base: bytes) -> bytes:
    """A valid file with a few bytes inserted, deleted or replaced."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        blob = draw(st.binary(min_size=1, max_size=8))
        if op == "insert":
            data[pos:pos] = blob
        elif op == "delete":
            del data[pos:pos + len(blob)]
        else:
            data[pos:pos + len(blob)] = blob
    return bytes(data)


GOOD_CSV = (CORPUS / "datasets" / "ok.csv").read_bytes()


def _check_dataset(data: bytes) -> None:
    path = _scratch(data, ".csv")
    try:
        dataset = load_dataset(path, interval_ms=300_000)
    except TreasureError as exc:
        assert exc.code.startswith("DATA_"), exc.code
        return
    finally:
        path.unlink()
    bars = dataset.bars
    assert len(bars) >= 1 and dataset.sha256 == hashlib.sha256(data).hexdigest()
    assert np.all(np.diff(bars.t_ms) >= 0)
    for column in (bars.open, bars.high, bars.low, bars.close, bars.volume):
        assert np.all(np.isfinite(column))
    assert np.all(bars.low > 0) and np.all(bars.volume >= 0)
    assert np.all(bars.high >= np.maximum(bars.open, bars.close))
    assert np.all(bars.low <= np.minimum(bars.open, bars.close))


@FUZZ
@given(st.one_of(st.binary(max_size=600), csv_like(), mutated(GOOD_CSV)))
@example(b"\xef\xbb\xbf")
@example(HEADER + b"\n1,1,1,1,1,1")
def test_fuzz_dataset_loader(data):
    _check_dataset(data)


# -- SSOTs -----------------------------------------------------------------------------------------

VALID_SSOT = json.loads((CORPUS / "ssot" / "valid.json").read_text())
_TEXT = st.text(max_size=20)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), _TEXT)
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                               st.dictionaries(_TEXT, inner, max_size=4)),
                           max_leaves=12)
STRATEGY_NAMES = st.sampled_from(["sma_crossover", "mean_reversion", "buy_and_hold", "nope", "", ":", "x:y",
                                  "missing.py:C", "../../outside.py:C", "treasure.strategy:Strategy",
                                  "treasure.errors:TreasureError", "json:JSONDecoder"])


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, prefix + (key,))
    return out


@st.composite
def ssot_mutations(draw) -> Any:
    """The valid SSOT with a few subtrees replaced, deleted or added."""
    doc = copy.deepcopy(VALID_SSOT)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        where = draw(st.sampled_from(paths))
        if not where:
            return draw(JSON_VALUES) if draw(st.integers(0, 9)) == 0 else doc
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        if not isinstance(parent, dict):
            continue
        op = draw(st.sampled_from(["replace", "delete", "add", "strategy"]))
        if op == "replace":
            parent[where[-1]] = draw(JSON_VALUES)
        elif op == "delete":
            parent.pop(where[-1], None)
        elif op == "add":
            parent[draw(_TEXT.filter(bool))] = draw(JSON_VALUES)
        elif isinstance(doc.get("strategy"), dict):
            doc["strategy"]["name"] = draw(STRATEGY_NAMES)
            doc["strategy"]["params"] = draw(st.dictionaries(st.sampled_from(["fast", "slow", "order_usd",
                                                                               "window", "z", "x"]),
                                                              JSON_LEAVES, max_size=3))
    return doc


_SCHEMA = load_schema(Path(__file__).resolve().parents[1] / "spec" / "config.schema.json")


@FUZZ
@given(ssot_mutations())
def test_fuzz_ssot_documents(doc):
    try:
        config = config_from_dict(doc, _SCHEMA, source="fuzz.json")
    except TreasureError as exc:
        assert exc.code == "SSOT_SCHEMA" and exc.field, exc
        return
    assert config.seed >= 0 and config.starting_cash > 0


@FUZZ
@given(st.one_of(st.binary(max_size=400), mutated(json.dumps(VALID_SSOT).encode()),
                 ssot_mutations().map(lambda d: json.dumps(d).encode())))
def test_fuzz_ssot_files(data):
    path = _scratch(data, ".json")
    try:
        load_config(path, Path(__file__).resolve().parents[1] / "spec" / "config.schema.json")
    except TreasureError as exc:
        assert exc.code in ("SSOT_JSON", "SSOT_SCHEMA"), exc
    finally:
        path.unlink()


@pytest.fixture(scope="module")
def run_workspace(tmp_path_factory) -> Workspace:
    ws = init_workspace(tmp_path_factory.mktemp("fuzzrun") / "ws")
    (ws.root / "fixtures" / "data" / "corpus_ok.csv").write_bytes(GOOD_CSV)
    ws.ssot_path.write_text(json.dumps(VALID_SSOT))
    return ws


@FUZZ
@given(doc=ssot_mutations())
def test_fuzz_prepare_run(run_workspace, doc):
    """The whole pre-run check (SSOT, dataset path and pin, strategy and its params) on mutated
    SSOTs: a coded refusal or a prepared run, nothing else, and nothing written."""
    path = _scratch(orjson.dumps(doc) if _jsonable(doc) else b"{", ".json")
    try:
        prepare_run(RunRequest(run_workspace, ssot_path=path, run_id="fuzz"))
    except TreasureError as exc:
        assert exc.code and exc.message
    finally:
        path.unlink()
    assert not run_workspace.event_log("fuzz").exists()


def _jsonable(doc: Any) -> bool:
    try:
        orjson.dumps(doc)
        return True
    except TypeError:
        return False


# -- event logs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_log(run_workspace) -> tuple[bytes, Contracts]:
    result = run(RunRequest(run_workspace, run_id="base"))
    assert result.status == "complete"
    return result.event_log.read_bytes(), Contracts(run_workspace.truth_dir)


@FUZZ
@given(data=st.data())
def test_fuzz_event_log_single_byte_change_is_named(valid_log, data):
    """Changing any one byte of a log is caught, and the error names the line holding that byte."""
    log, contracts = valid_log
    pos = data.draw(st.integers(0, len(log) - 1), label="pos")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != log[pos]), label="byte")
    broken = log[:pos] + bytes([value]) + log[pos + 1:]
    path = _scratch(broken, ".jsonl")
    try:
        with pytest.raises(EventLogError) as exc:
            verify_log([path], contracts)
        line = log.count(b"\n", 0, pos) + 1
        assert exc.value.line == line, (pos, value, exc.value)
        if exc.value.code == "EVENTS_TRUNCATED":  # the tolerant reader drops exactly the torn line
            assert sum(1 for _ in read_events([path])) == line - 1
    finally:
        path.unlink()


@st.composite
def log_edits(draw, log: bytes) -> bytes:
    lines = log.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "junk", "splice"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif op == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "junk":
            lines.insert(i, draw(st.binary(max_size=50)) + b"\n")
        else:
            lines[i] = draw(mutated(lines[i]))
    return b"".join(lines)


@FUZZ
@given(data=st.data())
def test_fuzz_event_log_reader_and_verifier(valid_log, data):
    log, contracts = valid_log
    broken = data.draw(st.one_of(st.binary(max_size=300), log_edits(log)), label="log")
    path = _scratch(broken, ".jsonl")
    try:
        try:
            summary = verify_log([path], contracts)
        except EventLogError as exc:
            assert exc.code.startswith("EVENTS_"), exc
            assert exc.line is None or exc.line >= 1
        else:  # accepted: only a line-aligned prefix of the real log can verify
            assert log.startswith(broken) and summary.events == broken.count(b"\n")
        try:
            events = list(read_events([path]))
        except EventLogError as exc:
            assert exc.code in ("EVENTS_JSON", "EVENTS_TRUNCATED")
        else:
            assert all(isinstance(e, (dict, list, str, int, float, bool, type(None))) for e in events)
    finally:
        path.unlink()


# -- recorded live sessions (recon) --------------------------------------------------------------------

VALID_LIVE = (CORPUS / "live" / "valid.jsonl").read_bytes()


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(VALID_LIVE), log_edits(VALID_LIVE)))
def test_fuzz_live_session_reader(data):
    live = pytest.importorskip("treasure.recon.venue_sessions")
    try:
        session = live.parse_live(data, path="fuzz.jsonl", time_window_ms=600_000, strict=True)
    except TreasureError as exc:
        assert exc.code.startswith("LIVE_") and exc.code in live.LIVE_HINTS, exc
    else:
        assert session.messages and not session.problems
    lenient = live.parse_live(data, path="fuzz.jsonl", time_window_ms=600_000, strict=False)
    assert all(p.code.startswith("LIVE_") and p.line >= 1 for p in lenient.problems)
    for message in lenient.messages:
        assert message.type in ("ack", "fill", "cancel", "reject")
        for value in (message.qty, message.price, message.fee):
            assert value is None or math.isfinite(value)


# -- the approval lock and fault specs (this issue's own readers) -------------------------------------


@pytest.fixture(scope="module")
def approved_workspace(tmp_path_factory) -> Workspace:
    from treasure.approval import approve

    ws = init_workspace(tmp_path_factory.mktemp("fuzzlock") / "ws")
    (ws.root / "fixtures" / "data" / "corpus_ok.csv").write_bytes(GOOD_CSV)
    ws.ssot_path.write_text(json.dumps(VALID_SSOT))
    approve(ws)
    return ws


@FUZZ
@given(data=st.data())
def test_fuzz_lock_file(approved_workspace, data):
    """A hand-edited or corrupted spec/ssot.lock is a LOCK_INVALID finding, never an exception."""
    from treasure.approval import LOCK_NAME, check_tamper

    path = approved_workspace.spec_dir / LOCK_NAME
    good = path.read_bytes()
    doc = json.loads(good)
    broken = data.draw(st.one_of(
        st.binary(max_size=200), mutated(good),
        st.builds(lambda files: json.dumps(dict(doc, files=files)).encode(),
                  st.dictionaries(st.sampled_from(["spec/ssot.json", "../x.json", "/etc/passwd", "truth/a.json",
                                                   "spec/\x00.json", "spec/x.json"]), JSON_LEAVES, max_size=3)),
        st.builds(lambda ds: json.dumps(dict(doc, dataset=ds)).encode(), JSON_VALUES)), label="lock")
    try:
        path.write_bytes(broken)
        findings = check_tamper(approved_workspace)
    finally:
        path.write_bytes(good)
    assert all(f.code.startswith(("LOCK_", "TAMPER_")) and f.path and f.message for f in findings)
    if not findings:  # accepted: only the free-text note (or formatting) may differ from the approval
        strip = lambda d: {k: v for k, v in d.items() if k != "note"}  # noqa: E731
        assert strip(json.loads(broken)) == strip(doc)


@FUZZ
@given(st.one_of(st.text(max_size=60),
                 st.lists(st.tuples(st.sampled_from(["kill", "eio", "enospc", "sleep=0", "crash", "x", ""]),
                                    st.sampled_from(["bar", "replace", "db_commit", "nowhere", ""]),
                                    st.sampled_from(["", ":0", ":1", ":7+", ":x", ":-1", "+"])),
                          max_size=4).map(lambda rules: ";".join(f"{a}@{p}{n}" for a, p, n in rules))))
def test_fuzz_fault_spec(spec):
    from treasure.faults import FaultPlan

    try:
        plan = FaultPlan.parse(spec)
    except TreasureError as exc:
        assert exc.code == "FAULTS_SPEC"
    else:
        assert FaultPlan.parse(plan.spec).spec == plan.spec
