"""`treasure events`: the runbook's grep/jq lines, streaming over parts and archives."""

from __future__ import annotations

import json

import orjson
import pytest

from helpers.ops_support import clean_ws, json_out, make_ws, run_cli, templates, write_log  # noqa: F401
from treasure.errors import EventLogError
from treasure.ops import OpsError
from treasure.ops.archive import pack
from treasure.ops.query import EventFilter, iter_events, parse_time, parse_where
from treasure.ops.rotate import rotate


def lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def all_events(ws, run_id="clean"):
    return [orjson.loads(line) for p in ws.log_parts(run_id) for line in p.read_bytes().splitlines()]


def test_level_filter_matches_grep(clean_ws, capsys):
    events = all_events(clean_ws)
    expected = [e["seq"] for e in events if e["level"] in ("WARN", "ERROR", "CRITICAL")]
    assert run_cli(clean_ws, "events", "clean", "--level", "WARN,ERROR", "--level", "CRITICAL", "--raw") == 0
    got = [orjson.loads(line)["seq"] for line in lines(capsys)]
    assert got == expected and got  # the default data has gaps and a duplicate (WARN)


def test_raw_lines_are_byte_identical(clean_ws, capsys):
    raw = clean_ws.event_log("clean").read_bytes().splitlines()
    assert run_cli(clean_ws, "events", "clean", "--raw", "--head", "5") == 0
    assert capsys.readouterr().out.encode().splitlines() == raw[:5]


def test_category_type_pattern_and_count_by(clean_ws, capsys):
    events = all_events(clean_ws)
    assert run_cli(clean_ws, "events", "latest", "--type", "order_*", "--count-by", "event_type", "--json") == 0
    doc = json_out(capsys)
    expected = {}
    for e in events:
        if e["event_type"].startswith("order_"):
            expected[e["event_type"]] = expected.get(e["event_type"], 0) + 1
    assert {c["value"]: c["count"] for c in doc["counts"]} == expected
    assert run_cli(clean_ws, "events", "clean", "--category", "DATA", "--field", "payload.bar_idx") == 0
    bar_idx = [int(x) for x in lines(capsys)]
    assert bar_idx == [e["payload"]["bar_idx"] for e in events if e["category"] == "DATA" and "bar_idx" in e["payload"]]


def test_time_window_where_and_tail(clean_ws, capsys):
    events = all_events(clean_ws)
    t0, t1 = events[100]["ts_ms"], events[400]["ts_ms"]
    assert run_cli(clean_ws, "events", "clean", "--since", str(t0), "--until", str(t1), "--count") == 0
    assert int(capsys.readouterr().out) == sum(1 for e in events if t0 <= e["ts_ms"] < t1)
    iso = "2026-01-10T00:00:00Z"
    ms = parse_time(iso)
    assert run_cli(clean_ws, "events", "clean", "--since", iso, "--head", "1", "--json") == 0
    assert json_out(capsys)[0]["seq"] == next(e["seq"] for e in events if e["ts_ms"] >= ms)
    assert run_cli(clean_ws, "events", "clean", "--where", "payload.position_usd>7000", "--tail", "3",
                   "--field", "seq") == 0
    wanted = [e["seq"] for e in events if isinstance(e["payload"].get("position_usd"), (int, float))
              and e["payload"]["position_usd"] > 7000][-3:]
    assert [int(x) for x in lines(capsys)] == wanted and len(wanted) == 3


def test_where_operators():
    event = {"level": "ERROR", "payload": {"code": "PRICE_MISMATCH", "n": 5, "flag": True}}
    assert parse_where("payload.n>=5")(event) and not parse_where("payload.n>5")(event)
    assert parse_where("level=ERROR")(event) and parse_where("payload.code~^PRICE")(event)
    assert parse_where("payload.missing!=1")(event) and not parse_where("payload.missing=1")(event)
    assert parse_where("payload.flag=true")(event) and not parse_where("payload.flag=1")(event)
    assert not parse_where("payload.code>3")(event)  # mismatched types never compare


@pytest.mark.parametrize("args, code", [
    (["--level", "LOUD"], "QUERY_INVALID"),
    (["--category", "NOPE"], "QUERY_INVALID"),
    (["--since", "yesterday"], "QUERY_INVALID"),
    (["--where", "payload.x >> 3"], "QUERY_INVALID"),
    (["--since", "2026-01-05", "--until", "2026-01-04"], "QUERY_INVALID"),
])
def test_bad_filters_are_coded_errors(clean_ws, capsys, args, code):
    assert run_cli(clean_ws, "events", "clean", *args) == 2
    err = capsys.readouterr().err
    assert f"error[{code}]" in err and "Traceback" not in err


def test_unknown_run(clean_ws, capsys):
    assert run_cli(clean_ws, "events", "nosuchrun") == 2
    assert "error[RUN_UNKNOWN]" in capsys.readouterr().err


def test_reads_rotated_parts_and_archives_the_same(clean_ws, capsys):
    assert run_cli(clean_ws, "events", "clean", "--raw") == 0
    original = capsys.readouterr().out
    rotate(clean_ws, 60_000)
    assert len(clean_ws.log_parts("clean")) > 3
    assert run_cli(clean_ws, "events", "clean", "--raw") == 0
    assert capsys.readouterr().out == original
    pack(clean_ws)
    assert clean_ws.log_parts("clean") == []
    assert run_cli(clean_ws, "events", "clean", "--raw") == 0
    assert capsys.readouterr().out == original


def test_pattern_spans_runs(clean_ws, capsys):
    write_log(clean_ws, "other", [("SYS", "run_start", "INFO", {}), ("EXEC", "adapter_error", "ERROR",
                                                                   {"code": "X"})])
    assert run_cli(clean_ws, "events", "*", "--level", "ERROR", "--field", "run_id") == 0
    assert lines(capsys) == ["other"]


def test_torn_tail_is_skipped_with_a_warning(clean_ws, capsys):
    log = clean_ws.event_log("clean")
    total = len(log.read_bytes().splitlines())
    with open(log, "ab") as handle:
        handle.write(b'{"category":"SYS","event')
    assert run_cli(clean_ws, "events", "clean", "--count") == 0
    captured = capsys.readouterr()
    assert int(captured.out) == total and "torn line" in captured.err


def test_corrupt_middle_line_names_the_line(clean_ws):
    log = clean_ws.event_log("clean")
    data = log.read_bytes().splitlines(keepends=True)
    data[10] = b"not json\n"
    log.write_bytes(b"".join(data))
    with pytest.raises(EventLogError) as info:
        list(iter_events(clean_ws, "clean"))
    assert info.value.code == "EVENTS_JSON" and info.value.line == 11


def test_prefilter_never_loses_a_match(clean_ws):
    """The raw-bytes prefilter is only an accelerator: same result as filtering parsed events."""
    for flt in (EventFilter(levels=("WARN",)), EventFilter(categories=("EXEC",), types=("order_filled",)),
                EventFilter(min_level="INFO", categories=("RISK",))):
        fast = [h.event["seq"] for h in iter_events(clean_ws, "clean", flt)]
        slow = [e["seq"] for e in all_events(clean_ws) if flt.matches(e)]
        assert fast == slow and fast


def test_field_json(clean_ws, capsys):
    assert run_cli(clean_ws, "events", "clean", "--type", "dataset_loaded", "--field", "payload.dataset_sha",
                   "--json") == 0
    assert json_out(capsys) == [json.loads(clean_ws.ssot_path.read_text())["dataset"]["sha256"]]


def test_filter_validation_is_eager():
    with pytest.raises(OpsError):
        EventFilter(levels=("NOPE",))
