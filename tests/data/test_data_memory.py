"""The streaming dataset loader: bounded memory, limits, and exactly the one-shot parser's answers.

``treasure.data._parse.parse_bars_csv`` over the whole file's bytes is the reference: the streaming
``load_dataset`` must give bit-identical columns and the very same refusal (code, message, line,
field), whatever the block size, including rows split across block edges and errors in later
blocks.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treasure.data import bars_to_csv, generate_bars, load_dataset
from treasure.data import loader
from treasure.data._parse import parse_bars_csv
from treasure.data.bars import COLUMNS
from treasure.errors import HINTS, DataError

ROOT = Path(__file__).resolve().parents[2]
HEADER = b"t_ms,open,high,low,close,volume\n"
T0 = 1_767_225_600_000
STEP = 60_000


def big_csv(path: Path, rows: int) -> int:
    """A valid ``rows``-bar canonical CSV (synth OHLCV tails cycled under rising t_ms); its size."""
    pool = bars_to_csv(generate_bars(n_bars=2000, seed=3, interval_ms=STEP))
    tails = [line.split(b",", 1)[1] for line in pool.rstrip(b"\n").split(b"\n")[1:]]
    with open(path, "wb") as fh:
        fh.write(HEADER)
        for start in range(0, rows, 200_000):
            fh.write(b"".join(b"%d,%s\n" % (T0 + i * STEP, tails[i % len(tails)])
                              for i in range(start, min(rows, start + 200_000))))
    return path.stat().st_size


_CHILD = textwrap.dedent("""
    import json, resource, sys
    from treasure.data.loader import load_dataset

    def status_kb(key):
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith(key))

    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of a big pytest
    # worker would report the worker's peak; VmHWM belongs to this process image alone
    before = status_kb("VmRSS:")
    ds = load_dataset(sys.argv[1])
    peak = status_kb("VmHWM:")
    print(json.dumps({"rows": len(ds), "before_kb": before, "peak_kb": peak}))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for the RSS baseline")
def test_loading_costs_at_most_twice_the_file_in_memory(tmp_path: Path) -> None:
    """Issue 17: a 556 MB CSV took 3.5 GB (6.4x). Now the load's own peak RSS is <= 2x the file."""
    path = tmp_path / "big.csv"
    rows = 700_000
    size = big_csv(path, rows)
    assert 30e6 < size < 60e6
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True,
                         cwd=str(ROOT), timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["rows"] == rows
    load_peak = (got["peak_kb"] - got["before_kb"]) * 1024
    assert load_peak <= 2.0 * size, f"load peak {load_peak / size:.2f}x the {size / 1e6:.1f} MB file"


# ---------------------------------------------------------------------------------------------
# limits


def test_too_many_rows_is_a_coded_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bars.csv"
    big_csv(path, 12)
    monkeypatch.setattr(loader, "MAX_ROWS", 11)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    err = info.value
    assert err.code == "DATA_TOO_LARGE" and err.code in HINTS
    assert "12 bars" in err.message and "MAX_ROWS" in err.message and "split" in err.message
    monkeypatch.setattr(loader, "MAX_ROWS", 12)
    assert len(load_dataset(path)) == 12


def test_too_many_bytes_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bars.csv"
    size = big_csv(path, 5)
    monkeypatch.setattr(loader, "MAX_BYTES", size - 1)

    def never(*args: object) -> None:
        raise AssertionError("read a file that is over the byte limit")

    monkeypatch.setattr(loader, "_parse_file", never)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert info.value.code == "DATA_TOO_LARGE" and "MAX_BYTES" in info.value.message


def test_the_default_limits_are_documented() -> None:
    assert loader.MAX_ROWS == 50_000_000 and loader.MAX_BYTES == 4 << 30
    assert "50,000,000" in HINTS["DATA_TOO_LARGE"]
    doc = (ROOT / "docs" / "robustness.md").read_text()
    assert "DATA_TOO_LARGE" in doc and "DATA_TOO_SHORT" in doc and "50,000,000" in doc


@pytest.mark.parametrize("rows", [[0], [0, 0], [5, 5, 5]], ids=["one-row", "two-dupes", "all-dupes"])
def test_a_run_on_fewer_than_two_distinct_bars_is_refused_at_load(workspace, cli, rows: list[int]) -> None:
    """Issue 17: these ran into an EVENTS_SCHEMA error; now the run refuses them as data."""
    bad = workspace.root / "data" / "short.csv"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(HEADER + b"".join(b"%d,100,101,99,100.5,10\n" % (T0 + i * STEP) for i in rows))
    code, out, err = cli("run", "-q", "--workspace", workspace.root, "--dataset", bad)
    assert code == 2, (out, err)
    assert "error[DATA_TOO_SHORT]" in err and "at least 2 distinct bars" in err
    assert "Traceback" not in err and "EVENTS_SCHEMA" not in err


# ---------------------------------------------------------------------------------------------
# the streaming loader answers exactly what the one-shot parser answers


def reference(data: bytes) -> tuple[str, dict[str, bytes]] | tuple[str, str, int | None, str | None]:
    try:
        cols = parse_bars_csv(data, path="x.csv")
    except DataError as err:
        return (err.code, err.message, err.line, err.field)
    return (hashlib.sha256(data).hexdigest(), {n: getattr(cols, n).tobytes() for n in COLUMNS})


def streamed(path: Path) -> tuple[str, dict[str, bytes]] | tuple[str, str, int | None, str | None]:
    try:
        ds = loader.load_dataset(path, display_path="x.csv")
    except DataError as err:
        return (err.code, err.message, err.line, err.field)
    return (ds.sha256, {n: getattr(ds.bars, n).tobytes() for n in COLUMNS})


_BLOCKS = st.sampled_from([3, 5, 17, 64, 331, 4096])
_WINDOWS = st.sampled_from([1, 2, 7, 1 << 20])
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_INSERTS = [b",", b"\n", b"nan", b"inf", b"-", b"1e400", b"  ", b"\xef\xbb\xbf", b"9" * 25, b"\r\n", b"\r",
            b"\xc3", b"\xc3\xa9", b"\x00", b"1_0", b"+1", b".5", b"1e5", b"\n\n"]


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Valid canonical files, or ones with a few edits (anywhere, so often in a late block)."""
    n = draw(st.integers(1, 60))
    bars = generate_bars(n_bars=n, seed=draw(st.integers(0, 30)), duplicates=draw(st.integers(0, min(1, n - 1))))
    text = bytearray(bars_to_csv(bars))
    if draw(st.booleans()):
        text = bytearray(bytes(text).replace(b"\n", b"\r\n"))
    if draw(st.booleans()):
        text[0:0] = b"\xef\xbb\xbf"
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "truncate"]))
        if op == "insert":
            text[at:at] = draw(st.sampled_from(_INSERTS))
        elif op == "replace" and at < len(text):
            text[at] = draw(st.sampled_from(b",.\n-+eE0 9aN\r\x00\xff"))
        elif op == "delete" and at < len(text):
            del text[at]
        elif op == "truncate":
            del text[at:]
    return bytes(text)


@_SETTINGS
@given(data=csv_files(), block=_BLOCKS, window=_WINDOWS)
def test_streaming_equals_the_one_shot_parser(tmp_path: Path, data: bytes, block: int, window: int) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    want = reference(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loader, "_BLOCK", block)
        mp.setattr(loader, "_WINDOW", window)
        assert streamed(path) == want


@pytest.mark.parametrize("block", [3, 7, 40, 41, 42, 43, 100, 4096])
@pytest.mark.parametrize("case", ["valid", "nan-late", "overflow-late", "unsorted-at-edge", "bad-token-late",
                                  "nul-after-error", "utf8-split", "time-unit"])
def test_chunk_edges(tmp_path: Path, block: int, case: str) -> None:
    """Rows split across block edges; errors in later blocks keep their line and field."""
    rows = [b"%d,100.25,101.5,99.125,100.5,10.25" % (T0 + i * STEP) for i in range(40)]
    if case == "nan-late":
        rows[33] = rows[33].replace(b"101.5", b"nan")
    elif case == "overflow-late":
        rows[37] = rows[37].replace(b"10.25", b"1e999")
    elif case == "unsorted-at-edge":
        rows[21] = b"%d" % T0 + rows[21][13:]  # row 21 opens a validation window of 3
    elif case == "bad-token-late":
        rows[39] = rows[39].replace(b"99.125", b"9x9")
    elif case == "nul-after-error":
        rows[2] = rows[2].replace(b"100.25", b"abc")
        rows[38] = rows[38] + b"\x00"
    elif case == "utf8-split":
        rows[30] = rows[30] + b"\xc3\xa9"
    elif case == "time-unit":
        rows = [b"%d,1,1,1,1,1" % (1_767_225_600 + i * 60) for i in range(40)]
    data = HEADER + b"\n".join(rows) + b"\n"
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    want = reference(data)
    if case != "valid":
        assert isinstance(want[1], str), want  # every broken case is refused by the reference
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loader, "_BLOCK", block)
        mp.setattr(loader, "_WINDOW", 3)
        got = streamed(path)
    assert got == want
    if case == "valid":
        assert isinstance(got[1], dict)
        assert np.frombuffer(got[1]["t_ms"], dtype=np.int64).tolist() == [T0 + i * STEP for i in range(40)]


def test_a_file_that_grows_between_the_passes_is_data_changed(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    big_csv(path, 10)
    real_scan = loader._scan

    def scan_then_append(fh, shown, size):  # type: ignore[no-untyped-def]
        envelope = real_scan(fh, shown, size)
        with open(path, "ab") as out:
            out.write(b"%d,1,1,1,1,1\n" % (T0 + 99 * STEP))
        return envelope

    monkeypatch.setattr(loader, "_scan", scan_then_append)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert info.value.code == "DATA_CHANGED"
