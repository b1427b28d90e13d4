"""Synthetic bars: byte determinism, validity after rounding, requested gaps and duplicates."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treasure.data import Bars, bars_to_csv, generate_bars, load_dataset
from treasure.data import synth

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "data" / "default_bars.csv"
#: Pinned on purpose: changing the generator changes every golden output built on the fixture.
FIXTURE_SHA256 = "3c47d0989243ca8c4ad4ef0230bcacf232eb3ccd3f6e915580ba3c636cb09f72"

DEFAULTS = dict(
    n_bars=synth.DEFAULT_N_BARS,
    seed=synth.DEFAULT_SEED,
    start_ms=synth.DEFAULT_START_MS,
    interval_ms=synth.DEFAULT_INTERVAL_MS,
    gaps=synth.DEFAULT_GAPS,
    duplicates=synth.DEFAULT_DUPLICATES,
)


def assert_valid(bars: Bars) -> None:
    assert (np.diff(bars.t_ms) >= 0).all()
    assert (bars.open > 0).all() and (bars.low > 0).all()
    assert (bars.high >= np.maximum(bars.open, bars.close)).all()
    assert (bars.low <= np.minimum(bars.open, bars.close)).all()
    assert (bars.volume >= 0).all()
    for name in ("open", "high", "low", "close"):
        values = getattr(bars, name)
        assert all(float(f"{x:.4f}") == x for x in values.tolist()), f"{name} not on 4 decimals"
    assert all(float(f"{x:.2f}") == x for x in bars.volume.tolist())


def test_same_arguments_same_bytes() -> None:
    a = bars_to_csv(generate_bars(n_bars=2000, seed=42, gaps=2, duplicates=3))
    b = bars_to_csv(generate_bars(n_bars=2000, seed=42, gaps=2, duplicates=3))
    assert a == b


def test_same_bytes_in_another_process_and_hash_seed(tmp_path: Path) -> None:
    out = tmp_path / "bars.csv"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "treasure.data.synth", "--out", str(out), "--n-bars", "1500",
         "--seed", "9", "--gaps", "2", "--duplicates", "1"],
        check=True, env=env, cwd=tmp_path, capture_output=True,
    )
    assert out.read_bytes() == bars_to_csv(generate_bars(n_bars=1500, seed=9, gaps=2, duplicates=1))


def test_different_seeds_differ() -> None:
    a = generate_bars(n_bars=500, seed=1)
    b = generate_bars(n_bars=500, seed=2)
    assert a != b
    assert not np.array_equal(a.close, b.close)
    assert np.array_equal(a.t_ms, b.t_ms)  # same grid, different prices


def test_fixture_is_the_default_generation() -> None:
    data = FIXTURE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == FIXTURE_SHA256
    assert bars_to_csv(generate_bars(**DEFAULTS)) == data  # type: ignore[arg-type]


def test_fixture_shape() -> None:
    ds = load_dataset(FIXTURE)
    assert ds.sha256 == FIXTURE_SHA256
    assert (len(ds), ds.interval_ms, len(ds.gaps), len(ds.duplicates)) == (8000, 300_000, 3, 1)
    assert int(ds.bars.t_ms[0]) == 1_767_225_600_000
    # An SMA(10)/SMA(30) crossover has plenty to do.
    close = ds.bars.close
    fast = np.convolve(close, np.ones(10) / 10, "valid")[20:]
    slow = np.convolve(close, np.ones(30) / 30, "valid")
    crossings = int((np.diff(np.sign(fast - slow)) != 0).sum())
    assert crossings >= 36


@pytest.mark.parametrize("seed", [0, 1, 7, 20260101, 2**40 + 3])
def test_validations_hold_after_rounding(seed: int) -> None:
    bars = generate_bars(n_bars=3000, seed=seed, gaps=3, duplicates=2)
    assert len(bars) == 3000
    assert_valid(bars)


def test_tiny_and_large_prices_stay_valid() -> None:
    assert_valid(generate_bars(n_bars=500, seed=5, start_price=0.0001))
    assert_valid(generate_bars(n_bars=500, seed=5, start_price=0.0137))
    assert_valid(generate_bars(n_bars=500, seed=5, start_price=1e8))


@settings(max_examples=60, deadline=None)
@given(
    n_bars=st.integers(2, 600),
    seed=st.integers(0, 2**32),
    gaps=st.integers(0, 6),
    duplicates=st.integers(0, 6),
    interval_ms=st.sampled_from([1, 60_000, 300_000, 86_400_000]),
)
def test_requested_gaps_and_duplicates_are_present(
    n_bars: int, seed: int, gaps: int, duplicates: int, interval_ms: int
) -> None:
    gaps = min(gaps, n_bars - 1)
    duplicates = min(duplicates, n_bars - 1 - gaps)
    bars = generate_bars(n_bars=n_bars, seed=seed, interval_ms=interval_ms, gaps=gaps, duplicates=duplicates)
    steps = np.diff(bars.t_ms)
    assert len(bars) == n_bars
    assert int((steps == 0).sum()) == duplicates
    assert int((steps > interval_ms).sum()) == gaps
    assert set(np.unique(steps).tolist()) <= {0, interval_ms} | set(steps[steps > interval_ms].tolist())
    assert ((steps[steps > interval_ms] % interval_ms) == 0).all()
    assert int(bars.t_ms[0]) == synth.DEFAULT_START_MS
    assert_valid(bars)


def test_gaps_cut_stretches_and_duplicates_repeat_once() -> None:
    bars = generate_bars(n_bars=8000, seed=3, gaps=4, duplicates=2)
    steps = np.diff(bars.t_ms) // synth.DEFAULT_INTERVAL_MS
    missing = steps[steps > 1] - 1
    assert len(missing) == 4 and ((missing >= 1) & (missing <= 36)).all()
    dup_idx = np.flatnonzero(steps == 0) + 1
    assert len(dup_idx) == 2
    # Once: the bar after a duplicate moves on.
    assert all(bars.t_ms[i + 1] > bars.t_ms[i] for i in dup_idx if i + 1 < len(bars))


def test_prices_before_the_first_gap_do_not_depend_on_layout() -> None:
    plain = generate_bars(n_bars=1000, seed=8)
    gapped = generate_bars(n_bars=1000, seed=8, gaps=2, duplicates=1)
    first = int((np.flatnonzero(np.diff(gapped.t_ms) != synth.DEFAULT_INTERVAL_MS) + 1)[0])
    assert gapped.slice(0, first) == plain.slice(0, first)


def test_regimes_change_the_character_of_the_walk() -> None:
    close = generate_bars(n_bars=8000, seed=synth.DEFAULT_SEED).close
    returns = np.diff(close) / close[:-1]
    vol = [float(np.std(returns[k : k + 200])) for k in range(0, len(returns) - 200, 200)]
    assert max(vol) > 2.5 * min(vol)  # volatile regimes stand out from ranging ones
    drift = [float(close[k + 300] / close[k]) for k in range(0, len(close) - 300, 300)]
    assert max(drift) > 1.03 and min(drift) < 0.97  # trends go both ways


def test_csv_format() -> None:
    bars = generate_bars(n_bars=3, seed=1, start_price=12.3)
    lines = bars_to_csv(bars).decode("ascii").split("\n")
    assert lines[0] == "t_ms,open,high,low,close,volume"
    assert lines[-1] == "" and len(lines) == 5
    assert lines[1].startswith("1767225600000,12.3000,")
    for line in lines[1:-1]:
        t, *prices, volume = line.split(",")
        assert t.isdigit()
        assert all(len(p.split(".")[1]) == 4 for p in prices)
        assert len(volume.split(".")[1]) == 2
    assert b"\r" not in bars_to_csv(bars)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_bars=0, seed=1),
        dict(n_bars=10, seed=-1),
        dict(n_bars=10, seed=1.5),
        dict(n_bars=10, seed=1, gaps=5, duplicates=5),
        dict(n_bars=10, seed=1, gaps=-1),
        dict(n_bars=10, seed=1, interval_ms=0),
        dict(n_bars=10, seed=1, start_price=0.0),
        dict(n_bars=10, seed=1, start_price=float("nan")),
        dict(n_bars=10, seed=1, start_price=1e9),
        dict(n_bars=10, seed=1, start_ms=7_289_654_400_000),
        dict(n_bars=True, seed=1),
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate_bars(**kwargs)  # type: ignore[arg-type]


def test_cli_writes_file_and_prints_sha(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bars.csv"
    assert synth.main(["--out", str(out), "--n-bars", "100", "--seed", "4", "--gaps", "1"]) == 0
    data = out.read_bytes()
    assert hashlib.sha256(data).hexdigest() in capsys.readouterr().out
    assert load_dataset(out).gaps[0].bar_idx > 0
    assert not (tmp_path / "bars.csv.tmp").exists()


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        synth.main(["--out", str(tmp_path / "x.csv"), "--n-bars", "0"])
    assert info.value.code == 2
