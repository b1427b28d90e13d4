"""The dataset loader: every refusal with its code, line and field; what it accepts; properties."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treasure.data import (
    Bars,
    Duplicate,
    Gap,
    bars_to_csv,
    generate_bars,
    load_dataset,
    sha256_file,
)
from treasure.data import _parse, loader
from treasure.data.bars import COLUMNS
from treasure.errors import HINTS, DataError

HEADER = "t_ms,open,high,low,close,volume"
T0 = 1_767_225_600_000
STEP = 300_000


def row(
    i: int, o: str = "100.0", h: str = "101.0", lo: str = "99.0", c: str = "100.5", v: str = "10.0"
) -> str:
    return f"{T0 + i * STEP},{o},{h},{lo},{c},{v}"


GOOD_ROWS = [row(i) for i in range(5)]


def csv(*rows: str, header: str = HEADER, end: str = "\n") -> bytes:
    return (end.join([header, *rows]) + end).encode()


def write(tmp_path: Path, data: bytes | str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def refuse(path: Path, **kwargs: object) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)  # type: ignore[arg-type]
    err = info.value
    assert err.code in HINTS, err.code
    assert err.hint, f"{err.code} has no hint"
    assert err.path == kwargs.get("display_path", str(path))
    assert err.render().startswith(f"error[{err.code}]: ")
    return err


def with_row(line: int, text: str, rows: list[str] | None = None) -> bytes:
    """GOOD_ROWS with file line ``line`` (1-based, header is line 1) replaced by ``text``."""
    rows = list(GOOD_ROWS if rows is None else rows)
    rows[line - 2] = text
    return csv(*rows)


# ---------------------------------------------------------------------------------------------
# refusals that are about the file itself


def test_missing_path(tmp_path: Path) -> None:
    err = refuse(tmp_path / "nope.csv")
    assert (err.code, err.line, err.field) == ("DATA_MISSING", None, None)


def test_missing_parent_is_missing_too(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert refuse(tmp_path / "file" / "bars.csv").code == "DATA_MISSING"


def test_directory(tmp_path: Path) -> None:
    assert refuse(tmp_path).code == "DATA_IS_DIR"


def test_unreadable_file_is_data_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, csv(*GOOD_ROWS))

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(loader.os, "open", denied)
    err = refuse(path)
    assert err.code == "DATA_IO"
    assert "Permission denied" in err.message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_for_real(tmp_path: Path) -> None:
    path = write(tmp_path, csv(*GOOD_ROWS))
    path.chmod(0)
    try:
        assert refuse(path).code == "DATA_IO"
    finally:
        path.chmod(0o644)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert refuse(fifo).code == "DATA_IO"


def test_display_path_names_errors_and_dataset(tmp_path: Path) -> None:
    err = refuse(write(tmp_path, b""), display_path="data/bars.csv")
    assert err.path == "data/bars.csv"
    ds = load_dataset(write(tmp_path, csv(*GOOD_ROWS)), display_path="data/bars.csv")
    assert ds.path == "data/bars.csv"


@pytest.mark.parametrize(
    ("data", "code", "line"),
    [
        pytest.param(b"", "DATA_EMPTY", None, id="empty"),
        pytest.param(b"\xef\xbb\xbf", "DATA_EMPTY", None, id="bom-only"),
        pytest.param(b"\n\n", "DATA_EMPTY", None, id="blank-lines-only"),
        pytest.param(HEADER.encode(), "DATA_HEADER_ONLY", 1, id="header-only-no-newline"),
        pytest.param(HEADER.encode() + b"\n", "DATA_HEADER_ONLY", 1, id="header-only"),
        pytest.param(HEADER.encode() + b"\r\n", "DATA_HEADER_ONLY", 1, id="header-only-crlf"),
        pytest.param(csv(*GOOD_ROWS[:2]) + b"\x00\x00", "DATA_BINARY", 4, id="nul-bytes"),
        pytest.param(csv(GOOD_ROWS[0]) + b"17\xff,1,1,1,1,1\n", "DATA_BINARY", 3, id="invalid-utf8"),
        pytest.param(HEADER.encode("utf-16"), "DATA_BINARY", 1, id="utf-16"),
        pytest.param(bytes(range(256)) * 4, "DATA_BINARY", 1, id="binary-noise"),
    ],
)
def test_file_level_refusals(tmp_path: Path, data: bytes, code: str, line: int | None) -> None:
    err = refuse(write(tmp_path, data))
    assert (err.code, err.line) == (code, line)


def test_utf16_is_named(tmp_path: Path) -> None:
    assert "UTF-16" in refuse(write(tmp_path, csv(*GOOD_ROWS).decode().encode("utf-16"))).message


# ---------------------------------------------------------------------------------------------
# header


@pytest.mark.parametrize(
    ("header", "field", "words"),
    [
        pytest.param("t_ms,open,high,low,close", "volume", "lacks", id="missing-column"),
        pytest.param("t_ms,open,high,low,close,volume,vwap", "vwap", "unexpected", id="extra-column"),
        pytest.param("t_ms,high,open,low,close,volume", "open", "order", id="reordered"),
        pytest.param("t_ms,open,open,low,close,volume", "high", "lacks", id="repeated-column"),
        pytest.param("time,open,high,low,close,volume", "t_ms", "lacks", id="renamed"),
        pytest.param("t_ms, open, high, low, close, volume", None, "whitespace", id="spaces"),
        pytest.param("T_MS,OPEN,HIGH,LOW,CLOSE,VOLUME", None, "case", id="upper-case"),
        pytest.param("t_ms;open;high;low;close;volume", None, "comma", id="semicolons"),
        pytest.param(row(99), None, "missing", id="no-header"),
        pytest.param("", "t_ms", "lacks", id="empty-first-line"),
    ],
)
def test_header_refusals(tmp_path: Path, header: str, field: str | None, words: str) -> None:
    err = refuse(write(tmp_path, csv(*GOOD_ROWS, header=header)))
    assert (err.code, err.line, err.field) == ("DATA_HEADER", 1, field)
    assert words in err.message


def test_header_with_bom_and_crlf_is_fine(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, b"\xef\xbb\xbf" + csv(*GOOD_ROWS, end="\r\n")))
    assert len(ds) == 5


# ---------------------------------------------------------------------------------------------
# rows: shape, parsing, values


@pytest.mark.parametrize(
    ("line", "text", "code", "field"),
    [
        # shape
        pytest.param(3, f"{T0 + STEP},100.0,101.0,99.0", "DATA_SHORT_ROW", "close", id="short-row"),
        pytest.param(2, f"{T0}", "DATA_SHORT_ROW", "open", id="lone-value"),
        pytest.param(4, "", "DATA_SHORT_ROW", None, id="blank-line"),
        pytest.param(3, row(1) + ",7", "DATA_LONG_ROW", None, id="long-row"),
        pytest.param(5, row(3) + ",", "DATA_LONG_ROW", None, id="trailing-comma"),
        # parsing
        pytest.param(3, row(1, h=""), "DATA_PARSE", "high", id="empty-cell"),
        pytest.param(4, row(2, c="abc"), "DATA_PARSE", "close", id="text"),
        pytest.param(2, row(0, o="1;0"), "DATA_PARSE", "open", id="semicolon"),
        pytest.param(3, row(1, v="10.0.0"), "DATA_PARSE", "volume", id="two-dots"),
        pytest.param(3, row(1, v="."), "DATA_PARSE", "volume", id="lone-dot"),
        pytest.param(3, row(1, o=" 100.0"), "DATA_PARSE", "open", id="leading-space"),
        pytest.param(3, row(1, o="100.0 "), "DATA_PARSE", "open", id="trailing-space"),
        pytest.param(3, row(1, v="1_000"), "DATA_PARSE", "volume", id="digit-separator"),
        pytest.param(3, row(1, o="0x10"), "DATA_PARSE", "open", id="hex"),
        pytest.param(3, row(1, o="1e"), "DATA_PARSE", "open", id="bad-exponent"),
        pytest.param(3, row(1, o="１００"), "DATA_PARSE", "open", id="fullwidth-digits"),
        pytest.param(3, f"{T0 + STEP}.5,100,101,99,100,1", "DATA_PARSE", "t_ms", id="t-fraction"),
        pytest.param(3, f"{T0 + STEP}.0,100,101,99,100,1", "DATA_PARSE", "t_ms", id="t-dot-zero"),
        pytest.param(3, "1.7672259e12,100,101,99,100,1", "DATA_PARSE", "t_ms", id="t-exponent"),
        pytest.param(3, "2026-01-01,100,101,99,100,1", "DATA_PARSE", "t_ms", id="t-iso-date"),
        pytest.param(3, ",100,101,99,100,1", "DATA_PARSE", "t_ms", id="t-empty"),
        # non-finite
        pytest.param(3, row(1, o="nan"), "DATA_NAN", "open", id="nan"),
        pytest.param(3, row(1, h="inf"), "DATA_NAN", "high", id="inf"),
        pytest.param(3, row(1, lo="-Infinity"), "DATA_NAN", "low", id="minus-infinity"),
        pytest.param(3, row(1, v="NaN"), "DATA_NAN", "volume", id="nan-volume"),
        # sign
        pytest.param(4, row(2, o="0", lo="0"), "DATA_NONPOSITIVE_PRICE", "open", id="zero-open"),
        pytest.param(4, row(2, lo="-1"), "DATA_NONPOSITIVE_PRICE", "low", id="negative-low"),
        pytest.param(4, row(2, lo="-0.0"), "DATA_NONPOSITIVE_PRICE", "low", id="negative-zero"),
        pytest.param(4, row(2, v="-0.01"), "DATA_NEGATIVE_VOLUME", "volume", id="negative-volume"),
        # OHLC
        pytest.param(5, row(3, h="100.4"), "DATA_OHLC", "high", id="high-below-close"),
        pytest.param(5, row(3, h="99.9"), "DATA_OHLC", "high", id="high-below-open"),
        pytest.param(5, row(3, lo="100.2"), "DATA_OHLC", "low", id="low-above-open"),
        pytest.param(5, row(3, h="98", lo="99"), "DATA_OHLC", "high", id="high-below-low"),
        # absurd values
        pytest.param(3, row(1, h="2e12", c="1.5e12"), "DATA_RANGE", "high", id="price-above-1e12"),
        pytest.param(3, row(1, v="1000000000001"), "DATA_RANGE", "volume", id="volume-above-1e12"),
        pytest.param(3, row(1, h="1e999"), "DATA_RANGE", "high", id="float-overflow"),
        pytest.param(2, "-1,100,101,99,100,1", "DATA_RANGE", "t_ms", id="t-before-1970"),
        pytest.param(6, "10413792000000,100,101,99,100,1", "DATA_RANGE", "t_ms", id="t-year-2300"),
        pytest.param(6, "9007199254740993,100,101,99,100,1", "DATA_RANGE", "t_ms", id="t-above-2^53"),
        pytest.param(6, "1" + "0" * 30 + ",100,101,99,100,1", "DATA_RANGE", "t_ms", id="t-huge"),
        pytest.param(6, "1" * 5000 + ",100,101,99,100,1", "DATA_RANGE", "t_ms", id="t-5000-digits"),
        # order
        pytest.param(4, row(0), "DATA_UNSORTED", "t_ms", id="backwards"),
    ],
)
def test_row_refusals(tmp_path: Path, line: int, text: str, code: str, field: str | None) -> None:
    err = refuse(write(tmp_path, with_row(line, text)))
    assert (err.code, err.line, err.field) == (code, line, field), err.render()


def test_unsorted_names_both_lines(tmp_path: Path) -> None:
    err = refuse(write(tmp_path, with_row(4, row(0))))
    assert "line 3" in err.message and str(T0) in err.message


def test_year_2200_is_the_last_accepted(tmp_path: Path) -> None:
    last_ms = 7_289_654_399_999  # 2200-12-31T23:59:59.999Z
    load_dataset(write(tmp_path, csv(*GOOD_ROWS, f"{last_ms},100,101,99,100,1")))
    err = refuse(write(tmp_path, csv(*GOOD_ROWS, f"{last_ms + 1},100,101,99,100,1")))
    assert (err.code, err.line) == ("DATA_RANGE", 7)


def test_line_numbers_count_from_header_with_bom_and_crlf(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + with_row(5, row(3, c="x")).replace(b"\n", b"\r\n")
    err = refuse(write(tmp_path, data))
    assert (err.code, err.line, err.field) == ("DATA_PARSE", 5, "close")


def test_earliest_line_wins_across_kinds_of_error(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[1] = row(1, h="100.1")  # line 3: OHLC, found only after parsing
    rows[3] = row(3, c="oops")  # line 5: parse error
    err = refuse(write(tmp_path, csv(*rows)))
    assert (err.code, err.line) == ("DATA_OHLC", 3)
    rows[1] = row(1, v="nan")
    err = refuse(write(tmp_path, csv(*rows)))
    assert (err.code, err.line) == ("DATA_NAN", 3)


def test_first_rule_wins_within_a_row(tmp_path: Path) -> None:
    # volume is negative and high is below close: the sign rule is reported first.
    err = refuse(write(tmp_path, with_row(3, row(1, h="100.1", v="-1"))))
    assert (err.code, err.field) == ("DATA_NEGATIVE_VOLUME", "volume")


def test_error_deep_in_a_large_file(tmp_path: Path) -> None:
    bars = generate_bars(n_bars=50_000, seed=3)
    lines = bars_to_csv(bars).split(b"\n")
    lines[41_236] = lines[41_236].replace(b",", b",-", 1)  # negative open on file line 41237
    err = refuse(write(tmp_path, b"\n".join(lines)))
    assert (err.code, err.line, err.field) == ("DATA_NONPOSITIVE_PRICE", 41_237, "open")


# ---------------------------------------------------------------------------------------------
# what is accepted, and what the dataset records


def test_loads_bars_exactly(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, csv(*GOOD_ROWS)))
    assert len(ds) == len(ds.bars) == 5
    assert ds.bars.t_ms.dtype == np.int64 and ds.bars.close.dtype == np.float64
    assert ds.bars.t_ms.tolist() == [T0 + i * STEP for i in range(5)]
    assert ds.bars.close.tolist() == [100.5] * 5
    assert (ds.interval_ms, ds.gaps, ds.duplicates) == (STEP, (), ())


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda b: b.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda b: b"\xef\xbb\xbf" + b, id="bom"),
        pytest.param(lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"), id="bom-crlf"),
        pytest.param(lambda b: b[:-1], id="no-final-newline"),
        pytest.param(lambda b: b.replace(b"\n", b"\r\n")[:-2], id="crlf-no-final-newline"),
    ],
)
def test_line_endings_and_bom_are_transparent(
    tmp_path: Path, transform: Callable[[bytes], bytes]
) -> None:
    plain = csv(*GOOD_ROWS)
    expected = load_dataset(write(tmp_path, plain, "plain.csv"))
    data = transform(plain)
    got = load_dataset(write(tmp_path, data))
    assert got.bars == expected.bars
    assert got.sha256 == hashlib.sha256(data).hexdigest() != expected.sha256


def test_non_canonical_numerals_take_the_exact_path(tmp_path: Path) -> None:
    data = csv(f"+{T0},1.005e2,101,9.9E1,100.5,0", f"{T0 + STEP},100.123456789012345678,101,99,100.5,.5")
    ds = load_dataset(write(tmp_path, data))
    assert ds.bars.open.tolist() == [100.5, float("100.123456789012345678")]
    assert ds.bars.t_ms.tolist() == [T0, T0 + STEP]
    assert ds.bars.volume.tolist() == [0.0, 0.5]


def test_canonical_csv_never_touches_the_exact_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*args: object, **kwargs: object) -> None:
        raise AssertionError("the line-by-line parser ran on a canonical CSV")

    monkeypatch.setattr(_parse, "exact_parse", slow)
    monkeypatch.setattr(loader, "exact_rows", slow)  # the streaming loader's line-by-line path
    bars = generate_bars(n_bars=3000, seed=11, gaps=2, duplicates=2)
    ds = load_dataset(write(tmp_path, bars_to_csv(bars)))
    assert ds.bars == bars


def test_sha256(tmp_path: Path) -> None:
    data = csv(*GOOD_ROWS)
    path = write(tmp_path, data)
    expected = hashlib.sha256(data).hexdigest()
    assert load_dataset(path).sha256 == expected == sha256_file(path) == sha256_file(str(path))


def test_sha256_file_refuses_like_the_loader(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        sha256_file(tmp_path / "nope.csv")
    assert info.value.code == "DATA_MISSING"
    with pytest.raises(DataError) as info:
        sha256_file(tmp_path)
    assert info.value.code == "DATA_IS_DIR"


def test_gaps_and_duplicates(tmp_path: Path) -> None:
    t = [0, 1, 2, 2, 3, 6, 7, 7, 8, 10]
    rows = [f"{T0 + k * STEP},100,101,99,100,1" for k in t]
    ds = load_dataset(write(tmp_path, csv(*rows)))
    assert ds.interval_ms == STEP
    assert ds.gaps == (
        Gap(bar_idx=5, expected_t_ms=T0 + 4 * STEP, actual_t_ms=T0 + 6 * STEP),
        Gap(bar_idx=9, expected_t_ms=T0 + 9 * STEP, actual_t_ms=T0 + 10 * STEP),
    )
    assert ds.duplicates == (
        Duplicate(bar_idx=3, t_ms=T0 + 2 * STEP),
        Duplicate(bar_idx=7, t_ms=T0 + 7 * STEP),
    )
    # The loader keeps duplicates: dropping them is the engine's policy.
    assert len(ds) == len(t)


def test_interval_inference_ties_pick_the_smallest(tmp_path: Path) -> None:
    rows = [f"{t},100,101,99,100,1" for t in (0, 60_000, 120_000, 420_000, 720_000)]
    ds = load_dataset(write(tmp_path, csv(*rows)))
    assert ds.interval_ms == 60_000
    assert [g.bar_idx for g in ds.gaps] == [3, 4]


def test_interval_override(tmp_path: Path) -> None:
    rows = [f"{t},100,101,99,100,1" for t in (0, 60_000, 120_000, 420_000, 720_000)]
    ds = load_dataset(write(tmp_path, csv(*rows)), interval_ms=300_000)
    assert ds.interval_ms == 300_000 and ds.gaps == ()
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError):
            load_dataset(write(tmp_path, csv(*rows)), interval_ms=bad)  # type: ignore[arg-type]


def test_interval_cannot_be_inferred_from_one_timestamp(tmp_path: Path) -> None:
    assert load_dataset(write(tmp_path, csv(row(0)))).interval_ms is None
    ds = load_dataset(write(tmp_path, csv(row(0), row(0))))
    assert (ds.interval_ms, ds.gaps, ds.duplicates) == (None, (), (Duplicate(1, T0),))


@pytest.mark.parametrize("rows", [[row(0)], [row(0), row(0)], [row(0), row(0), row(0)]],
                         ids=["one-row", "two-duplicates", "three-duplicates"])
def test_a_run_refuses_fewer_than_two_distinct_bars(tmp_path: Path, rows: list[str]) -> None:
    err = refuse(write(tmp_path, csv(*rows)), min_distinct_bars=loader.MIN_DISTINCT_BARS)
    assert err.code == "DATA_TOO_SHORT"
    assert "at least 2 distinct bars" in err.message and f"{len(rows)} bar(s)" in err.message
    ok = load_dataset(write(tmp_path, csv(row(0), row(0), row(1))), min_distinct_bars=2)
    assert len(ok) == 3


def test_default_fixture_loads() -> None:
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "data" / "default_bars.csv"
    ds = load_dataset(fixture, display_path="fixtures/data/default_bars.csv")
    assert (len(ds), ds.interval_ms, len(ds.gaps), len(ds.duplicates)) == (8000, 300_000, 3, 1)
    assert ds.path == "fixtures/data/default_bars.csv"
    assert int(ds.bars.t_ms[0]) == T0


# ---------------------------------------------------------------------------------------------
# Bars


def test_bars_are_read_only_and_slice_without_copying(tmp_path: Path) -> None:
    bars = load_dataset(write(tmp_path, csv(*GOOD_ROWS))).bars
    for name in COLUMNS:
        with pytest.raises(ValueError):
            getattr(bars, name)[0] = 1
    with pytest.raises(AttributeError):
        bars.close = np.zeros(5)  # type: ignore[misc]
    part = bars.slice(1, 3)
    assert len(part) == 2 and part.t_ms.tolist() == bars.t_ms[1:3].tolist()
    assert np.shares_memory(part.close, bars.close)
    assert not part.close.flags.writeable
    assert len(bars.slice(3)) == 2 and len(bars.slice(None, -1)) == 4


def test_bars_copy_caller_arrays_and_check_shapes() -> None:
    close = np.array([1.0, 2.0])
    bars = Bars(np.array([1, 2]), close, close, close, close, close)
    close[0] = 9.0  # the caller's array stays theirs and writeable
    assert bars.close[0] == 1.0 and close.flags.writeable
    with pytest.raises(ValueError):
        Bars(np.array([1, 2]), close, close, close, close, close[:1])
    with pytest.raises(ValueError):
        Bars(np.array([1.5, 2.5]), close, close, close, close, close)


def test_bars_equality_and_pickle() -> None:
    bars = generate_bars(n_bars=50, seed=1)
    again = pickle.loads(pickle.dumps(bars))
    assert again == bars and again is not bars
    assert not again.close.flags.writeable
    assert bars != generate_bars(n_bars=50, seed=2)
    assert "n=50" in repr(bars)


# ---------------------------------------------------------------------------------------------
# properties

_settings = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data-props")


@st.composite
def synth_args(draw: st.DrawFn) -> dict[str, object]:
    n_bars = draw(st.integers(1, 400))
    extra = draw(st.integers(0, min(n_bars - 1, 8)))
    gaps = draw(st.integers(0, extra))
    return {
        "n_bars": n_bars,
        "seed": draw(st.integers(0, 2**63)),
        # not in 946_684_800..4_102_444_800: that band is 2000..2100 in *seconds*, refused as DATA_TIME_UNIT
        "start_ms": draw(st.one_of(st.integers(0, 946_684_799), st.integers(4_102_444_800, 4_000_000_000_000))),
        "interval_ms": draw(st.sampled_from([1, 1000, 60_000, 300_000, 3_600_000, 86_400_000])),
        "start_price": draw(st.floats(0.0001, 1e6)),
        "gaps": gaps,
        "duplicates": extra - gaps,
    }


@_settings
@given(args=synth_args())
def test_generated_bars_round_trip_exactly(scratch: Path, args: dict[str, object]) -> None:
    bars = generate_bars(**args)  # type: ignore[arg-type]
    data = bars_to_csv(bars)
    path = write(scratch, data, "roundtrip.csv")
    ds = load_dataset(path, interval_ms=args["interval_ms"])  # type: ignore[arg-type]
    assert ds.bars == bars
    assert ds.sha256 == hashlib.sha256(data).hexdigest()
    assert len(ds.gaps) == args["gaps"] and len(ds.duplicates) == args["duplicates"]
    assert bars_to_csv(ds.bars) == data


# At most 16 characters and 15 digits: the fast parser's envelope.
_NUMERAL = st.from_regex(r"\A[0-9]{1,8}(\.[0-9]{0,7})?\Z|\A\.[0-9]{1,8}\Z")


@_settings
@given(
    rows=st.lists(
        st.tuples(st.from_regex(r"\A[0-9]{1,16}\Z"), st.lists(_NUMERAL, min_size=5, max_size=5)),
        min_size=1,
        max_size=40,
    )
)
def test_fast_and_exact_parsers_agree(rows: list[tuple[str, list[str]]]) -> None:
    body = "\n".join(",".join([t, *vals]) for t, vals in rows).encode()
    fast = _parse.fast_parse(body)
    assert fast is not None
    assert fast.t_ms.tolist() == [int(t) for t, _ in rows]
    for j, name in enumerate(COLUMNS[1:]):
        assert getattr(fast, name).tolist() == [float(vals[j]) for _, vals in rows]


def _check_refusal(err: DataError, data: bytes) -> None:
    assert err.code.startswith("DATA_") and err.code in HINTS
    n_lines = data.count(b"\n") + 1
    assert err.line is None or 1 <= err.line <= n_lines
    if err.code != "DATA_HEADER":
        assert err.field is None or err.field in COLUMNS
    err.render()


@_settings
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_only_ever_raise_data_error(scratch: Path, data: bytes) -> None:
    path = write(scratch, data, "fuzz.csv")
    try:
        load_dataset(path)
    except DataError as err:
        _check_refusal(err, data)


_INSERTS = [b",", b"\n", b"nan", b"-", b"1e400", b"  ", b"\xef\xbb\xbf", b"9" * 25]


@st.composite
def mutated_csv(draw: st.DrawFn) -> bytes:
    bars = generate_bars(n_bars=draw(st.integers(1, 12)), seed=draw(st.integers(0, 50)))
    text = bytearray(bars_to_csv(bars))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "delete", "insert", "swap-lines", "dup-line", "crlf"]))
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        if op == "replace" and text:
            text[at] = draw(st.sampled_from(b",.\n-+eE0 9aN\r\x00\xff"))
        elif op == "delete" and text:
            del text[at]
        elif op == "insert":
            text[at:at] = draw(st.sampled_from(_INSERTS))
        elif op in ("swap-lines", "dup-line"):
            lines = bytes(text).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            k = draw(st.integers(0, len(lines) - 1))
            if op == "swap-lines":
                lines[i], lines[k] = lines[k], lines[i]
            else:
                lines.insert(k, lines[i])
            text = bytearray(b"\n".join(lines))
        elif op == "crlf":
            text = bytearray(bytes(text).replace(b"\n", b"\r\n"))
    return bytes(text)


@_settings
@given(data=mutated_csv())
def test_mutated_csv_only_ever_raises_data_error(scratch: Path, data: bytes) -> None:
    path = write(scratch, data, "mutated.csv")
    try:
        ds = load_dataset(path)
    except DataError as err:
        _check_refusal(err, data)
    else:
        # Whatever was accepted really satisfies the rules.
        b = ds.bars
        assert (np.diff(b.t_ms) >= 0).all()
        assert (b.high >= np.maximum(b.open, b.close)).all()
        assert (b.low <= np.minimum(b.open, b.close)).all()
        assert (b.low > 0).all() and (b.volume >= 0).all()
