"""Seeded synthetic bars: the embedded default dataset and the raw material of property tests.

Byte-for-byte reproducibility on any machine is the point, so the walk uses only what IEEE 754,
NumPy and CPython pin down exactly: the raw output of a PCG64 bit generator (NumPy keeps
bit-generator streams fixed across releases, unlike ``Generator`` methods such as ``choice``,
whose algorithms may change), integer arithmetic, +, -, *, / on doubles, and ``round``/``format``
(CPython's own correctly rounded dtoa). No exp/log/sin, whose last bit depends on the libm or
numpy's SIMD kernels, and no float reductions whose summation order numpy may change. Normal-ish
shocks are Irwin-Hall sums of twelve uniforms.

Prices are rounded to 4 decimals and volume to 2 *inside* the walk, so the returned Bars are
exactly what ``bars_to_csv`` writes and ``load_dataset`` reads back, and every OHLC rule holds
after rounding.

``python -m treasure.data.synth --out fixtures/data/default_bars.csv`` regenerates the fixture.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from treasure.data._parse import MAX_VALUE, T_END_MS
from treasure.data.bars import COLUMNS, Bars

#: Arguments of the embedded default dataset (fixtures/data/default_bars.csv).
DEFAULT_N_BARS = 8000
DEFAULT_SEED = 20260101
DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DEFAULT_INTERVAL_MS = 300_000  # 5 minutes
DEFAULT_GAPS = 3
DEFAULT_DUPLICATES = 1

#: Regime -> (drift per bar, shock scale per bar, volume multiplier).
REGIMES: dict[str, tuple[float, float, float]] = {
    "trend_up": (0.00025, 0.0015, 1.0),
    "range": (0.0, 0.0010, 0.7),
    "trend_down": (-0.00025, 0.0015, 1.1),
    "volatile": (0.0, 0.0040, 2.2),
}
_KINDS = tuple(REGIMES)
_REGIME_BARS = (150, 500)  # a regime lasts this many walk steps (inclusive bounds)
_GAP_BARS = (1, 36)  # a gap removes this many bars (5 min .. 3 h at the default interval)
_RANGE_PULL = 0.02  # mean reversion per bar towards the price the ranging regime started at
_BASE_VOLUME = 1000.0
_TICK = 0.0001
_MAX_START_PRICE = 1e8  # leaves room for the walk below the loader's sanity limit


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class _Stream:
    """Uniform doubles and bounded ints computed from PCG64's raw 64-bit words, by us."""

    def __init__(self, seed: np.random.SeedSequence) -> None:
        self._bits = np.random.PCG64(seed)

    def uniforms(self, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
        """Exact multiples of 2**-53 in [0, 1): the top 53 bits of each word."""
        raw = self._bits.random_raw(shape)
        return (raw >> np.uint64(11)).astype(np.float64) * (2.0**-53)

    def below(self, n: int) -> int:
        """An int in [0, n) (multiply-shift; the bias is below 2**-40 for the sizes used here)."""
        return (int(self._bits.random_raw()) * n) >> 64

    def between(self, low: int, high: int) -> int:
        """An int in [low, high], both inclusive."""
        return low + self.below(high - low + 1)


def _streams(seed: int) -> tuple[_Stream, _Stream, _Stream]:
    """Independent streams for layout, regimes and shocks.

    Separate streams keep the walk of the first bars identical whatever gaps or duplicates are
    asked for, so adding a gap to a test dataset does not change the prices before it.
    """
    layout, regimes, shocks = np.random.SeedSequence(seed).spawn(3)
    return _Stream(layout), _Stream(regimes), _Stream(shocks)


def generate_bars(
    *,
    n_bars: int,
    seed: int,
    start_ms: int = DEFAULT_START_MS,
    interval_ms: int = DEFAULT_INTERVAL_MS,
    start_price: float = 100.0,
    gaps: int = 0,
    duplicates: int = 0,
) -> Bars:
    """A seeded regime-switching random walk of ``n_bars`` OHLCV bars.

    ``gaps`` stretches of 1..36 bars are cut out (the walk goes on underneath, so prices jump
    across a gap as they would in a feed outage); ``duplicates`` bars carry the timestamp of the
    bar before them (a fresh bar, as a revised print would be). Both sit at distinct random
    positions after the first bar.
    """
    n_bars = _check_int("n_bars", n_bars, 1)
    seed = _check_int("seed", seed, 0)
    start_ms = _check_int("start_ms", start_ms, 0)
    interval_ms = _check_int("interval_ms", interval_ms, 1)
    gaps = _check_int("gaps", gaps, 0)
    duplicates = _check_int("duplicates", duplicates, 0)
    start_price = float(start_price)
    if not _TICK <= start_price <= _MAX_START_PRICE:
        raise ValueError(f"start_price must be within [{_TICK}, {_MAX_START_PRICE:g}], got {start_price!r}")
    if gaps + duplicates > n_bars - 1:
        raise ValueError(f"gaps + duplicates must be <= n_bars - 1 = {n_bars - 1}")

    layout_rng, regime_rng, shock_rng = _streams(seed)

    # Layout: which output bars follow a gap or repeat a timestamp, in walk steps and grid slots.
    # Distinct positions in 1..n_bars-1 by a partial Fisher-Yates shuffle.
    pool = list(range(1, n_bars))
    for i in range(gaps + duplicates):
        j = i + layout_rng.below(len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    gap_at = {p: 0 for p in pool[:gaps]}
    for p in sorted(gap_at):
        gap_at[p] = layout_rng.between(*_GAP_BARS)
    dup_at = set(pool[gaps : gaps + duplicates])
    slots = [0] * n_bars
    keep_step = [0] * n_bars
    for i in range(1, n_bars):
        skipped = gap_at.get(i, 0)
        slots[i] = slots[i - 1] + (0 if i in dup_at else 1 + skipped)
        keep_step[i] = keep_step[i - 1] + 1 + skipped
    last_t = start_ms + slots[-1] * interval_ms
    if last_t >= T_END_MS:
        raise ValueError(f"the bars would run past year 2200 (last t_ms {last_t})")
    steps = keep_step[-1] + 1

    # Shocks, drawn up front; sums done column by column (elementwise, so order is fixed).
    u = shock_rng.uniforms((steps, 15))
    z = u[:, 0].copy()
    for j in range(1, 12):
        z += u[:, j]
    z -= 6.0
    shock = z.tolist()
    wick_up = u[:, 12].tolist()
    wick_down = u[:, 13].tolist()
    vol_noise = u[:, 14].tolist()

    kind_idx = regime_rng.below(len(_KINDS))
    regime_end = regime_rng.between(*_REGIME_BARS)
    close = round(start_price, 4)
    anchor = close
    walk: list[tuple[float, float, float, float, float]] = []
    for step in range(steps):
        if step == regime_end:
            draw = regime_rng.between(1, len(_KINDS) - 1)
            if close < 0.6 * start_price:
                kind_idx = _KINDS.index("trend_up")  # keep long walks in a sane band
            elif close > 1.6 * start_price:
                kind_idx = _KINDS.index("trend_down")
            else:
                kind_idx = (kind_idx + draw) % len(_KINDS)  # always a different regime
            regime_end = step + regime_rng.between(*_REGIME_BARS)
            anchor = close
        kind = _KINDS[kind_idx]
        drift, sigma, vol_mult = REGIMES[kind]
        o = close
        if kind == "range":
            drift = _RANGE_PULL * (anchor - o) / o
        r = min(max(drift + sigma * shock[step], -0.2), 0.2)
        c = max(round(o * (1.0 + r), 4), _TICK)
        top, bottom = max(o, c), min(o, c)
        reach_up = sigma * (0.15 + 1.2 * wick_up[step] * wick_up[step])
        reach_down = sigma * (0.15 + 1.2 * wick_down[step] * wick_down[step])
        h = max(round(top * (1.0 + reach_up), 4), top)
        lo = min(max(round(bottom * (1.0 - reach_down), 4), _TICK), bottom)
        size = abs(shock[step])
        v = round(_BASE_VOLUME * vol_mult * (0.5 + vol_noise[step]) * (1.0 + 0.8 * size), 2)
        walk.append((o, h, lo, c, v))
        close = c

    rows = [walk[s] for s in keep_step]
    t = np.array([start_ms + s * interval_ms for s in slots], dtype=np.int64)
    cols = np.array(rows, dtype=np.float64).reshape(n_bars, 5)
    if float(cols.max()) > MAX_VALUE:
        raise ValueError("the walk left the loader's sanity range; lower start_price")
    return Bars(t, cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4])


def bars_to_csv(bars: Bars) -> bytes:
    """The canonical CSV: prices with 4 decimals, volume with 2, '\\n' endings, final newline.

    Python's own float formatting (not numpy's, not the C library's) keeps the bytes identical on
    every platform.
    """
    cols = [getattr(bars, name).tolist() for name in COLUMNS]
    lines = [",".join(COLUMNS)]
    lines.extend(
        f"{t},{o:.4f},{h:.4f},{lo:.4f},{c:.4f},{v:.2f}" for t, o, h, lo, c, v in zip(*cols)
    )
    lines.append("")
    return "\n".join(lines).encode("ascii")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m treasure.data.synth",
        description="Write a seeded synthetic bars CSV (defaults: the embedded default dataset).",
    )
    parser.add_argument("--out", required=True, help="CSV file to write ('-' for stdout)")
    parser.add_argument("--n-bars", type=int, default=DEFAULT_N_BARS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--start-ms", type=int, default=DEFAULT_START_MS)
    parser.add_argument("--interval-ms", type=int, default=DEFAULT_INTERVAL_MS)
    parser.add_argument("--start-price", type=float, default=100.0)
    parser.add_argument("--gaps", type=int, default=DEFAULT_GAPS)
    parser.add_argument("--duplicates", type=int, default=DEFAULT_DUPLICATES)
    args = parser.parse_args(argv)
    try:
        bars = generate_bars(
            n_bars=args.n_bars,
            seed=args.seed,
            start_ms=args.start_ms,
            interval_ms=args.interval_ms,
            start_price=args.start_price,
            gaps=args.gaps,
            duplicates=args.duplicates,
        )
    except ValueError as exc:
        parser.error(str(exc))
    data = bars_to_csv(bars)
    if args.out == "-":
        sys.stdout.buffer.write(data)
    else:
        tmp = f"{args.out}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, args.out)
    summary = f"sha256 {hashlib.sha256(data).hexdigest()}  bars {len(bars)}  {args.out}"
    print(summary, file=sys.stderr if args.out == "-" else sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
