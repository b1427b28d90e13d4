"""Hypothesis strategies for Treasure (internal module; import :mod:`treasure.hunt.strategies`).

Bars, datasets, SSOTs, intents and event logs. Public API, in the style of ``hypothesis.strategies``: every function takes keyword-only
arguments, validates them eagerly (a bad argument raises
:class:`hypothesis.errors.InvalidArgument` when the strategy is built, not deep inside a test) and
returns a ``SearchStrategy``. Values are *constructed* valid rather than filtered: prices are
integer ticks of 0.0001 walked with integer basis-point moves, so every OHLC rule holds exactly,
the CSV round-trips byte for byte and nothing is rejected. Sizes are drawn first and every draw
shrinks towards "nothing special" (flat prices, no gap, the default policies), so a failing case
shrinks to a handful of plain bars with only the feature that matters left in it.

>>> from hypothesis import given
>>> from treasure.hunt.strategies import datasets
>>> @given(datasets(max_bars=30, gaps=2))
... def test_loader_sees_the_gaps(ds): ...

The broken variants (:func:`broken_datasets`, :func:`broken_event_streams`) apply exactly one
targeted corruption and say which stable error code (and line) the reader must answer with.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from treasure.data import Bars, bars_to_csv
from treasure.data._parse import T_END_MS
from treasure.hunt.case import DATASET_PATH, Case, GeneratedDataset

__all__ = [
    "BROKEN_DATASET_KINDS",
    "BROKEN_EVENT_KINDS",
    "BrokenDataset",
    "BrokenEventStream",
    "EventStream",
    "bars",
    "broken_datasets",
    "broken_event_streams",
    "cases",
    "datasets",
    "event_streams",
    "intents",
    "ssot_configs",
]

#: 2026-01-01T00:00:00Z: generated series start on this day (plus a drawn offset).
BASE_MS = 1_767_225_600_000
DAY_MS = 86_400_000
#: Bar sizes drawn when none is given; the first is what failures shrink to.
INTERVALS_MS = (60_000, 300_000, 3_600_000, 86_400_000)
_TICKS = 10_000  # prices are integer multiples of 0.0001
_MAX_TICKS = 10**14  # 1e10 in price: far from the loader's 1e12 sanity limit, exact in CSV
_MAX_GAP_BARS = 48
#: Regime -> (largest fall, largest rise, largest wick), in bps per bar. A trend is a lopsided
#: range rather than a drift, so a zero draw is a flat bar in every regime: what shrinking reaches.
REGIMES: dict[str, tuple[int, int, int]] = {
    "range": (-30, 30, 20),
    "trend_up": (-15, 40, 30),
    "trend_down": (-40, 15, 30),
    "volatile": (-400, 400, 200),
}
OUTLIER_KINDS = ("spike_up", "spike_down", "jump_up", "jump_down", "volume")


# ------------------------------------------------------------------------------------------
# argument validation (eager, with the argument's name in the message)


def _check_int(name: str, value: Any, *, min_value: int = 0, max_value: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}={value!r} must be an int")
    if value < min_value:
        raise InvalidArgument(f"{name}={value!r} must be >= {min_value}")
    if max_value is not None and value > max_value:
        raise InvalidArgument(f"{name}={value!r} must be <= {max_value}")
    return value


def _check_count(name: str, value: Any) -> int:
    """``gaps=True`` means "a few", ``False`` none, an int at most that many."""
    if value is True:
        return 3
    if value is False or value is None:
        return 0
    return _check_int(name, value, max_value=10_000)


def _check_sizes(min_bars: Any, max_bars: Any, *, floor: int = 1) -> tuple[int, int]:
    min_bars = _check_int("min_bars", min_bars, min_value=floor)
    max_bars = _check_int("max_bars", max_bars, min_value=floor, max_value=10_000)
    if min_bars > max_bars:
        raise InvalidArgument(f"min_bars={min_bars} must be <= max_bars={max_bars}")
    return min_bars, max_bars


def _check_interval(interval_ms: Any) -> int | None:
    if interval_ms is None:
        return None
    return _check_int("interval_ms", interval_ms, min_value=1, max_value=604_800_000)


# ------------------------------------------------------------------------------------------
# bars and datasets


def _price_ticks(mantissa: int, exponent: int) -> int:
    """``mantissa`` (1.0000 .. 9.9999 as 10000 .. 99999) times 10**exponent, in ticks."""
    return mantissa * 10**exponent if exponent >= 0 else max(1, mantissa // 10 ** (-exponent))


def _scale(value: int, bps: int, unit: int = _TICKS) -> int:
    """``value * bps / unit`` rounded towards zero, in exact integer arithmetic."""
    product = value * bps
    return product // unit if product >= 0 else -((-product) // unit)


@st.composite
def _datasets(draw: Callable[[SearchStrategy[Any]], Any], *, min_bars: int, max_bars: int, gaps: int,
              duplicates: int, outliers: int, regimes: bool, interval_ms: int | None) -> GeneratedDataset:
    n = draw(st.integers(min_bars, max_bars))  # the size first: shrinking it drops bars from the end
    interval = interval_ms if interval_ms is not None else draw(st.sampled_from(INTERVALS_MS))
    offset = draw(st.integers(0, max(0, DAY_MS // interval - 1))) * interval
    start_ticks = _price_ticks(draw(st.integers(10_000, 99_999)),
                               draw(st.sampled_from((2, 0, 1, 3, 4, -1, -2, 5))))
    positions = list(range(1, n))
    gap_at: dict[int, int] = {}
    if gaps and positions:
        chosen = draw(st.lists(st.sampled_from(positions), unique=True, max_size=min(gaps, len(positions))))
        # bars that can go missing before the series would run past the loader's last valid t_ms
        room = (T_END_MS - 1 - BASE_MS - offset) // interval - (n - 1)
        longest = max(1, min(_MAX_GAP_BARS, room // max(1, len(chosen))))
        for p in sorted(chosen):
            gap_at[p] = draw(st.integers(1, longest))
    free = [p for p in positions if p not in gap_at]
    dup_at: list[int] = []
    # a duplicate repeats the previous bar's time: keep two distinct bars at least, since a run needs
    # them (the loader refuses fewer with DATA_TOO_SHORT, so a case would test only that refusal)
    most = min(duplicates, len(free), max(0, n - 2))
    if most and free:
        dup_at = sorted(draw(st.lists(st.sampled_from(free), unique=True, max_size=most)))
    outlier_at: dict[int, tuple[str, int]] = {}
    if outliers:
        chosen = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(outliers, n)))
        for p in sorted(chosen):
            outlier_at[p] = (draw(st.sampled_from(OUTLIER_KINDS)), draw(st.sampled_from((2, 5, 20))))
    regime_at: list[tuple[int, str]] = [(0, "range")]
    if regimes:
        regime_at[0] = (0, draw(st.sampled_from(tuple(REGIMES))))
        if positions:
            switches = draw(st.lists(st.sampled_from(positions), unique=True, max_size=min(3, len(positions))))
            for p in sorted(switches):
                regime_at.append((p, draw(st.sampled_from(tuple(REGIMES)))))

    # then one (move, wick) pair per bar, in hundredths of the bar's regime's range, so the draws do
    # not depend on the regimes: zero is a flat bar whatever the regime
    unit = st.integers(-100, 100)
    wick_units = st.integers(0, 100)
    t_ms: list[int] = []
    rows: list[tuple[int, int, int, int, int]] = []
    close = start_ticks
    dups = set(dup_at)
    regime_idx = 0
    t = BASE_MS + offset
    for i in range(n):
        if i:
            t = t if i in dups else t + interval * (1 + gap_at.get(i, 0))
        t_ms.append(t)
        while regime_idx + 1 < len(regime_at) and regime_at[regime_idx + 1][0] <= i:
            regime_idx += 1
        fall, rise, max_wick = REGIMES[regime_at[regime_idx][1]]
        step, wick_unit = draw(unit), draw(wick_units)
        move = _scale(step, rise if step > 0 else -fall, 100)
        wick_up = wick_unit * max_wick // 100  # one draw for both wicks: cheaper to generate and to shrink
        wick_down = (wick_up * 7) % (max_wick + 1)
        volume = 100_000 + 5_000 * abs(move)  # hundredths; the engine only reports volume, so no draw
        o = close
        c = min(max(1, o + _scale(o, move)), _MAX_TICKS)
        kind, factor = outlier_at.get(i, ("", 1))
        if kind == "jump_up":
            c = min(c * factor, _MAX_TICKS)
        elif kind == "jump_down":
            c = max(1, c // factor)
        top, bottom = max(o, c), min(o, c)
        h = min(top + _scale(top, wick_up), _MAX_TICKS)
        lo = max(1, bottom - _scale(bottom, wick_down))
        if kind == "spike_up":
            h = min(h * factor, _MAX_TICKS)
        elif kind == "spike_down":
            lo = max(1, lo // factor)
        elif kind == "volume":
            volume *= 1000
        rows.append((o, h, lo, c, volume))
        close = c
    import numpy as np

    def column(k: int, unit: int) -> Any:
        return np.array([r[k] / unit for r in rows], dtype=np.float64)

    bars = Bars(np.array(t_ms, dtype=np.int64), column(0, _TICKS), column(1, _TICKS), column(2, _TICKS),
                column(3, _TICKS), column(4, 100))
    return GeneratedDataset(
        bars=bars, csv=bars_to_csv(bars), interval_ms=interval, gaps=tuple(sorted(gap_at)),
        duplicates=tuple(dup_at), outliers=tuple((i, kind) for i, (kind, _) in sorted(outlier_at.items())),
        regimes=tuple(regime_at))


def datasets(*, min_bars: int = 1, max_bars: int = 60, gaps: int | bool = 0, duplicates: int | bool = 0,
             outliers: int | bool = 0, regimes: bool = False,
             interval_ms: int | None = None) -> SearchStrategy[GeneratedDataset]:
    """Valid OHLCV datasets as :class:`~treasure.hunt.case.GeneratedDataset`.

    ``.bars`` (:class:`treasure.data.Bars`), ``.csv`` (the canonical file bytes, which
    ``treasure.data.load_dataset`` reads back to exactly ``.bars``), ``.sha256`` and what was
    injected: ``gaps`` up to that many gaps of 1..48 missing bars, ``duplicates`` up to that many
    repeated timestamps, ``outliers`` up to that many spikes, level jumps or volume bursts, and
    ``regimes=True`` switches between trending, ranging and volatile stretches. ``True`` for a
    count means "a few" (3). ``interval_ms`` fixes the bar size (default: drawn, shrinking to 1
    minute). Series start on 2026-01-01 at a drawn time of day, so some cross UTC midnight.
    """
    min_bars, max_bars = _check_sizes(min_bars, max_bars)
    if not isinstance(regimes, bool):
        raise InvalidArgument(f"regimes={regimes!r} must be a bool")
    return _datasets(min_bars=min_bars, max_bars=max_bars, gaps=_check_count("gaps", gaps),
                     duplicates=_check_count("duplicates", duplicates), outliers=_check_count("outliers", outliers),
                     regimes=regimes, interval_ms=_check_interval(interval_ms))


def bars(*, min_bars: int = 1, max_bars: int = 60, regimes: bool = False,
         interval_ms: int | None = None) -> SearchStrategy[Bars]:
    """Valid, regularly spaced OHLCV :class:`treasure.data.Bars` (no gap, no duplicate).

    Prices sit on the CSV's 0.0001 grid and volumes on its 0.01 grid, so ``bars_to_csv`` and
    ``load_dataset`` round-trip them exactly. Use :func:`datasets` for gaps, duplicates, outliers
    and the CSV bytes.
    """
    return datasets(min_bars=min_bars, max_bars=max_bars, regimes=regimes, interval_ms=interval_ms).map(
        lambda ds: ds.bars)


# ------------------------------------------------------------------------------------------
# SSOT documents

#: SSOT sections no generated run needs to vary (recon only matters to dry-run reconciliation).
_RECON = {"price_tolerance_bps": 5, "fee_tolerance_abs_usd": 0.01, "fee_tolerance_rel": 0.001,
          "time_window_ms": 600_000, "max_mismatches": 10}
_QTY_STEPS = (1e-06, 1e-08, 0.0001, 0.01, 1.0)
_BUILTINS = ("sma_crossover", "mean_reversion", "buy_and_hold")


def _builtin_params(name: str, order_usd: float) -> SearchStrategy[dict[str, Any]]:
    if name == "sma_crossover":
        return st.integers(1, 8).flatmap(lambda fast: st.fixed_dictionaries({
            "fast": st.just(fast), "slow": st.integers(fast + 1, fast + 12), "order_usd": st.just(order_usd),
            "allow_short": st.booleans()}))
    if name == "mean_reversion":
        return st.fixed_dictionaries({
            "window": st.integers(2, 20), "entry_z": st.sampled_from((2.0, 1.0, 0.5, 3.0)),
            "exit_z": st.sampled_from((0.0, -0.5, 0.5)), "order_usd": st.just(order_usd)})
    return st.fixed_dictionaries({"order_usd": st.just(order_usd)})


def _max_seed() -> int:
    """``run.seed``'s maximum in the packaged ``spec/config.schema.json``: generated SSOTs cover
    exactly the range the schema accepts."""
    import json

    from treasure.workspace import bundle_dir

    try:
        schema = json.loads((bundle_dir() / "spec" / "config.schema.json").read_text())
        return int(schema["properties"]["run"]["properties"]["seed"]["maximum"])
    except (OSError, KeyError, TypeError, ValueError):  # pragma: no cover - a schema without a bound
        return 2**53 - 1


def _policy(draw: Callable[[SearchStrategy[Any]], Any], policies: tuple[str, ...]) -> str:
    """``error`` one time in eight when both are allowed: refusals are cheap to check but say
    little, and a hunt should spend its examples on runs."""
    if len(policies) == 1:
        return policies[0]
    return policies[1] if draw(st.integers(0, 7)) == 7 else policies[0]


@st.composite
def _ssot_configs(draw: Callable[[SearchStrategy[Any]], Any], *, dataset: GeneratedDataset | None,
                  strategy: str, params: Any, dataset_path: str, policies: tuple[str, ...],
                  seeds: SearchStrategy[int]) -> dict[str, Any]:
    cash = draw(st.integers(1, 9)) * 10 ** draw(st.sampled_from((5, 4, 3, 6, 7)))
    max_position = cash * draw(st.sampled_from((0.1, 0.05, 0.25, 0.5, 1.0, 2.0, 0.01)))
    daily_loss = cash * draw(st.sampled_from((0.015, 0.005, 0.05, 0.2, 0.001)))
    if dataset is not None:
        sha, interval = dataset.sha256, dataset.interval_ms
        top_price = float(dataset.bars.high.max())
    else:
        sha = draw(st.binary(min_size=32, max_size=32)).hex()
        interval = draw(st.sampled_from(INTERVALS_MS))
        top_price = 1e6
    # a qty step coarse enough to matter, fine enough that the position limit buys >= 100 steps
    steps = [s for s in _QTY_STEPS if s * top_price * 100 <= max_position] or [1e-08]
    qty_step = draw(st.sampled_from(steps))
    if isinstance(params, SearchStrategy):
        chosen = draw(params)
    elif params is not None:
        chosen = dict(params)
    elif strategy in _BUILTINS:
        order_usd = max_position * draw(st.sampled_from((0.8, 0.5, 1.0, 1.5, 3.0)))
        chosen = draw(_builtin_params(strategy, order_usd))
    else:
        chosen = {}
    return {
        "version": 1,
        "instrument": {"symbol": draw(st.sampled_from(("SYNTH-USD", "BTC-USD", "X"))), "qty_step": qty_step},
        "dataset": {"path": dataset_path, "sha256": sha, "interval_ms": interval,
                    "on_gap": _policy(draw, policies), "on_duplicate": _policy(draw, policies)},
        "run": {"seed": draw(seeds), "starting_cash_usd": cash},
        "strategy": {"name": strategy, "params": chosen},
        "execution": {
            "adapter": "sim",
            "fees": {"taker_bps": draw(st.sampled_from((5, 0, 10, 30, 100))),
                     "min_fee_usd": draw(st.sampled_from((0.01, 0, 1.0)))},
            "slippage": {"model": "fixed_bps", "bps": draw(st.sampled_from((2, 0, 10, 50)))},
            "partial_fill_prob": draw(st.sampled_from((0.1, 0.0, 0.5, 1.0))),
            "partial_fill_min_ratio": draw(st.sampled_from((0.5, 0.1, 1.0))),
        },
        "risk": {"max_position_size_usd": max_position, "daily_loss_limit_usd": daily_loss},
        "recon": dict(_RECON),
        "persistence": {"enabled": False, "db_path": "data/treasure.db"},
    }


def ssot_configs(*, dataset: GeneratedDataset | None = None, strategy: str = "sma_crossover",
                 params: Mapping[str, Any] | SearchStrategy[dict[str, Any]] | None = None,
                 dataset_path: str = DATASET_PATH, policies: Sequence[str] = ("warn", "error"),
                 seeds: SearchStrategy[int] | None = None) -> SearchStrategy[dict[str, Any]]:
    """Valid SSOT documents (they validate against ``spec/config.schema.json``).

    Amounts are drawn relative to each other, as an operator would set them: starting cash
    1e3..9e7, ``max_position_size_usd`` 1%..200% of it, ``daily_loss_limit_usd`` 0.1%..20%, a
    ``qty_step`` at which the position limit still buys >= 100 steps of the dataset's highest
    price, and for the built-in strategies an ``order_usd`` of 0.5x..3x the position limit (so
    the risk engine sometimes cuts). With ``dataset`` the SSOT pins its SHA-256 and bar size.

    ``strategy`` is the SSOT's ``strategy.name`` (built-in name, ``module:Class`` or
    ``file.py:Class``); ``params`` fixes its params (a dict, or a strategy of dicts); by default
    built-ins get drawn params and other strategies ``{}``. ``policies`` are the
    ``dataset.on_gap``/``on_duplicate`` values drawn, the first one seven times in eight
    (``"error"`` makes the run refuse gappy data with DATA_GAP). ``seeds`` defaults to the schema's
    full range of ``run.seed``.
    """
    if dataset is not None and not isinstance(dataset, GeneratedDataset):
        raise InvalidArgument(f"dataset={dataset!r} must be a GeneratedDataset (from datasets())")
    if not isinstance(strategy, str) or not strategy:
        raise InvalidArgument(f"strategy={strategy!r} must be a non-empty string")
    if params is not None and not isinstance(params, (Mapping, SearchStrategy)):
        raise InvalidArgument(f"params={params!r} must be a dict or a strategy of dicts")
    if not isinstance(dataset_path, str) or not dataset_path or Path(dataset_path).is_absolute():
        raise InvalidArgument(f"dataset_path={dataset_path!r} must be a workspace-relative path")
    policies = tuple(policies)
    if not policies or any(p not in ("warn", "error") for p in policies):
        raise InvalidArgument(f"policies={policies!r} must be a non-empty sequence of 'warn'/'error'")
    if seeds is None:
        seeds = st.integers(0, _max_seed())
    elif not isinstance(seeds, SearchStrategy):
        raise InvalidArgument(f"seeds={seeds!r} must be a strategy of ints")
    return _ssot_configs(dataset=dataset, strategy=strategy, params=params, dataset_path=dataset_path,
                         policies=policies, seeds=seeds)


def cases(*, strategy: str = "sma_crossover", params: Mapping[str, Any] | SearchStrategy[dict[str, Any]] | None = None,
          min_bars: int = 2, max_bars: int = 60, gaps: int | bool = 3, duplicates: int | bool = 2,
          outliers: int | bool = 2, regimes: bool = True, policies: Sequence[str] = ("warn", "error"),
          seeds: SearchStrategy[int] | None = None) -> SearchStrategy[Case]:
    """Whole runs: a :func:`datasets` draw plus an :func:`ssot_configs` draw pinned to it.

    What ``treasure hunt`` and the ``treasure_invariants`` fixture run. Arguments as for the two
    strategies it combines.
    """
    datasets(min_bars=min_bars, max_bars=max_bars, gaps=gaps, duplicates=duplicates, outliers=outliers,
             regimes=regimes)  # validates eagerly
    ssot_configs(strategy=strategy, params=params, policies=policies, seeds=seeds)
    return _cases(dataset_args=dict(min_bars=min_bars, max_bars=max_bars, gaps=_check_count("gaps", gaps),
                                    duplicates=_check_count("duplicates", duplicates),
                                    outliers=_check_count("outliers", outliers), regimes=regimes, interval_ms=None),
                  strategy=strategy, params=params, policies=tuple(policies),
                  seeds=st.integers(0, _max_seed()) if seeds is None else seeds)


@st.composite
def _cases(draw: Callable[[SearchStrategy[Any]], Any], *, dataset_args: dict[str, Any], strategy: str, params: Any,
           policies: tuple[str, ...], seeds: SearchStrategy[int]) -> Case:
    ds = draw(_datasets(**dataset_args))
    doc = draw(_ssot_configs(dataset=ds, strategy=strategy, params=params, dataset_path=DATASET_PATH,
                             policies=policies, seeds=seeds))
    return Case(ds, doc)


# ------------------------------------------------------------------------------------------
# intents


def intents(*, min_qty: float = 1e-6, max_qty: float = 1e6,
            sides: Sequence[str] = ("buy", "sell")) -> SearchStrategy[Any]:
    """Valid :class:`treasure.strategy.Intent` values: a side, a finite qty > 0, any reason text."""
    from treasure.strategy import Intent

    for name, value in (("min_qty", min_qty), ("max_qty", max_qty)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise InvalidArgument(f"{name}={value!r} must be a finite number > 0")
    if min_qty > max_qty:
        raise InvalidArgument(f"min_qty={min_qty} must be <= max_qty={max_qty}")
    sides = tuple(sides)
    if not sides or any(s not in ("buy", "sell") for s in sides):
        raise InvalidArgument(f"sides={sides!r} must be a non-empty sequence of 'buy'/'sell'")
    return st.builds(Intent, side=st.sampled_from(sides),
                     qty=st.floats(min_value=float(min_qty), max_value=float(max_qty), allow_nan=False,
                                   allow_infinity=False),
                     reason=st.text(max_size=24))


# ------------------------------------------------------------------------------------------
# event logs


@dataclass(frozen=True, eq=False)
class EventStream:
    """A valid, hash-chained event log: the events (with ``hash``) and the JSONL bytes."""

    events: tuple[dict[str, Any], ...]
    data: bytes

    @property
    def lines(self) -> list[bytes]:
        return self.data.splitlines()

    @property
    def run_id(self) -> str:
        return str(self.events[0]["run_id"])

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.data)
        return target


_RUN_ID_ALPHABET = string.ascii_letters + string.digits
_STEP_KINDS = ("intent", "fill", "reject", "limit", "gap", "duplicate", "log", "day_end", "cancel",
               "adapter_error")
_SHA = "0" * 64


@st.composite
def _event_streams(draw: Callable[[SearchStrategy[Any]], Any], *, min_events: int, max_events: int,
                   run_id: str | None) -> EventStream:
    from treasure.events import EventBus, MemorySink

    rid = run_id or draw(st.text(_RUN_ID_ALPHABET, min_size=1, max_size=12))
    interval = draw(st.sampled_from(INTERVALS_MS))
    now = BASE_MS + draw(st.integers(0, 1000)) * interval
    sink = MemorySink()
    bus = EventBus(rid, [sink])
    target = draw(st.integers(min_events, max_events))
    money = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
    price = st.floats(1e-4, 1e9, allow_nan=False, allow_infinity=False)
    qty = st.floats(1e-6, 1e6, allow_nan=False, allow_infinity=False)
    side = st.sampled_from(("buy", "sell"))
    seed = draw(st.integers(0, 2**53 - 1))
    bus.emit(now, "SYS", "run_start", "INFO", {
        "seed": seed, "ssot_sha256": _SHA, "ssot": {"version": 1}, "package_version": "0.1.0",
        "strategy": {"name": "s", "ref": "s", "params": {}, "source_sha256": _SHA},
        "dataset": {"path": DATASET_PATH, "sha256": _SHA, "pinned_sha256": _SHA, "override": False},
        "adapter": "sim", "symbol": "SYNTH-USD", "starting_cash_usd": 100000})
    bar = 0
    orders = 0
    while bus.seq < target - 1:
        kind = draw(st.sampled_from(_STEP_KINDS))
        advance = draw(st.integers(0, 3))  # bars the clock moves on before this step
        bar += advance
        now += interval * advance
        if kind == "intent":
            bus.emit(now, "STRAT", "intent_emitted", "DEBUG", {
                "bar_idx": bar, "side": draw(side), "qty": draw(qty), "reason": draw(st.text(max_size=10))})
        elif kind == "fill":
            orders += 1
            oid = f"o{orders:06d}"
            s, q, p = draw(side), draw(qty), draw(price)
            bus.emit(now, "EXEC", "order_placed", "INFO", {
                "order_id": oid, "bar_idx": bar, "side": s, "qty": q, "requested_qty": q, "ref_price": p,
                "type": "market", "adapter": "sim"})
            if bus.seq < target - 1:
                bus.emit(now, "EXEC", "order_filled", "INFO", {
                    "order_id": oid, "bar_idx": bar, "side": s, "fill_qty": q, "price": p, "fee": 0.01,
                    "remaining_qty": 0.0, "status": "filled", "slippage_bps": 0.0, "latency_bars": 1})
            if bus.seq < target - 1:
                bus.emit(now, "EXEC", "position_updated", "INFO", {
                    "bar_idx": bar, "qty": q, "avg_price": p, "position_usd": q * p, "cash": draw(money),
                    "realized_pnl": 0.0, "fees_paid": 0.01, "equity": draw(money)})
        elif kind == "reject":
            orders += 1
            bus.emit(now, "EXEC", "order_rejected", "WARN", {
                "order_id": f"o{orders:06d}", "bar_idx": bar, "side": draw(side), "qty": draw(qty),
                "reason": "risk:max_position_size_usd"})
        elif kind == "limit":
            bus.emit(now, "RISK", "limit_exceeded", "WARN", {
                "limit": "max_position_size_usd", "limit_usd": 10000, "requested_usd": draw(price),
                "requested_qty": draw(qty), "allowed_qty": 0.0, "action": "rejected", "bar_idx": bar,
                "order_id": None, "stage": "pre_trade"})
        elif kind == "gap":
            missing = draw(st.integers(1, 10))
            bar += 1
            expected = now + interval
            now += interval * (missing + 1)
            bus.emit(now, "DATA", "data_gap_detected", "WARN", {
                "bar_idx": bar, "expected_t_ms": expected, "actual_t_ms": now, "missing_bars": missing})
        elif kind == "duplicate":
            bar += 1
            bus.emit(now, "DATA", "duplicate_timestamp", "WARN", {"bar_idx": bar, "t_ms": now, "action": "skipped"})
        elif kind == "log":
            bus.emit(now, "STRAT", "strategy_log", "INFO", {
                "bar_idx": bar, "message": draw(st.text(max_size=20)),
                "data": draw(st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=5),
                                             st.integers(-1000, 1000), max_size=3))})
        elif kind == "day_end":
            bus.emit(now, "RISK", "day_end", "INFO", {
                "day": "2026-01-01", "pnl_usd": draw(money), "start_equity": 100000, "end_equity": draw(money),
                "limit_usd": 1500, "min_pnl_usd": 0.0})
        elif kind == "cancel":
            orders += 1
            bus.emit(now, "EXEC", "order_cancelled", "INFO", {
                "order_id": f"o{orders:06d}", "bar_idx": bar, "side": draw(side), "remaining_qty": draw(qty),
                "filled_qty": 0.0, "reason": "end_of_data"})
        else:
            bus.emit(now, "EXEC", "adapter_error", "ERROR", {
                "adapter": "sim", "code": "UNKNOWN_ORDER", "message": draw(st.text(max_size=20)), "line": None,
                "order_id": None})
    bus.emit(now, "SYS", "run_end", "INFO", {
        "status": "complete", "reason": None, "bars_processed": bar + 1, "bars_total": bar + 1,
        "orders": orders, "fills": 0, "trades": 0, "final_equity": 100000, "total_return": 0.0})
    bus.flush(durable=False)
    return EventStream(events=tuple(sink.events), data=b"".join(line + b"\n" for line in sink.lines))


def event_streams(*, min_events: int = 2, max_events: int = 40,
                  run_id: str | None = None) -> SearchStrategy[EventStream]:
    """Valid event logs built with :class:`treasure.events.EventBus`: ``run_start`` first,
    ``run_end`` last, every event's payload valid against ``truth/events/``, seq and sim time in
    order, the hash chain intact. Structurally valid, not a consistent trading story (a fill's
    cash is arbitrary): use an engine run when the story matters.
    """
    min_events = _check_int("min_events", min_events, min_value=2)
    max_events = _check_int("max_events", max_events, min_value=2, max_value=100_000)
    if min_events > max_events:
        raise InvalidArgument(f"min_events={min_events} must be <= max_events={max_events}")
    if run_id is not None:
        from treasure.errors import TreasureError
        from treasure.workspace import check_run_id

        try:
            check_run_id(run_id)
        except TreasureError as exc:
            raise InvalidArgument(f"run_id={run_id!r}: {exc.message}") from None
    return _event_streams(min_events=min_events, max_events=max_events, run_id=run_id)


@dataclass(frozen=True, eq=False)
class BrokenEventStream:
    """A log with one targeted corruption and what ``treasure.eventlog.verify_log`` must say:
    ``code`` and, except for an empty log, the 1-based ``line`` it names."""

    data: bytes
    code: str
    line: int | None
    kind: str
    original: EventStream

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.data)
        return target


#: Corruption kind -> the code verify_log reports for it.
BROKEN_EVENT_KINDS: dict[str, str] = {
    "edit": "EVENTS_CHAIN",       # a field edited in place, hash left as it was
    "bad_hash": "EVENTS_CHAIN",   # the stated hash replaced
    "delete": "EVENTS_SEQ",       # a line removed (not the last)
    "swap": "EVENTS_SEQ",         # two adjacent lines exchanged
    "duplicate": "EVENTS_SEQ",    # a line repeated
    "reseq": "EVENTS_SEQ",        # seq changed and the chain re-sealed after it
    "run_id": "EVENTS_RUN_ID",    # run_id changed, chain re-sealed
    "time": "EVENTS_TIME",        # ts_ms moved back before the previous event, chain re-sealed
    "schema": "EVENTS_SCHEMA",    # a field outside the envelope schema, chain re-sealed
    "garbage": "EVENTS_JSON",     # a line that is not JSON
    "truncate": "EVENTS_TRUNCATED",  # the last line cut short (writer killed mid-line)
    "empty": "EVENTS_EMPTY",      # no events at all
}


def _reseal(events: Sequence[dict[str, Any]], start: int, prev: str) -> list[bytes]:
    """Lines for ``events[start:]`` with a fresh, intact chain starting from ``prev``."""
    from treasure.events import seal

    lines = []
    for event in events[start:]:
        body = {k: v for k, v in event.items() if k != "hash"}
        body["prev"] = prev
        prev, line = seal(body)
        lines.append(line)
    return lines


@st.composite
def _broken_event_streams(draw: Callable[[SearchStrategy[Any]], Any], *, kinds: tuple[str, ...],
                          max_events: int) -> BrokenEventStream:
    from treasure.events import seal

    kind = draw(st.sampled_from(kinds))
    stream = draw(_event_streams(min_events=3, max_events=max_events, run_id=None))
    lines = stream.lines
    events = [dict(e) for e in stream.events]
    n = len(lines)
    if kind == "empty":
        return BrokenEventStream(b"", "EVENTS_EMPTY", None, kind, stream)
    if kind == "truncate":
        cut = draw(st.integers(1, len(lines[-1]) - 1))
        data = b"".join(line + b"\n" for line in lines[:-1]) + lines[-1][:cut]
        return BrokenEventStream(data, "EVENTS_TRUNCATED", n, kind, stream)
    i = draw(st.integers(1 if kind in ("run_id", "time") else 0, n - 2))
    line_no = i + 1
    out = list(lines)
    if kind == "edit":
        event = {k: v for k, v in events[i].items() if k != "hash"}
        event["level"] = "WARN" if event["level"] != "WARN" else "INFO"
        _, resealed = seal(event)
        cut = resealed.index(b',"hash":"') + 9
        out[i] = resealed[:cut] + events[i]["hash"].encode() + resealed[cut + 64:]
    elif kind == "bad_hash":
        old = events[i]["hash"]
        at = draw(st.integers(0, 63))
        flipped = "0123456789abcdef"[("0123456789abcdef".index(old[at]) + draw(st.integers(1, 15))) % 16]
        out[i] = lines[i].replace(old.encode(), (old[:at] + flipped + old[at + 1:]).encode(), 1)
    elif kind == "delete":
        del out[i]
    elif kind == "swap":
        out[i], out[i + 1] = out[i + 1], out[i]
    elif kind == "duplicate":
        out.insert(i + 1, out[i])
        line_no = i + 2
    else:
        prev = events[i - 1]["hash"] if i else "0" * 64
        if kind == "reseq":
            events[i]["seq"] = events[i]["seq"] + draw(st.integers(1, 5))
        elif kind == "run_id":
            events[i]["run_id"] = events[i]["run_id"] + "x"
        elif kind == "time":
            events[i]["ts_ms"] = events[i - 1]["ts_ms"] - draw(st.integers(1, 1000))
        elif kind == "schema":
            events[i]["level"] = "LOUD"
        elif kind == "garbage":
            out[i] = draw(st.sampled_from((b"{not json", b"[1, 2", b"\xff\xfe", b"null,")))
        if kind != "garbage":
            out[i:] = _reseal(events, i, prev)
    data = b"".join(line + b"\n" for line in out)
    return BrokenEventStream(data, BROKEN_EVENT_KINDS[kind], line_no, kind, stream)


def broken_event_streams(*, kinds: Sequence[str] | None = None,
                         max_events: int = 30) -> SearchStrategy[BrokenEventStream]:
    """Event logs with exactly one corruption (see :data:`BROKEN_EVENT_KINDS`) and the stable
    code and line ``verify_log`` must report. ``kinds`` restricts the corruptions drawn."""
    chosen = tuple(BROKEN_EVENT_KINDS) if kinds is None else tuple(kinds)
    unknown = [k for k in chosen if k not in BROKEN_EVENT_KINDS]
    if not chosen or unknown:
        raise InvalidArgument(f"kinds={kinds!r}: choose from {', '.join(BROKEN_EVENT_KINDS)}")
    max_events = _check_int("max_events", max_events, min_value=3, max_value=100_000)
    return _broken_event_streams(kinds=chosen, max_events=max_events)


# ------------------------------------------------------------------------------------------
# broken datasets


@dataclass(frozen=True, eq=False)
class BrokenDataset:
    """A dataset file with one targeted corruption and what ``load_dataset`` must answer:
    the stable ``code``, the 1-based file ``line`` and the CSV ``field`` (where it names one)."""

    data: bytes
    code: str
    line: int | None
    field: str | None
    kind: str
    original: GeneratedDataset

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.data)
        return target


#: Corruption kind -> the code load_dataset reports for it.
BROKEN_DATASET_KINDS: dict[str, str] = {
    "nan": "DATA_NAN",
    "inf": "DATA_NAN",
    "nonpositive": "DATA_NONPOSITIVE_PRICE",
    "negative_volume": "DATA_NEGATIVE_VOLUME",
    "high_below": "DATA_OHLC",
    "low_above": "DATA_OHLC",
    "unsorted": "DATA_UNSORTED",
    "huge_volume": "DATA_RANGE",
    "far_future": "DATA_RANGE",
    "not_a_number": "DATA_PARSE",
    "float_time": "DATA_PARSE",
    "short_row": "DATA_SHORT_ROW",
    "long_row": "DATA_LONG_ROW",
    "blank_line": "DATA_SHORT_ROW",
    "header": "DATA_HEADER",
    "empty": "DATA_EMPTY",
    "header_only": "DATA_HEADER_ONLY",
    "nul_byte": "DATA_BINARY",
    "bad_utf8": "DATA_BINARY",
}
_COLUMNS = ("t_ms", "open", "high", "low", "close", "volume")


@st.composite
def _broken_datasets(draw: Callable[[SearchStrategy[Any]], Any], *, kinds: tuple[str, ...],
                     max_bars: int) -> BrokenDataset:
    kind = draw(st.sampled_from(kinds))
    ds = draw(_datasets(min_bars=2, max_bars=max_bars, gaps=1, duplicates=1, outliers=0, regimes=False,
                        interval_ms=None))
    header, *rows = ds.csv.rstrip(b"\n").split(b"\n")
    code = BROKEN_DATASET_KINDS[kind]
    field: str | None

    def done(new_rows: list[bytes], line: int | None, field: str | None, head: bytes = header) -> BrokenDataset:
        return BrokenDataset(b"\n".join([head, *new_rows]) + b"\n", code, line, field, kind, ds)

    if kind == "empty":
        return BrokenDataset(b"", code, None, None, kind, ds)
    if kind == "header_only":
        return BrokenDataset(header + b"\n", code, 1, None, kind, ds)
    if kind == "header":
        mangled, field = draw(st.sampled_from((
            (b"time,open,high,low,close,volume", "t_ms"), (b"t_ms;open;high;low;close;volume", None),
            (b"T_MS,OPEN,HIGH,LOW,CLOSE,VOLUME", None), (b"t_ms,open,high,low,close", "volume"))))
        return done(rows, 1, field, mangled)
    i = draw(st.integers(1 if kind == "unsorted" else 0, len(rows) - 1))
    fields = rows[i].split(b",")
    values = dict(zip(_COLUMNS, fields))
    o, c = float(values["open"]), float(values["close"])
    if kind in ("nan", "inf", "not_a_number"):
        field = draw(st.sampled_from(_COLUMNS[1:]))
        values[field] = {"nan": b"nan", "inf": b"inf", "not_a_number": b"abc"}[kind]
    elif kind == "nonpositive":
        field = "low"
        values["low"] = draw(st.sampled_from((b"0", b"0.0000", b"-1.5")))
    elif kind == "negative_volume":
        field = "volume"
        values["volume"] = b"-1.00"
    elif kind == "high_below":
        field = "high"
        values["high"] = f"{max(o, c) / 2:.4f}".encode() if max(o, c) >= 0.0002 else b"0.00001"
    elif kind == "low_above":
        field = "low"
        values["low"] = f"{max(o, c) * 2:.4f}".encode()
    elif kind == "unsorted":
        field = "t_ms"
        previous = int(rows[i - 1].split(b",")[0])
        values["t_ms"] = str(previous - draw(st.integers(1, 10**6))).encode()
    elif kind == "huge_volume":
        field = "volume"
        values["volume"] = b"2000000000000.00"
    elif kind == "far_future":
        field = "t_ms"
        values["t_ms"] = b"99999999999999"  # later rows then go back in time: the earliest line wins
    elif kind == "float_time":
        field = "t_ms"
        values["t_ms"] = values["t_ms"] + b".5"
    elif kind == "short_row":
        field = "volume"
        del values["volume"]
    elif kind == "long_row":
        field = None
        values["extra"] = b"1"
    elif kind == "blank_line":
        return done(rows[:i] + [b""] + rows[i:], i + 2, None)
    elif kind == "nul_byte":
        field = None
        values["volume"] = values["volume"] + b"\x00"
    else:  # bad_utf8
        field = None
        values["volume"] = values["volume"] + b"\xff"
    new = list(rows)
    new[i] = b",".join(values.values())
    return done(new, i + 2, field)


def broken_datasets(*, kinds: Sequence[str] | None = None,
                    max_bars: int = 30) -> SearchStrategy[BrokenDataset]:
    """Dataset files with exactly one corruption (see :data:`BROKEN_DATASET_KINDS`) and the
    stable code, line and field ``treasure.data.load_dataset`` must refuse them with."""
    chosen = tuple(BROKEN_DATASET_KINDS) if kinds is None else tuple(kinds)
    unknown = [k for k in chosen if k not in BROKEN_DATASET_KINDS]
    if not chosen or unknown:
        raise InvalidArgument(f"kinds={kinds!r}: choose from {', '.join(BROKEN_DATASET_KINDS)}")
    max_bars = _check_int("max_bars", max_bars, min_value=2, max_value=10_000)
    return _broken_datasets(kinds=chosen, max_bars=max_bars)
