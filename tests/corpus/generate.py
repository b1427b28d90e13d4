"""Write the bad-input corpus (tests/corpus/) and its manifest.

Every entry is one hostile or broken input an operator could feed Treasure, with the stable error
code it must be refused with (or ``accepted`` and the reason, for the inputs the formats allow on
purpose). tests/test_corpus.py feeds each one through the CLI. The files are committed; re-run
this script after a deliberate format or contract change (the event logs come from a real run)::

    .venv/bin/python tests/corpus/generate.py

Nothing here depends on the clock or the machine, so regenerating an unchanged tree rewrites the
same bytes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HEADER = b"t_ms,open,high,low,close,volume\n"
T0 = 1_767_225_600_000
STEP = 300_000


def rows(n: int = 6, *, start: int = 0) -> list[bytes]:
    out = []
    for i in range(start, start + n):
        p = 100 + abs(i % 20 - 10)  # a triangle wave: the SMA crossover trades on it
        out.append(f"{T0 + i * STEP},{p},{p + 1.5},{p - 1.5},{p + 0.5},{1000 + i}\n".encode())
    return out


def csv(*body: bytes) -> bytes:
    return HEADER + b"".join(body)


GOOD = csv(*rows(120))
R = rows(6)


def with_row(index: int, row: str) -> bytes:
    body = list(R)
    body[index] = row.encode() + b"\n"
    return csv(*body)


# id, bytes (None = special), expected code or "accepted", line (or None), why
DATASETS: list[tuple[str, bytes | None, str, int | None, str]] = [
    ("ok", GOOD, "accepted", None, "control: 120 clean 5-minute bars (the dataset the ssot/ entries pin)"),
    ("bom", b"\xef\xbb\xbf" + GOOD, "accepted", None,
     "a UTF-8 BOM is accepted by design (spreadsheet exports write one)"),
    ("crlf", GOOD.replace(b"\n", b"\r\n"), "accepted", None,
     "CRLF line endings are accepted by design (Windows tools write them)"),
    ("bom_crlf", b"\xef\xbb\xbf" + GOOD.replace(b"\n", b"\r\n"), "accepted", None, "both of the above"),
    ("nan", with_row(2, f"{T0 + 2 * STEP},102,103.5,100.5,nan,1002"), "DATA_NAN", 4, "NaN close"),
    ("inf", with_row(3, f"{T0 + 3 * STEP},103,inf,101.5,103.5,1003"), "DATA_NAN", 5, "infinite high"),
    ("negative_price", with_row(1, f"{T0 + STEP},-101,102.5,-102.5,101.5,1001"), "DATA_NONPOSITIVE_PRICE", 3,
     "negative open"),
    ("zero_price", with_row(1, f"{T0 + STEP},0,102.5,0,101.5,1001"), "DATA_NONPOSITIVE_PRICE", 3, "zero open"),
    ("negative_volume", with_row(4, f"{T0 + 4 * STEP},104,105.5,102.5,104.5,-5"), "DATA_NEGATIVE_VOLUME", 6,
     "negative volume"),
    ("high_below_low", with_row(2, f"{T0 + 2 * STEP},102,100,103,102.5,1002"), "DATA_OHLC", 4, "high < low"),
    ("close_above_high", with_row(2, f"{T0 + 2 * STEP},102,103,101,110,1002"), "DATA_OHLC", 4, "close > high"),
    ("unsorted", csv(R[0], R[2], R[1], R[3]), "DATA_UNSORTED", 4, "bars out of time order"),
    ("wrong_columns", b"time,o,h,l,c,v\n" + b"".join(R), "DATA_HEADER", 1, "renamed columns"),
    ("missing_column", b"t_ms,open,high,low,close\n" + b"".join(r.rsplit(b",", 1)[0] + b"\n" for r in R),
     "DATA_HEADER", 1, "no volume column"),
    ("extra_column", b"t_ms,open,high,low,close,volume,vwap\n" + b"".join(r[:-1] + b",1\n" for r in R),
     "DATA_HEADER", 1, "an unexpected column"),
    ("no_header", b"".join(R), "DATA_HEADER", 1, "the header line is missing"),
    ("semicolons", GOOD.replace(b",", b";"), "DATA_HEADER", 1, "semicolon-separated (European locale export)"),
    ("short_row", with_row(3, f"{T0 + 3 * STEP},103,104.5,101.5"), "DATA_SHORT_ROW", 5, "a row with 4 values"),
    ("long_row", with_row(3, f"{T0 + 3 * STEP},103,104.5,101.5,103.5,1003,9"), "DATA_LONG_ROW", 5,
     "a row with 7 values"),
    ("blank_line", csv(R[0], R[1], b"\n", R[2]), "DATA_SHORT_ROW", 4, "an empty line between bars"),
    ("empty", b"", "DATA_EMPTY", None, "a 0-byte file"),
    ("whitespace_only", b"  \n\n \t\n", "DATA_EMPTY", None, "only whitespace"),
    ("header_only", HEADER, "DATA_HEADER_ONLY", 1, "a header and no bars"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)), "DATA_BINARY", None,
     "a PNG file renamed .csv"),
    ("non_utf8", with_row(2, f"{T0 + 2 * STEP},102,103.5,100.5,102.5,1002") + "caf\xe9\n".encode("latin-1"),
     "DATA_BINARY", 8, "a Latin-1 byte"),
    ("utf16", GOOD.decode().encode("utf-16"), "DATA_BINARY", None, "UTF-16 with its BOM"),
    ("bom_then_garbage", b"\xef\xbb\xbf\x00garbage\xff\xfe", "DATA_BINARY", None,
     "a BOM does not make garbage acceptable"),
    ("bom_wrong_header", b"\xef\xbb\xbfdate;price\n2026-01-01;1\n", "DATA_HEADER", 1,
     "a BOM before a header that is not ours"),
    ("cr_only_endings", GOOD.replace(b"\n", b"\r"), "DATA_HEADER", 1,
     "old-Mac bare CR line endings: the whole file is one line"),
    ("mixed_broken_endings", HEADER + R[0] + R[1].replace(b"\n", b"\r") + R[2], "DATA_LONG_ROW", 3,
     "a bare CR inside the data merges two rows into one of 11 values"),
    ("huge_price", with_row(2, f"{T0 + 2 * STEP},1e300,1e300,1e300,1e300,1002"), "DATA_RANGE", 4,
     "a price of 1e300"),
    ("huge_volume", with_row(2, f"{T0 + 2 * STEP},102,103.5,100.5,102.5,1e13"), "DATA_RANGE", 4,
     "a volume of 1e13"),
    ("huge_timestamp", with_row(5, "99999999999999999999999,105,106.5,103.5,105.5,1005"), "DATA_RANGE", 7,
     "a timestamp beyond int64"),
    ("year_3000", with_row(5, "32503680000000,105,106.5,103.5,105.5,1005"), "DATA_RANGE", 7,
     "a timestamp in the year 3000"),
    ("seconds_not_ms", csv(*[r.replace(str(T0 + i * STEP).encode(), str((T0 + i * STEP) // 1000).encode())
                             for i, r in enumerate(R)]), "accepted", None,
     "timestamps in seconds are plausible ms in 1970 and cannot be told apart; the pinned SHA and the "
     "interval check guard this"),
    ("float_timestamp", with_row(1, f"{T0 + STEP}.5,101,102.5,99.5,101.5,1001"), "DATA_PARSE", 3,
     "a fractional t_ms"),
    ("digit_separators", with_row(1, f"{T0 + STEP},1_01,102.5,99.5,101.5,1001"), "DATA_PARSE", 3,
     "1_01 is a Python literal, not CSV"),
    ("spaces_in_value", with_row(1, f"{T0 + STEP}, 101,102.5,99.5,101.5,1001"), "DATA_PARSE", 3,
     "a space before a value"),
    ("formula_injection", with_row(1, f"{T0 + STEP},=cmd|' /C calc'!A0,102.5,99.5,101.5,1001"), "DATA_PARSE", 3,
     "a spreadsheet formula"),
]

# special dataset entries (not plain files)
DATASET_SPECIAL = [
    ("a_directory", "DATA_IS_DIR", "the dataset path names a directory"),
    ("does_not_exist", "DATA_MISSING", "the dataset path names no file"),
]


def base_ssot(dataset_sha: str) -> dict[str, Any]:
    return {
        "version": 1,
        "instrument": {"symbol": "SYNTH-USD", "qty_step": 1e-06},
        "dataset": {"path": "fixtures/data/corpus_ok.csv", "sha256": dataset_sha, "interval_ms": 300000,
                    "on_gap": "warn", "on_duplicate": "warn"},
        "run": {"seed": 42, "starting_cash_usd": 100000},
        "strategy": {"name": "sma_crossover", "params": {"fast": 3, "slow": 8, "order_usd": 5000}},
        "execution": {"adapter": "sim", "fees": {"taker_bps": 5, "min_fee_usd": 0.01},
                      "slippage": {"model": "fixed_bps", "bps": 2}, "partial_fill_prob": 0.1,
                      "partial_fill_min_ratio": 0.5},
        "risk": {"max_position_size_usd": 10000, "daily_loss_limit_usd": 1500},
        "recon": {"price_tolerance_bps": 5, "fee_tolerance_abs_usd": 0.01, "fee_tolerance_rel": 0.001,
                  "time_window_ms": 600000, "max_mismatches": 10},
        "persistence": {"enabled": False, "db_path": "data/treasure.db"},
    }


def ssot_entries(sha: str) -> list[tuple[str, bytes, str, str | None, str]]:
    """(id, bytes, expected code, expected field, why)"""
    good = base_ssot(sha)

    def edit(change) -> bytes:
        doc = copy.deepcopy(good)
        change(doc)
        return json.dumps(doc, indent=2).encode() + b"\n"

    text = json.dumps(good, indent=2).encode() + b"\n"
    return [
        ("valid", text, "accepted", None, "control: the SSOT every other entry breaks"),
        ("torn", text[: len(text) // 2], "SSOT_JSON", None, "cut in the middle (a crashed editor)"),
        ("empty", b"", "SSOT_JSON", None, "a 0-byte file"),
        ("binary", b"\x00\x01\x02\xff\xfe", "SSOT_JSON", None, "not text"),
        ("trailing_comma", text.replace(b'"version": 1,', b'"version": 1,,'), "SSOT_JSON", None,
         "a syntax error"),
        ("nan_literal", text.replace(b'"seed": 42', b'"seed": NaN'), "SSOT_JSON", None, "NaN is not JSON"),
        ("huge_float", text.replace(b'"daily_loss_limit_usd": 1500', b'"daily_loss_limit_usd": 1e400'),
         "SSOT_JSON", None, "a number that overflows a double"),
        ("nesting_bomb", b"[" * 5000 + b"]" * 5000, "SSOT_JSON", None, "5000 nested arrays"),
        ("a_list", b"[1, 2, 3]\n", "SSOT_SCHEMA", "(root)", "a JSON list, not an object"),
        ("null", b"null\n", "SSOT_SCHEMA", "(root)", "JSON null"),
        ("missing_risk", edit(lambda d: d.pop("risk")), "SSOT_SCHEMA", "(root)", "a required section missing"),
        ("missing_seed", edit(lambda d: d["run"].pop("seed")), "SSOT_SCHEMA", "run", "a required key missing"),
        ("seed_as_string", edit(lambda d: d["run"].update(seed="42")), "SSOT_SCHEMA", "run.seed",
         "a number written as a string"),
        ("seed_negative", edit(lambda d: d["run"].update(seed=-1)), "SSOT_SCHEMA", "run.seed", "a negative seed"),
        ("seed_too_big", edit(lambda d: d["run"].update(seed=2**64)), "SSOT_SCHEMA", "run.seed",
         "a seed beyond 64 bits"),
        ("bool_as_number", edit(lambda d: d["risk"].update(max_position_size_usd=True)), "SSOT_SCHEMA",
         "risk.max_position_size_usd", "true is not a number"),
        ("unknown_key", edit(lambda d: d["risk"].update(max_drawdon_pct=5)), "SSOT_SCHEMA", "risk",
         "a typo that would silently be ignored"),
        ("unknown_section", edit(lambda d: d.update(riks={})), "SSOT_SCHEMA", "(root)", "a misspelled section"),
        ("absurd_loss_limit", edit(lambda d: d["risk"].update(daily_loss_limit_usd=1e300)), "SSOT_SCHEMA",
         "risk.daily_loss_limit_usd", "a limit that disables the limit"),
        ("negative_position_limit", edit(lambda d: d["risk"].update(max_position_size_usd=-10)), "SSOT_SCHEMA",
         "risk.max_position_size_usd", "a negative limit"),
        ("zero_cash", edit(lambda d: d["run"].update(starting_cash_usd=0)), "SSOT_SCHEMA",
         "run.starting_cash_usd", "no money"),
        ("absurd_fees", edit(lambda d: d["execution"]["fees"].update(taker_bps=1e6)), "SSOT_SCHEMA",
         "execution.fees.taker_bps", "fees of 10,000%"),
        ("fill_prob_above_one", edit(lambda d: d["execution"].update(partial_fill_prob=1.5)), "SSOT_SCHEMA",
         "execution.partial_fill_prob", "a probability of 1.5"),
        ("bad_sha_format", edit(lambda d: d["dataset"].update(sha256="XYZ")), "SSOT_SCHEMA", "dataset.sha256",
         "not a SHA-256"),
        ("dataset_outside", edit(lambda d: d["dataset"].update(path="../../../etc/passwd")), "PATH_ESCAPE",
         "dataset.path", "a dataset path climbing out of the workspace"),
        ("dataset_absolute", edit(lambda d: d["dataset"].update(path="/etc/passwd")), "PATH_ESCAPE",
         "dataset.path", "an absolute dataset path in the SSOT"),
        ("dataset_sha_mismatch", edit(lambda d: d["dataset"].update(sha256="0" * 64)), "DATA_SHA_MISMATCH",
         "dataset.sha256", "the pinned SHA does not match the file"),
        ("strategy_unknown", edit(lambda d: d["strategy"].update(name="no_such_strategy")), "STRATEGY_UNKNOWN",
         None, "a strategy that does not exist"),
        ("strategy_params_wrong", edit(lambda d: d["strategy"].update(params={"fast": "ten"})), "STRATEGY_PARAMS",
         None, "a parameter of the wrong type"),
        ("strategy_params_unknown", edit(lambda d: d["strategy"]["params"].update(sloww=5)), "STRATEGY_PARAMS",
         None, "a misspelled strategy parameter"),
        ("seed_beyond_2p53", edit(lambda d: d["run"].update(seed=2**60)), "SSOT_SCHEMA", "run.seed",
         "a seed the schema allows (< 2**64) but canonical JSON cannot hold"),
        ("param_beyond_2p53", edit(lambda d: d["strategy"]["params"].update(fast=2**53)), "SSOT_SCHEMA", None,
         "an integer beyond 2**53 in a free-form section"),
        ("dataset_path_nul", edit(lambda d: d["dataset"].update(path="fixtures/data/a\u0000b.csv")),
         "PATH_INVALID", "dataset.path", "a NUL byte in a path"),
        ("duplicate_keys", text.replace(b'"risk": {', b'"risk": {"daily_loss_limit_usd": 1e9, ', 1),
         "SSOT_DUPLICATE_KEY", None,
         "JSON allows duplicate keys and the last one wins, so a hand-edited duplicate could shadow a limit "
         "unnoticed: the SSOT loader refuses it"),
    ]


def event_entries(log: bytes) -> list[tuple[str, bytes | None, str, int | None, str]]:
    import orjson

    from treasure.events import seal

    lines = log.splitlines(keepends=True)
    n = len(lines)
    k = n // 2

    def reseal(event: dict) -> bytes:
        event = dict(event)
        event.pop("hash", None)
        return seal(event)[1] + b"\n"

    events = [orjson.loads(line) for line in lines]
    edited = dict(events[k], payload=dict(events[k]["payload"]))
    first_num = next(key for key, v in sorted(edited["payload"].items())
                     if isinstance(v, (int, float)) and not isinstance(v, bool))
    edited["payload"][first_num] = edited["payload"][first_num] + 1
    edited_line = orjson.dumps(edited, option=orjson.OPT_SORT_KEYS) + b"\n"  # hash left stale
    resealed = reseal(edited)
    other_run = dict(events[k], run_id="someone_else")
    backwards = dict(events[k], ts_ms=events[k - 1]["ts_ms"] - 1)
    unknown = dict(events[k], event_type="made_up_event")

    def resealed_from(i: int, first: dict) -> list[bytes]:
        """Lines i.. re-chained after replacing event i: a consistent forgery up to the end."""
        out = []
        prev = events[i - 1]["hash"]
        for j in range(i, n):
            e = dict(first if j == i else events[j])
            e.pop("hash", None)
            e["prev"] = prev
            prev, line = seal(e)
            out.append(line + b"\n")
        return out

    return [
        ("valid", log, "accepted", None, "control: a complete log from a real run"),
        ("torn_tail", log[:-40], "EVENTS_TRUNCATED", n, "the writer was killed mid-line"),
        ("torn_middle", b"".join(lines[:k] + [lines[k][:30] + b"\n"] + lines[k + 1:]), "EVENTS_JSON", k + 1,
         "a line cut short in the middle of the log"),
        ("reordered", b"".join(lines[:k] + [lines[k + 1], lines[k]] + lines[k + 2:]), "EVENTS_SEQ", k + 1,
         "two lines swapped"),
        ("deleted_line", b"".join(lines[:k] + lines[k + 1:]), "EVENTS_SEQ", k + 1, "a line deleted"),
        ("duplicated_line", b"".join(lines[:k + 1] + [lines[k]] + lines[k + 1:]), "EVENTS_SEQ", k + 2,
         "a line repeated"),
        ("edited_payload", b"".join(lines[:k] + [edited_line] + lines[k + 1:]), "EVENTS_CHAIN", k + 1,
         "a payload value changed, hash left as it was"),
        ("broken_chain", b"".join(lines[:k] + [resealed] + lines[k + 1:]), "EVENTS_CHAIN", k + 2,
         "an edited line re-hashed: the next line's prev no longer matches"),
        ("mixed_run_ids", b"".join(lines[:k] + resealed_from(k, other_run)), "EVENTS_RUN_ID", k + 1,
         "lines of another run spliced in (chained consistently)"),
        ("time_backwards", b"".join(lines[:k] + resealed_from(k, backwards)), "EVENTS_TIME", k + 1,
         "sim time goes back (chained consistently)"),
        ("unknown_event_type", b"".join(lines[:k] + resealed_from(k, unknown)), "EVENTS_SCHEMA", k + 1,
         "an event type with no schema in truth/events/"),
        ("not_an_object", b"[1,2,3]\n" + log, "EVENTS_SCHEMA", 1, "a JSON list where an event belongs"),
        ("garbage", b"\x00\xff\xfe binary junk\n", "EVENTS_JSON", 1, "not JSON at all"),
        ("empty", b"", "EVENTS_EMPTY", None, "a 0-byte log"),
        ("huge_line", None, "EVENTS_JSON", 3,
         "a 10 MB line of junk (generated by the test, not committed)"),
    ]


LIVE_OK_HEADER = {"format": "treasure-live/1", "symbol": "SYNTH-USD", "type": "session", "venue": "corpus"}


def live_entries(valid: bytes) -> list[tuple[str, bytes, str, int | None, str]]:
    lines = valid.splitlines(keepends=True)
    return [
        ("valid", valid, "accepted", None, "control: a clean recorded session for the corpus run"),
        ("torn_tail", valid[:-25], "LIVE_TRUNCATED", len(lines), "the recorder was killed mid-line"),
        ("not_json", lines[0] + b"{oops\n" + b"".join(lines[1:]), "LIVE_JSON", 2, "a broken line"),
        ("unknown_type", lines[0] + b'{"type":"teleport","order_id":"o000001","venue_ts_ms":1}\n' +
         b"".join(lines[1:]), "LIVE_SCHEMA", 2, "a message type the format does not have"),
        ("negative_qty", lines[0] + lines[1].replace(b'"qty":', b'"qty":-') + b"".join(lines[2:]), "LIVE_SCHEMA",
         2, "a negative quantity"),
        ("header_late", b"".join(lines[1:2]) + lines[0] + b"".join(lines[2:]), "LIVE_HEADER", 2,
         "the session line after a message"),
        ("empty", b"", "LIVE_EMPTY", None, "no messages"),
        ("header_only", lines[0], "LIVE_EMPTY", None, "a header and no messages"),
        ("binary", b"\x00\x01\x02\xff\n", "LIVE_JSON", 1, "not text"),
    ]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _base_run(tmp: Path) -> tuple[bytes, bytes]:
    """A complete event log of a small real run, and a clean live session for it."""
    from treasure.engine import RunRequest, run
    from treasure.workspace import init_workspace

    ws = init_workspace(tmp / "ws")
    data = GOOD
    (ws.root / "fixtures" / "data" / "corpus_ok.csv").write_bytes(data)
    ws.ssot_path.write_text(json.dumps(base_ssot(_sha(data)), indent=2))
    result = run(RunRequest(ws, run_id="corpus"))
    assert result.status == "complete", result.error
    log = result.event_log.read_bytes()
    live = live_for(log)
    return log, live


def live_for(log: bytes) -> bytes:
    """A clean recorded session: one ack + fill per filled order of the run, as the venue saw it."""
    import orjson

    out = [orjson.dumps(LIVE_OK_HEADER, option=orjson.OPT_SORT_KEYS) + b"\n"]
    n = 0
    for line in log.splitlines():
        event = orjson.loads(line)
        p = event["payload"]
        if event["event_type"] == "order_placed":
            out.append(orjson.dumps({"type": "ack", "order_id": p["order_id"], "venue_ts_ms": event["ts_ms"] + 20,
                                     "side": p["side"], "qty": p["qty"]}, option=orjson.OPT_SORT_KEYS) + b"\n")
        elif event["event_type"] == "order_filled":
            n += 1
            out.append(orjson.dumps({"type": "fill", "order_id": p["order_id"], "venue_ts_ms": event["ts_ms"] + 80,
                                     "fill_id": f"F{n:06d}", "qty": p["fill_qty"], "price": p["price"],
                                     "fee": p["fee"], "status": p["status"]},
                                    option=orjson.OPT_SORT_KEYS) + b"\n")
    return b"".join(out)


#: Entries the code does not handle yet (reported): the test marks them xfail(strict=True).
GAPS: dict[str, str] = {}


def main() -> int:
    sys.path.insert(0, str(HERE.parents[1]))
    for sub in ("datasets", "ssot", "events", "live"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
        (HERE / sub).mkdir()
    entries: list[dict[str, Any]] = []

    def add(kind: str, ident: str, rel: str | None, expect: str, line: int | None, why: str,
            field: str | None = None, data: bytes | None = None) -> None:
        if data is not None and rel is not None:
            (HERE / rel).write_bytes(data)
        entry: dict[str, Any] = {"id": f"{kind}/{ident}", "kind": kind, "file": rel, "expect": expect, "why": why}
        if line is not None:
            entry["line"] = line
        if field is not None:
            entry["field"] = field
        if entry["id"] in GAPS:
            entry["gap"] = GAPS[entry["id"]]
        entries.append(entry)

    for ident, data, expect, line, why in DATASETS:
        add("dataset", ident, f"datasets/{ident}.csv", expect, line, why, data=data)
    (HERE / "datasets" / "a_directory").mkdir()
    (HERE / "datasets" / "a_directory" / "README").write_text("a directory where a dataset file belongs\n")
    add("dataset", "a_directory", "datasets/a_directory", "DATA_IS_DIR", None, DATASET_SPECIAL[0][2])
    add("dataset", "does_not_exist", "datasets/does_not_exist.csv", "DATA_MISSING", None, DATASET_SPECIAL[1][2])

    good_sha = _sha(GOOD)
    for ident, data, expect, fld, why in ssot_entries(good_sha):
        add("ssot", ident, f"ssot/{ident}.json", expect, None, why, field=fld, data=data)

    with tempfile.TemporaryDirectory() as tmp:
        log, live = _base_run(Path(tmp))
    for ident, data, expect, line, why in event_entries(log):
        add("eventlog", ident, None if data is None else f"events/run_{ident}.jsonl", expect, line, why, data=data)
    for ident, data, expect, line, why in live_entries(live):
        add("live", ident, f"live/{ident}.jsonl", expect, line, why, data=data)

    manifest = {
        "format": "treasure-corpus/1",
        "generated_by": "python tests/corpus/generate.py",
        "run_dataset": {"file": "datasets/ok.csv", "sha256": good_sha, "path": "fixtures/data/corpus_ok.csv",
                        "note": "ssot/* entries pin datasets/ok.csv at this path; the test copies it there"},
        "counts": {kind: sum(e["kind"] == kind for e in entries) for kind in ("dataset", "ssot", "eventlog", "live")},
        "entries": entries,
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(entries)} corpus entries: {manifest['counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
