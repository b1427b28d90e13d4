"""The bar loop: one run's lifecycle, the hot path, intents, orders, fills and halts.

Pure of file I/O except the emergency-flag check and the events it hands to the bus; the
evidence (reports, equity curve) is assembled by :mod:`treasure.engine.evidence` and written by
:mod:`treasure.engine.service`.

The hot path is deliberately plain: indicators are precomputed by strategies, qty and cash change
only at fills (recorded sparsely and expanded per bar later), and events are only emitted when
something happens.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import math
import os
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson

from treasure import __version__, faults
from treasure.context import RunContext, make_rng
from treasure.data import sha256_file
from treasure.engine.evidence import equity_curve, processed_indices
from treasure.engine.orders import OrderBook
from treasure.engine.request import PreparedRun
from treasure.errors import DataError, InternalError, StrategyError, TreasureError
from treasure.events import EventBus
from treasure.execution import ExecReport, Fill, Order, create_adapter
from treasure.execution.quantity import QuantityError, to_lots, to_qty, to_ticks
from treasure.metrics import r10, summarize
from treasure.portfolio import Portfolio
from treasure.reports.eqs import slippage_bps
from treasure.risk import RiskEngine
from treasure.strategy import Bar, Intent
from treasure.strategy.signals import declared_signals

DAY_MS = 86_400_000
PROGRESS_EVERY = 8192
#: spans of at least this many bars are marked to market with numpy, shorter ones in a plain loop
SPAN_NUMPY_MIN = 17


def _code_files(cls: type) -> set[str]:
    """Files holding the methods of ``cls`` and its bases, except Treasure's own modules."""
    package = Path(__file__).resolve().parent.parent
    files = set()
    for klass in inspect.getmro(cls):
        for member in vars(klass).values():
            code = getattr(member, "__code__", None)
            if code is not None and package not in Path(code.co_filename).resolve().parents:
                files.add(code.co_filename)
    return files


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False


def signal_mask(raw: Any, n: int) -> np.ndarray:
    """A strategy's ``signals`` as a bool mask over the ``n`` bars: a bool array of length ``n``
    or bar indices (StrategyError STRATEGY_INVALID otherwise)."""
    try:
        arr = np.asarray(raw)
        if arr.dtype == np.bool_:
            if arr.shape != (n,):
                raise ValueError(f"a mask of shape {arr.shape} for {n} bars")
            return arr.copy()
        if arr.size == 0:
            return np.zeros(n, dtype=np.bool_)
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise ValueError(f"{arr.dtype} values, expected bar indices or a bool mask")
        if int(arr.min()) < 0 or int(arr.max()) >= n:
            raise ValueError(f"bar indices outside 0..{n - 1}")
        mask = np.zeros(n, dtype=np.bool_)
        mask[arr] = True
        return mask
    except (TypeError, ValueError) as exc:
        raise StrategyError("STRATEGY_INVALID", f"signals() returned an invalid schedule: {exc}",
                            field="signals") from None


def _day(ts_ms: int) -> str:
    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=ts_ms // DAY_MS)).isoformat()


class Halt(Exception):
    """Raised inside the loop to stop the run in order (daily loss, emergency flag)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class BarLoop:
    """State of one run's bar loop: lifecycle, the hot path, intents, fills and halts."""

    def __init__(self, prep: PreparedRun, bus: EventBus) -> None:
        self.prep = prep
        self.bus = bus
        cfg = prep.config
        self.cfg = cfg
        self.bars = prep.dataset.bars
        self.portfolio = Portfolio(cash=cfg.starting_cash, qty_step=cfg.qty_step)
        risk = cfg.section("risk")
        account = cfg.section("account")
        self.risk = RiskEngine(max_position_usd=risk["max_position_size_usd"],
                               daily_loss_limit_usd=risk["daily_loss_limit_usd"],
                               account_type=account.get("type", "cash"),
                               max_leverage=account.get("max_leverage", 1.0))
        self.ctx = RunContext(run_id=prep.run_id, seed=prep.seed, symbol=cfg.symbol, bus=bus,
                              starting_cash=cfg.starting_cash, faults=prep.request.faults)
        self.adapter = create_adapter(prep.adapter, execution=cfg.section("execution"), config=cfg,
                                      workspace=prep.workspace, run_id=prep.run_id,
                                      **prep.request.adapter_options)
        self.adapter.start(rng=make_rng(prep.seed, stream=2), config=cfg, symbol=cfg.symbol)
        self.can_cut_fills = getattr(self.adapter, "simulated", True)
        # the emergency flag: before the first bar and every order always; every bar when the
        # adapter is live-paced, else at least every risk.emergency_check_bars bars
        every_bar = getattr(self.adapter, "live_paced", False) or not self.can_cut_fills
        self.flag_check_bars = 1 if every_bar else int(risk.get("emergency_check_bars", 1024))
        self.flag_path = str(prep.workspace.emergency_flag)
        self.book = OrderBook(cfg.qty_step)
        # qty and cash change only at fills: record (bar_idx, qty, cash) there, expand per bar later
        self.changes: list[tuple[int, float, float]] = []
        self.last_bar = -1
        self.findings: list[dict[str, Any]] = []
        self.halt_reason: str | None = None
        self.ctx.now_ms = int(self.bars.t_ms[0])
        self._curve_cache: np.ndarray | None = None
        self._metrics_cache: dict[str, Any] | None = None
        self.day_start_equity = cfg.starting_cash
        self.day_min_pnl = 0.0
        self.day: int | None = None
        self.last_equity = cfg.starting_cash
        self.qty_step = cfg.qty_step
        self.price_tick = cfg.price_tick

    # events -----------------------------------------------------------------------------------
    def emit(self, category: str, event_type: str, level: str, payload: dict[str, Any]) -> None:
        self.bus.emit(self.ctx.now_ms, category, event_type, level, payload)

    def record_error(self, exc: TreasureError) -> None:
        try:
            category = "STRAT" if exc.code.startswith(("STRATEGY", "INTENT")) else "SYS"
            self.emit(category, "run_error", "ERROR",
                      {"code": exc.code, "message": exc.message[:2000], "bar_idx": self.ctx.bar_idx})
            self._cancel_open(f"error:{exc.code}", "WARN")
            self._emit_run_end("error", exc.code)
        except TreasureError:
            pass  # the sink itself failed; the court report still says why

    # lifecycle --------------------------------------------------------------------------------
    def run(self) -> tuple[str, str | None]:
        prep, cfg = self.prep, self.cfg
        ds = prep.dataset
        self.emit("SYS", "run_start", "INFO", {
            "seed": prep.seed,
            "ssot_sha256": cfg.sha256,
            "ssot": cfg.as_dict(),
            "package_version": __version__,
            "strategy": {"name": prep.strategy.name, "ref": prep.strategy.ref,
                         "params": prep.strategy.params, "source_sha256": prep.strategy.source_sha256},
            "dataset": {"path": ds.path, "sha256": ds.sha256,
                        "pinned_sha256": cfg.section("dataset")["sha256"], "override": prep.dataset_override},
            "adapter": prep.adapter,
            "symbol": cfg.symbol,
            "starting_cash_usd": cfg.starting_cash,
            **({"adapter_options": self._recorded_adapter_options()} if prep.request.adapter_options else {}),
        })
        dup_count = len(ds.duplicates)
        self.emit("DATA", "dataset_loaded", "INFO", {
            "dataset_sha": ds.sha256, "pinned_sha": cfg.section("dataset")["sha256"],
            "sha_matches": ds.sha256 == cfg.section("dataset")["sha256"], "path": ds.path,
            "bars": len(ds.bars), "bars_used": len(ds.bars) - dup_count,
            "first_t_ms": int(ds.bars.t_ms[0]), "last_t_ms": int(ds.bars.t_ms[-1]),
            "interval_ms": ds.interval_ms, "gaps": len(ds.gaps), "duplicates": dup_count,
        })
        self.bus.flush(durable=False)  # a run killed in its first bars still shows that it started
        if prep.dataset_override and ds.sha256 != cfg.section("dataset")["sha256"]:
            self.findings.append({"code": "DATASET_OVERRIDE", "level": "WARN", "count": 1,
                                  "message": f"ran on {ds.path} (sha {ds.sha256[:12]}…) instead of the "
                                             "pinned dataset, by explicit --dataset"})
        if prep.unapproved:
            self.findings.append({"code": "SSOT_UNAPPROVED", "level": "WARN", "count": len(prep.unapproved),
                                  "message": f"ran on an SSOT not approved in spec/ssot.lock: "
                                             f"{', '.join(prep.unapproved[:10])} changed (treasure ssot diff; "
                                             "treasure ssot approve)"})
        if ds.gaps:
            self.findings.append({"code": "DATA_GAP", "level": "WARN", "count": len(ds.gaps),
                                  "message": f"{len(ds.gaps)} gap(s) in the dataset (data_gap_detected events)"})
        if ds.duplicates:
            self.findings.append({"code": "DUPLICATE_TIMESTAMP", "level": "WARN", "count": dup_count,
                                  "message": f"{dup_count} duplicate timestamp(s) skipped"})
        strategy = prep.strategy.strategy
        try:
            self._call(strategy.on_start, self.ctx, self.bars)
            if os.path.exists(prep.workspace.emergency_flag):
                raise Halt("emergency_flag", self._flag_detail())
            self._loop()
        except Halt as halt:
            self._halt(halt)
        self._finish()
        self._check_dataset_unchanged()
        self._call(strategy.on_end, self.ctx)
        status, reason = ("halted", self.halt_reason) if self.halt_reason else self._health()
        self._emit_run_end(status, reason)
        return status, reason

    def _health(self) -> tuple[str, str | None]:
        """``complete``, or ``degraded`` when the share of ERROR events (e.g. adapter_error from a
        dead venue feed) is above the SSOT's ``health.max_error_rate`` (the runbook's 10%)."""
        limit = float(self.cfg.section("health").get("max_error_rate", 0.10))
        errors, total = self.bus.by_level.get("ERROR", 0), self.bus.seq
        rate = errors / total if total else 0.0
        if rate <= limit:
            return "complete", None
        self.findings.append({"code": "ERROR_RATE", "level": "ERROR", "count": errors,
                              "message": f"{errors} of {total} events are ERROR ({rate:.1%}), above "
                                         f"health.max_error_rate {limit:.0%}: orders may not be executing "
                                         "(check adapter_error events)"})
        return "degraded", "error_rate"

    def _recorded_adapter_options(self) -> dict[str, Any]:
        """Adapter options as evidence a replay can rebuild from: files become a workspace-relative
        path plus their SHA-256, so a replay can tell when a recorded venue session changed."""
        ws = self.prep.workspace
        recorded: dict[str, Any] = {}
        for key, value in sorted(self.prep.request.adapter_options.items()):
            if isinstance(value, (str, Path)) and Path(value).is_file():
                recorded[key] = {"path": ws.relative(Path(value)), "sha256": sha256_file(value)}
            elif _json_safe(value):
                recorded[key] = value
            else:  # a live client object: record what it was, never its (address-bearing) repr
                recorded[key] = {"object": f"{type(value).__module__}.{type(value).__qualname__}"}
        return recorded

    def _check_dataset_unchanged(self) -> None:
        """The bars came from the file as hashed at load; if it changed since, the evidence would
        name a dataset that no longer exists, so the run ends in error (DATA_CHANGED)."""
        path = self.prep.dataset_file
        if path is None:
            return
        try:
            current = sha256_file(path)
        except (OSError, TreasureError):
            current = "unreadable"
        if current != self.prep.dataset.sha256:
            self.findings.append({"code": "DATA_CHANGED", "level": "ERROR", "count": 1,
                                  "message": f"{self.prep.dataset.path} changed during the run "
                                             f"(now {current[:12]}…)"})
            raise DataError("DATA_CHANGED", f"the dataset changed during the run (SHA-256 now "
                            f"{current[:12]}…, loaded {self.prep.dataset.sha256[:12]}…)",
                            path=self.prep.dataset.path)

    def _flag_detail(self) -> str:
        try:
            raw = self.prep.workspace.emergency_flag.read_bytes()[:4096]
            doc = orjson.loads(raw)
            return str(doc.get("reason", "emergency flag set")) if isinstance(doc, dict) else "emergency flag set"
        except Exception:  # an unreadable or hand-written flag still halts
            return "emergency flag set"

    def _call(self, fn: Callable, *args: Any) -> Any:
        try:
            return fn(*args)
        except (TreasureError, Halt):
            raise
        except Exception as exc:
            raise self.classify(exc) from exc

    def classify(self, exc: Exception) -> TreasureError:
        """Blame the strategy when its source is on the traceback, otherwise Treasure itself."""
        frames = traceback.extract_tb(exc.__traceback__)
        source = self.prep.strategy.source_path
        own = [f for f in frames if source and Path(f.filename) == Path(source)]
        if own:
            frame = own[-1]
            return StrategyError("STRATEGY_FAILED", f"strategy raised {type(exc).__name__}: {exc} at "
                                 f"{Path(frame.filename).name}:{frame.lineno}", path=frame.filename,
                                 line=frame.lineno)
        adapter_files = _code_files(type(self.adapter))
        if adapter_files:
            theirs = [f for f in frames if f.filename in adapter_files]
            if theirs:  # a third-party adapter failed: bad venue or adapter code, not a Treasure bug
                frame = theirs[-1]
                return TreasureError("ADAPTER_FAILED", f"execution adapter {self.prep.adapter!r} raised "
                                     f"{type(exc).__name__}: {exc} at {Path(frame.filename).name}:{frame.lineno}",
                                     path=frame.filename, line=frame.lineno)
        last = frames[-1] if frames else None
        where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
        return InternalError("INTERNAL", f"{type(exc).__name__}: {exc}{where}")

    # the hot loop -----------------------------------------------------------------------------
    def _active_bars(self, n: int, t_ms: list[int], special: dict[int, Any]) -> list[int] | None:
        """The fast path's schedule: the bars where something other than an open order or a flag
        check can happen (a signal, a gap or duplicate, a day's first bar, a progress report), or
        ``None`` to run every bar through Python (no ``signals``, faults armed, forced)."""
        if self.prep.request.force_per_bar or faults.armed() or self.flag_check_bars <= 1:
            return None
        strategy = self.prep.strategy.strategy
        if not callable(getattr(strategy, "signals", None)):  # not a Strategy subclass: duck-typed
            return None
        raw = self._call(declared_signals, strategy, self.bars)
        if raw is None:
            return None
        mask = signal_mask(raw, n)
        mask[0] = True  # the first flag check
        for i in special:
            mask[i] = True
        day = np.asarray(t_ms, dtype=np.int64) // DAY_MS
        mask[1:] |= day[1:] != day[:-1]
        if self.prep.request.progress is not None:
            mask[::PROGRESS_EVERY] = True
        return np.flatnonzero(mask).tolist()

    def _loop(self) -> None:
        bars = self.bars
        t_ms = bars.t_ms.tolist()
        opens, highs, lows = bars.open.tolist(), bars.high.tolist(), bars.low.tolist()
        closes, volumes = bars.close.tolist(), bars.volume.tolist()
        n = len(t_ms)
        dataset = self.prep.dataset
        special: dict[int, tuple[str, Any]] = {g.bar_idx: ("gap", g) for g in dataset.gaps}
        special.update({d.bar_idx: ("dup", d) for d in dataset.duplicates})
        flag = str(self.prep.workspace.emergency_flag)
        flag_set, F_OK = os.access, os.F_OK
        check_every = self.flag_check_bars
        next_check = 0
        ctx, adapter, portfolio = self.ctx, self.adapter, self.portfolio
        on_bar = self.prep.strategy.strategy.on_bar
        fire = faults.fire if faults.armed() else None
        progress = self.prep.request.progress
        limit = -self.risk.daily_loss_limit_usd
        equity_at, breached = portfolio.equity, self.risk.daily_loss_breached
        new_bar = tuple.__new__
        day_ms = DAY_MS
        self.day = t_ms[0] // day_ms
        next_day = (self.day + 1) * day_ms
        day_start = self.day_start_equity
        day_min = 0.0
        open_orders = self.book.open  # mutated in place, never rebound
        last_equity, last_bar = self.last_equity, self.last_bar
        # the fast path: Python runs only on active bars (a signal, an open order, a day's first
        # bar, a gap or duplicate, a flag check); the bars between are marked to market at once
        active = self._active_bars(n, t_ms, special)
        self.fast_path = active is not None
        schedule = active if active is not None else []
        k, m = 0, len(schedule)
        i = 0
        try:
            while i < n:
                t = t_ms[i]
                ctx.now_ms = t
                ctx.bar_idx = i
                if i in special:
                    kind, item = special[i]
                    if kind == "dup":
                        self.emit("DATA", "duplicate_timestamp", "WARN", {"bar_idx": i, "t_ms": t, "action": "skipped"})
                        i += 1
                        continue
                    self.emit("DATA", "data_gap_detected", "WARN", {
                        "bar_idx": i, "expected_t_ms": item.expected_t_ms, "actual_t_ms": item.actual_t_ms,
                        "missing_bars": item.missing(dataset.interval_ms)})
                if fire is not None:
                    fire("bar")
                if i >= next_check:
                    next_check = i + check_every
                    if flag_set(flag, F_OK):
                        raise Halt("emergency_flag", self._flag_detail())
                if t >= next_day:
                    self.last_equity = last_equity
                    self.day_min_pnl = day_min
                    self._close_day()
                    self.day = t // day_ms
                    next_day = (self.day + 1) * day_ms
                    day_start = self.day_start_equity
                    day_min = 0.0
                bar = new_bar(Bar, (i, t, opens[i], highs[i], lows[i], closes[i], volumes[i]))
                if open_orders:
                    self._on_reports(adapter.on_bar(bar), bar)
                equity = equity_at(closes[i])
                ctx.equity = equity
                last_equity = equity
                last_bar = i
                if equity - day_start < day_min:
                    day_min = equity - day_start
                    if breached(day_min):
                        self._breach(day_min, equity, t, i, limit)
                intents = on_bar(ctx, bar)
                if intents:
                    self._on_intents(intents, bar)
                if progress is not None and i % PROGRESS_EVERY == 0:
                    progress(i, n)
                i += 1
                if active is None or open_orders or i >= n:
                    continue
                # the next active bar; the bars before it only move equity (and the daily minimum)
                while k < m and schedule[k] < i:
                    k += 1
                nxt = schedule[k] if k < m else n
                if next_check < nxt:
                    nxt = next_check if next_check > i else i
                if nxt > i:
                    qty = portfolio.qty
                    if qty == 0.0:  # flat: equity is cash on every bar of the span
                        equity = equity_at(closes[nxt - 1])
                        if equity - day_start < day_min:
                            day_min = equity - day_start
                            if breached(day_min):
                                last_equity, last_bar = equity, i
                                ctx.now_ms, ctx.bar_idx, ctx.equity = t_ms[i], i, equity
                                self._breach(day_min, equity, t_ms[i], i, limit)
                    else:
                        lowest, at = self._span_low(closes, i, nxt, qty, portfolio.cash, day_start, day_min)
                        if at >= 0:  # the daily loss limit is breached at bar `at` of the span
                            equity = equity_at(closes[at])
                            last_equity, last_bar = equity, at
                            ctx.now_ms, ctx.bar_idx, ctx.equity = t_ms[at], at, equity
                            self._breach(equity - day_start, equity, t_ms[at], at, limit)
                        day_min = lowest
                        equity = equity_at(closes[nxt - 1])
                    last_equity, last_bar = equity, nxt - 1
                    ctx.now_ms, ctx.bar_idx, ctx.equity = t_ms[nxt - 1], nxt - 1, equity
                    i = nxt
        finally:  # the rest of the run (day close, halts, curve) reads these
            self.last_equity, self.last_bar = last_equity, last_bar
        self.day_min_pnl = day_min
        if progress is not None:
            progress(n, n)

    def _span_low(self, closes: list[float], start: int, stop: int, qty: float, cash: float,
                  day_start: float, day_min: float) -> tuple[float, int]:
        """Mark bars ``start..stop-1`` to market with a fixed position: the day's new minimum PnL
        and the first bar where the daily loss limit is breached (-1: none). The same float
        operations as :meth:`Portfolio.equity` per bar, so the same values, bit for bit."""
        risk_limit = -self.risk.daily_loss_limit_usd
        if stop - start < SPAN_NUMPY_MIN:
            for j in range(start, stop):
                pnl = (cash + qty * closes[j]) - day_start
                if pnl < day_min:
                    day_min = pnl
                    if pnl < risk_limit:
                        return day_min, j
            return day_min, -1
        pnls = (cash + qty * self.bars.close[start:stop]) - day_start
        below = np.flatnonzero(pnls < risk_limit)
        if len(below):
            j = int(below[0])
            return min(day_min, float(pnls[j])), start + j
        low = float(pnls.min())
        return (low if low < day_min else day_min), -1

    def _breach(self, day_min: float, equity: float, t: int, i: int, limit: float) -> None:
        self.day_min_pnl = day_min
        self.emit("RISK", "daily_loss_limit", "ERROR", {
            "day": _day(t), "day_pnl_usd": r10(day_min), "limit_usd": -limit,
            "equity": r10(equity), "bar_idx": i})
        raise Halt("daily_loss_limit", f"day PnL {day_min:.2f} USD below {limit:g} USD")

    # orders and fills -------------------------------------------------------------------------
    def _on_intents(self, intents: Any, bar: Bar) -> None:
        try:
            items = list(intents)
        except TypeError:
            raise StrategyError("INTENT_INVALID", f"on_bar returned {type(intents).__name__}, expected a "
                                "list of Intent or None", field="on_bar") from None
        for intent in items:
            if not isinstance(intent, Intent) or intent.side not in ("buy", "sell") or \
                    not isinstance(intent.qty, (int, float)) or not math.isfinite(intent.qty) or intent.qty <= 0:
                raise StrategyError("INTENT_INVALID", f"invalid intent {intent!r} at bar {bar.idx}",
                                    field="intent")
            self._place(intent, bar)

    def _place(self, intent: Intent, bar: Bar) -> None:
        qty = float(intent.qty)
        self.emit("STRAT", "intent_emitted", "DEBUG",
                  {"bar_idx": bar.idx, "side": intent.side, "qty": r10(qty), "reason": intent.reason[:200]})
        if os.access(self.flag_path, os.F_OK):  # every order is checked, whatever the bar cadence
            raise Halt("emergency_flag", self._flag_detail())
        order_id = self.book.next_id()
        p = self.portfolio
        exposure = p.qty + self.book.working_qty
        decision = self.risk.pre_trade(intent.side, qty, bar.close, exposure)
        step = self.qty_step
        # closing the position "in full" is exact: a size within float noise of it is all of it
        closing = p.lots if intent.side == "sell" else -p.lots
        near = closing if closing > 0 else None
        try:
            limit_lots = to_lots(decision.qty, step, near=near) if decision.qty > 0 else 0
            power = None
            placed_lots = limit_lots
            if limit_lots > 0:
                power = self.risk.buying_power_check(
                    intent.side, to_qty(limit_lots, step), bar.close, cash=p.cash, equity=p.equity(bar.close),
                    position_qty=p.qty, working_qty=self.book.working_qty)
                if power.action != "ok":
                    placed_lots = min(limit_lots, to_lots(power.qty, step))
        except QuantityError:
            self.emit("EXEC", "order_rejected", "WARN",
                      {"order_id": order_id, "bar_idx": bar.idx, "side": intent.side, "qty": r10(qty),
                       "reason": "qty_out_of_range"})
            return
        placed = to_qty(placed_lots, step)
        if decision.action != "ok":
            limited = to_qty(limit_lots, step)
            self.emit("RISK", "limit_exceeded", "WARN", {
                "limit": "max_position_size_usd", "limit_usd": self.risk.max_position_usd,
                "requested_usd": r10(decision.requested_usd), "requested_qty": r10(qty),
                "allowed_qty": r10(limited), "action": decision.action if limited > 0 else "rejected",
                "bar_idx": bar.idx, "order_id": order_id if placed > 0 else None, "stage": "pre_trade"})
        if power is not None and power.action != "ok":
            self._emit_buying_power(intent.side, to_qty(limit_lots, step), placed, bar.close, bar.idx,
                                    order_id if placed > 0 else None, "cut" if placed > 0 else "rejected",
                                    "pre_trade", p.cash, p.equity(bar.close), self.book.working_qty)
        if placed <= 0:
            if decision.action != "ok":
                reason = "risk:max_position_size_usd"
            elif power is not None and power.action != "ok":
                reason = "risk:insufficient_buying_power"
            else:
                reason = "below_qty_step"
            self.emit("EXEC", "order_rejected", "WARN",
                      {"order_id": order_id, "bar_idx": bar.idx, "side": intent.side, "qty": r10(qty),
                       "reason": reason})
            return
        order = Order(order_id, intent.side, placed, bar.idx, bar.t_ms, bar.close)
        self.book.add(order, placed_lots)
        self.ctx.open_order_qty = self.book.working_qty
        self.emit("EXEC", "order_placed", "INFO", {
            "order_id": order_id, "bar_idx": bar.idx, "side": intent.side, "qty": r10(placed),
            "requested_qty": r10(qty), "ref_price": bar.close, "type": "market", "adapter": self.prep.adapter})
        self._on_reports(self.adapter.submit(order), bar)

    def _on_reports(self, reports: list[ExecReport], bar: Bar) -> None:
        for report in reports:
            if report.kind == "fill" and report.fill is not None:
                self._on_fill(report.fill, bar)
            elif report.kind == "error":
                self.emit("EXEC", "adapter_error", "ERROR", {
                    "adapter": self.prep.adapter, "code": report.code or "ADAPTER_ERROR",
                    "message": report.reason[:2000], "line": report.line, "order_id": report.order_id})
            elif report.kind in ("cancel", "reject") and report.order_id in self.book.open:
                self._close_order(report.order_id, report.reason or report.kind, bar,
                                  rejected=report.kind == "reject")

    def _close_order(self, order_id: str, reason: str, bar: Bar, *, rejected: bool = False,
                     level: str = "INFO") -> None:
        working = self.book.close(order_id)
        self.ctx.open_order_qty = self.book.working_qty
        order = working.order
        remaining, filled = to_qty(working.remaining, self.qty_step), to_qty(working.filled, self.qty_step)
        if rejected:
            self.emit("EXEC", "order_rejected", "WARN", {"order_id": order_id, "bar_idx": bar.idx,
                                                        "side": order.side, "qty": r10(remaining), "reason": reason})
        else:
            self.emit("EXEC", "order_cancelled", level, {
                "order_id": order_id, "bar_idx": bar.idx, "side": order.side,
                "remaining_qty": r10(remaining), "filled_qty": r10(filled), "reason": reason})

    def _on_fill(self, fill: Fill, bar: Bar) -> None:
        entry = self.book.open.get(fill.order_id)
        if entry is None:
            self.emit("EXEC", "adapter_error", "ERROR", {
                "adapter": self.prep.adapter, "code": "UNKNOWN_ORDER",
                "message": f"fill for unknown or closed order {fill.order_id}", "line": None,
                "order_id": fill.order_id})
            return
        order = entry.order
        step = self.qty_step
        try:
            lots = min(to_lots(fill.qty, step, near=entry.remaining), entry.remaining)
        except QuantityError:
            self.emit("EXEC", "adapter_error", "ERROR", {
                "adapter": self.prep.adapter, "code": "QTY_OUT_OF_RANGE",
                "message": f"fill of {fill.qty!r} units for {fill.order_id} is not a number of lots",
                "line": None, "order_id": fill.order_id})
            return
        qty = to_qty(lots, step)
        tick = self.price_tick
        if tick is not None:
            price = to_ticks(fill.price, tick) * tick
            if price != fill.price:
                fill = replace(fill, price=price)
        cut, cut_reason = False, "risk:max_position_size_usd"
        if self.can_cut_fills:
            allowed = self.risk.allowed_qty(fill.side, qty, fill.price, self.portfolio.qty)
            if allowed < qty * (1.0 - 1e-12):
                cut = True
                self.emit("RISK", "limit_exceeded", "WARN", {
                    "limit": "max_position_size_usd", "limit_usd": self.risk.max_position_usd,
                    "requested_usd": r10(abs(self.portfolio.qty + (qty if fill.side == "buy" else -qty)) * fill.price),
                    "requested_qty": r10(qty), "allowed_qty": r10(allowed), "action": "cancelled_remainder",
                    "bar_idx": bar.idx, "order_id": fill.order_id, "stage": "at_fill"})
                lots = min(lots, to_lots(allowed, step))
                qty = to_qty(lots, step)
            p = self.portfolio
            if lots > 0:
                fee_unit = fill.fee / fill.qty if fill.qty > 0 else 0.0
                afford = self.risk.affordable_qty(fill.side, qty, fill.price, cash=p.cash,
                                                  equity=p.equity(fill.price), position_qty=p.qty,
                                                  working_qty=0.0, fee_per_unit=fee_unit)
                if afford < qty * (1.0 - 1e-12):
                    cut, cut_reason = True, "risk:insufficient_buying_power"
                    allowed_lots = min(lots, to_lots(afford, step))
                    self._emit_buying_power(fill.side, qty, to_qty(allowed_lots, step), fill.price, bar.idx,
                                            fill.order_id, "cancelled_remainder", "at_fill", p.cash,
                                            p.equity(fill.price), 0.0)
                    lots = allowed_lots
                    qty = to_qty(lots, step)
        if lots > 0:
            if qty != fill.qty:
                fill = replace(fill, qty=qty, fee=fill.fee * qty / fill.qty)
            self.portfolio.apply(fill, lots)
            _, done = self.book.record_fill(fill, lots)
            remaining = to_qty(entry.remaining, step)
            self.ctx.open_order_qty = self.book.working_qty
            p = self.portfolio
            self.ctx.position = p.qty
            self.ctx.cash = p.cash
            self.changes.append((bar.idx, p.qty, p.cash))
            self.emit("EXEC", "order_filled", "INFO", {
                "order_id": fill.order_id, "bar_idx": bar.idx, "side": fill.side, "fill_qty": r10(qty),
                "price": r10(fill.price), "fee": r10(fill.fee), "remaining_qty": r10(max(remaining, 0.0)) if not done else 0.0,
                "status": "filled" if done else "partially_filled",
                "slippage_bps": r10(slippage_bps(fill.side, fill.price, order.ref_price)),
                "latency_bars": bar.idx - order.bar_idx})
            self.emit("EXEC", "position_updated", "INFO", {
                "bar_idx": bar.idx, "qty": r10(p.qty), "avg_price": r10(p.avg_price),
                "position_usd": r10(p.qty * fill.price), "cash": r10(p.cash),
                "realized_pnl": r10(p.realized_pnl), "fees_paid": r10(p.fees_paid),
                "equity": r10(p.cash + p.qty * fill.price)})
            self._call(self.prep.strategy.strategy.on_fill, self.ctx, fill)
        if cut and fill.order_id in self.book.open:
            self.adapter.cancel(fill.order_id)
            self._close_order(fill.order_id, cut_reason, bar, level="WARN")

    def _emit_buying_power(self, side: str, requested: float, allowed: float, price: float, bar_idx: int,
                           order_id: str | None, action: str, stage: str, cash: float, equity: float,
                           working_qty: float) -> None:
        risk = self.risk
        self.emit("RISK", "insufficient_buying_power", "WARN", {
            "account": risk.account_type, "max_leverage": risk.max_leverage if risk.account_type == "margin" else None,
            "buying_power_usd": r10(risk.buying_power_usd(cash=cash, equity=equity, exposure_qty=working_qty,
                                                          price=price)),
            "requested_usd": r10(requested * price), "requested_qty": r10(requested), "allowed_qty": r10(allowed),
            "side": side, "action": action, "bar_idx": bar_idx, "order_id": order_id, "stage": stage})

    # endings ----------------------------------------------------------------------------------
    def _close_day(self) -> None:
        assert self.day is not None  # set before the first bar
        pnl = self.last_equity - self.day_start_equity
        self.emit("RISK", "day_end", "INFO", {
            "day": _day(self.day * DAY_MS), "pnl_usd": r10(pnl), "start_equity": r10(self.day_start_equity),
            "end_equity": r10(self.last_equity), "limit_usd": self.risk.daily_loss_limit_usd,
            "min_pnl_usd": r10(self.day_min_pnl)})
        self.day_start_equity = self.last_equity
        self.day_min_pnl = 0.0

    def _cancel_open(self, reason: str, level: str) -> int:
        bar = self._current_bar()
        cancelled = 0
        for order_id in sorted(self.book.open):
            self.adapter.cancel(order_id)
            self._close_order(order_id, reason, bar, level=level)
            cancelled += 1
        return cancelled

    def _current_bar(self) -> Bar:
        i = self.ctx.bar_idx if self.ctx.bar_idx is not None else 0
        b = self.bars
        return Bar(i, int(b.t_ms[i]), float(b.open[i]), float(b.high[i]), float(b.low[i]),
                   float(b.close[i]), float(b.volume[i]))

    def _halt(self, halt: Halt) -> None:
        self.halt_reason = halt.reason
        cancelled = self._cancel_open(f"halt:{halt.reason}", "WARN")
        category = "SYS" if halt.reason == "emergency_flag" else "RISK"
        self.emit(category, "halt", "CRITICAL", {"reason": halt.reason, "detail": halt.detail[:500],
                                                  "bar_idx": self.ctx.bar_idx, "cancelled_orders": cancelled})
        self.findings.append({"code": "HALT_" + halt.reason.upper(), "level": "CRITICAL", "count": 1,
                              "message": f"run halted: {halt.detail}"})
        self.bus.flush(durable=True)

    def _finish(self) -> None:
        if self.halt_reason is None:
            self._cancel_open("end_of_data", "INFO")
        # also on a halt: the adapter's last word (a journal, undelivered venue messages) is evidence
        for report in self.adapter.stop():
            self._on_reports([report], self._current_bar())
        if self.last_bar >= 0:
            self._close_day()

    def _emit_run_end(self, status: str, reason: str | None) -> None:
        metrics = self.metrics()
        self.emit("SYS", "run_end", "INFO" if status == "complete" else "CRITICAL", {
            "status": status, "reason": reason, "bars_processed": self.bars_processed,
            "bars_total": len(self.bars), "orders": len(self.book.orders), "fills": len(self.book.fills),
            "trades": metrics["trades"], "final_equity": metrics["final_equity_usd"],
            "total_return": metrics["total_return"]})

    @property
    def bars_processed(self) -> int:
        return int(len(self.processed_idx()))

    def processed_idx(self) -> np.ndarray:
        return processed_indices(self.last_bar, [d.bar_idx for d in self.prep.dataset.duplicates])

    def curve(self) -> np.ndarray:
        """Per-bar equity curve, expanded from the sparse fill-time changes of qty and cash."""
        if self._curve_cache is None:
            self._curve_cache = equity_curve(self.bars, self.processed_idx(), self.changes,
                                             self.cfg.starting_cash)
        return self._curve_cache

    def metrics(self) -> dict[str, Any]:
        if self._metrics_cache is None:
            curve = self.curve()
            p = self.portfolio
            from treasure.data.calendar import annualization_for

            yearly = annualization_for(self.cfg.raw, self.prep.dataset.interval_ms, int(self.bars.t_ms[0]),
                                       int(self.bars.t_ms[-1]))
            self._metrics_cache = summarize(
                equity=curve["equity"], qty=curve["qty"], starting_cash=self.cfg.starting_cash,
                interval_ms=self.prep.dataset.interval_ms, trade_pnls=p.trade_pnls, fees=p.fees_paid,
                realized_pnl=p.realized_pnl, orders=len(self.book.orders), fills=len(self.book.fills),
                annualization=yearly)
        return self._metrics_cache
