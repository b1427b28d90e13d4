"""The invariants every Treasure run must keep, as plain functions over a run's evidence.

Each ``check_*`` function takes a run's :class:`~treasure.hunt.runner.Evidence` (event log,
court and eqs reports, equity curve) and raises :class:`InvariantViolation` naming the invariant,
what broke and where (event seq, bar index); it returns ``None`` when the run is sound. They only
read evidence, so they apply to any run: a hunt's generated case, a gate's run, a user's own.

:data:`CHECKS` is the one list of invariants (name, what it promises, the function), in the order
they are checked; :data:`INVARIANTS` (their names), the ``treasure hunt --skip`` choices and the
hunt report's ``invariants``/``skipped`` are derived from it. Event checks a plugin registers
(``treasure_check_event``, see :mod:`treasure.hookspecs`) run as part of ``event_log``.

Pure: no pytest, no hypothesis, numpy only through the evidence it reads. The pytest fixture and
marker live in :mod:`pytest_treasure.invariants`, which re-exports this module.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence, TypeVar

from treasure.errors import TreasureError

if TYPE_CHECKING:  # pragma: no cover
    from treasure.contracts import Contracts
    from treasure.data import Bars
    from treasure.hunt.case import Case, GeneratedDataset
    from treasure.hunt.runner import Evidence, Outcome

__all__ = [
    "CHECKS",
    "INVARIANTS",
    "Invariant",
    "InvariantViolation",
    "check_accounting",
    "check_clean_run",
    "check_coded_errors",
    "check_data_events",
    "check_determinism",
    "check_event_log",
    "check_evidence",
    "check_no_lookahead",
    "check_orders",
    "check_outcome",
    "check_report_agreement",
    "check_risk",
    "restrict",
    "selected",
]

T = TypeVar("T")
_REL = 1e-9  # evidence numbers are rounded to 10 decimals; float arithmetic adds a few ulps
_TRADING = ("intent_emitted", "order_placed", "order_filled", "position_updated")


class InvariantViolation(AssertionError):
    """A run broke an invariant. ``invariant`` is its name (see :data:`INVARIANTS`)."""

    def __init__(self, invariant: str, message: str, *, details: Sequence[str] = ()) -> None:
        self.invariant = invariant
        self.message = message
        self.details = list(details)
        text = f"[{invariant}] {message}"
        if self.details:
            text += "\n" + "\n".join(f"  {line}" for line in self.details)
        super().__init__(text)

    def to_dict(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "message": self.message, "details": self.details}


def _fail(invariant: str, message: str, details: Sequence[str] = ()) -> None:
    raise InvariantViolation(invariant, message, details=details)


def _close(a: float, b: float, scale: float = 0.0) -> bool:
    return abs(a - b) <= _REL * (abs(a) + abs(b) + abs(scale)) + 1e-9


def selected(only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> tuple[str, ...]:
    """The invariants to check: ``only`` those (default all) minus ``skip``, narrowed further by an
    enclosing :func:`restrict`; names are checked against :data:`INVARIANTS`."""
    only_t = tuple(only) if only is not None else INVARIANTS
    skip_t = tuple(skip or ())
    unknown = sorted(set(only_t + skip_t) - set(INVARIANTS))
    if unknown:
        raise ValueError(f"unknown invariant(s) {', '.join(unknown)}; known: {', '.join(INVARIANTS)}")
    active = _SELECTION.get()
    return tuple(name for name in INVARIANTS
                 if name in only_t and name not in skip_t and (active is None or name in active))


_SELECTION: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("treasure_invariants",
                                                                                    default=None)


@contextlib.contextmanager
def restrict(names: Iterable[str]) -> Iterator[tuple[str, ...]]:
    """Inside this block, :func:`selected` (so every check function and checker) keeps only
    ``names``: what ``@pytest.mark.treasure_invariants(only=..., skip=...)`` does for one test."""
    chosen = selected(names)
    token = _SELECTION.set(chosen)
    try:
        yield chosen
    finally:
        _SELECTION.reset(token)


@lru_cache(maxsize=8)
def _contracts(truth_dir: Path) -> "Contracts":
    from treasure.engine.request import contracts_for  # one per process per version of truth/

    return contracts_for(truth_dir)


def _first(events: list[dict[str, Any]], event_type: str) -> dict[str, Any] | None:
    return next((e for e in events if e["event_type"] == event_type), None)


def _where(event: dict[str, Any]) -> str:
    bar = event.get("payload", {}).get("bar_idx")
    return f"seq {event['seq']} ({event['event_type']}" + (f", bar {bar})" if bar is not None else ")")


# ------------------------------------------------------------------------------------------
# errors and outcomes


def check_coded_errors(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | TreasureError:
    """Call ``fn``; return its result, or the :class:`TreasureError` it raised. Any other
    exception is a violation: bad input must always come back as a coded error."""
    try:
        return fn(*args, **kwargs)
    except TreasureError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - this is the check
        import traceback

        tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]
        _fail("coded_errors", f"{type(exc).__name__} escaped instead of a coded TreasureError: {exc}",
              [line.rstrip() for chunk in tail for line in chunk.splitlines()])
        raise AssertionError("unreachable")  # pragma: no cover


def check_clean_run(outcome: "Outcome", case: "Case | None" = None) -> None:
    """A crash breaks ``coded_errors``; any other non-run breaks ``clean_run`` unless the case's
    data policy demanded exactly that refusal."""
    if outcome.status == "crashed":
        lines = (outcome.traceback or "").strip().splitlines()
        _fail("coded_errors", f"uncoded exception ({outcome.where}): {lines[-1] if lines else '?'}", lines[-6:])
    expected = case.expected_refusal() if case is not None else None
    if expected is not None:
        code, line = expected
        if outcome.status != "refused" or outcome.code != code or (outcome.error or {}).get("line") != line:
            got = f"{outcome.status} {outcome.code or ''} line {(outcome.error or {}).get('line')}".strip()
            _fail("clean_run", f"the SSOT's data policy demands refusal {code} at line {line}; got {got}")
        return
    if outcome.status in ("complete", "halted"):
        if outcome.missing is not None:
            _fail("clean_run", f"the run finished {outcome.status} but its evidence is incomplete: {outcome.missing}")
        return
    error = outcome.error or {}
    where = " ".join(f"{k} {error[k]}" for k in ("path", "line", "field") if error.get(k) is not None)
    what = {"refused": "valid input was refused", "raised": "a coded error escaped the run after it started",
            "error": "the run ended in error"}.get(outcome.status, outcome.status)
    _fail("clean_run", f"{what}: {error.get('code')}: {error.get('message')}" + (f" ({where})" if where else ""))


# ------------------------------------------------------------------------------------------
# evidence


def check_event_log(evidence: "Evidence", contracts: "Contracts | None" = None) -> None:
    """The log verifies line by line (``treasure.eventlog.verify_log`` against ``truth/``),
    starts with run_start, ends with run_end, and holds one of each."""
    from treasure.eventlog import verify_log, verify_log_bytes

    contracts = contracts or _contracts(Path(evidence.truth_dir))
    try:
        if evidence.log_paths:
            verify_log(list(evidence.log_paths), contracts)
        else:  # an in-memory run's log
            verify_log_bytes(evidence.log_bytes, contracts, source=f"run_{evidence.run_id}.jsonl (in memory)")
    except TreasureError as exc:
        _fail("event_log", f"{exc.code}: {exc}")
    events = evidence.events
    counts = Counter(e["event_type"] for e in events)
    if events[0]["event_type"] != "run_start" or counts["run_start"] != 1:
        _fail("event_log", f"the log must open with the only run_start; it opens with {events[0]['event_type']} "
                           f"and holds {counts['run_start']} run_start")
    if events[-1]["event_type"] != "run_end" or counts["run_end"] != 1:
        _fail("event_log", f"the log must close with the only run_end; it closes with {events[-1]['event_type']} "
                           f"and holds {counts['run_end']} run_end")
    _plugin_event_checks(evidence, events)


def _plugin_event_checks(evidence: "Evidence", events: list[dict[str, Any]]) -> None:
    """Event checks registered by plugins (``treasure_check_event``); free when there are none."""
    from treasure.plugins import check_event, has_event_checks

    if not has_event_checks():
        return
    from treasure.workspace import Workspace

    workspace = Workspace(Path(evidence.truth_dir).parent)
    for event in events:
        problems = check_event(event, workspace)
        if problems:
            _fail("event_log", f"{_where(event)}: a plugin's event check failed", problems)


def check_accounting(evidence: "Evidence") -> None:
    """Equity = cash + qty x close at every bar of equity.npy; each bar's qty and cash are those
    after the last fill at or before it; each fill moves cash by -signed qty x price - fee."""
    events = evidence.events
    start = float(events[0]["payload"]["starting_cash_usd"])
    curve = evidence.equity
    for row in curve:
        marked = float(row["qty"]) * float(row["close"])
        expected = float(row["cash"]) + marked
        if not _close(float(row["equity"]), expected, abs(float(row["cash"])) + abs(marked)):
            _fail("accounting", f"bar {int(row['bar_idx'])}: equity {float(row['equity'])!r} != cash "
                                f"{float(row['cash'])!r} + qty {float(row['qty'])!r} x close {float(row['close'])!r}")
    qty, cash, fees = 0.0, start, 0.0
    last_fill: dict[str, Any] | None = None
    updates: list[tuple[int, float, float, dict[str, Any]]] = []
    for event in events:
        kind, p = event["event_type"], event["payload"]
        if kind == "order_filled":
            last_fill = event
        elif kind == "position_updated":
            if last_fill is None or last_fill["seq"] != event["seq"] - 1:
                _fail("accounting", f"{_where(event)} does not directly follow an order_filled")
            f = last_fill["payload"]  # type: ignore[index]
            signed = f["fill_qty"] if f["side"] == "buy" else -f["fill_qty"]
            notional = abs(signed) * f["price"]
            want_cash = cash - signed * f["price"] - f["fee"]
            # evidence numbers are rounded to 10 decimals, so a product of two of them carries an
            # error of up to 5e-11 x each factor: the scales below include the factors themselves
            factors = abs(f["fill_qty"]) + f["price"] + abs(p["qty"])
            checks = (("cash", p["cash"], want_cash, abs(cash) + notional + factors),
                      ("qty", p["qty"], qty + signed, abs(qty) + abs(signed)),
                      ("fees_paid", p["fees_paid"], fees + f["fee"], fees),
                      ("equity", p["equity"], p["cash"] + p["qty"] * f["price"],
                       abs(p["cash"]) + abs(p["qty"]) * f["price"] + factors),
                      ("position_usd", p["position_usd"], p["qty"] * f["price"], abs(p["qty"]) * f["price"] + factors))
            for name, got, want, scale in checks:
                if not _close(float(got), float(want), scale):
                    fill = f"{f['side']} {f['fill_qty']} @ {f['price']}, fee {f['fee']}"
                    _fail("accounting", f"{_where(event)}: {name} {got!r}, but the fill ({fill}) makes it {want!r}")
            qty, cash, fees = float(p["qty"]), float(p["cash"]), float(p["fees_paid"])
            updates.append((int(p["bar_idx"]), qty, cash, event))
            last_fill = None
    q, c, j = 0.0, start, 0
    for row in curve:
        bar = int(row["bar_idx"])
        while j < len(updates) and updates[j][0] <= bar:
            q, c = updates[j][1], updates[j][2]
            j += 1
        if not (_close(float(row["qty"]), q, abs(q)) and _close(float(row["cash"]), c, abs(c))):
            _fail("accounting", f"bar {bar}: equity.npy holds qty {float(row['qty'])!r} cash {float(row['cash'])!r}, "
                                f"but after the fills up to that bar the position is qty {q!r} cash {c!r}")
    final = float(curve["equity"][-1]) if len(curve) else start
    metrics = evidence.court["metrics"]
    run_end = events[-1]["payload"]
    for name, got in (("court metrics.final_equity_usd", metrics["final_equity_usd"]),
                      ("run_end final_equity", run_end["final_equity"])):
        if not _close(float(got), final, abs(final)):
            _fail("accounting", f"{name} {got!r} != the equity curve's last value {final!r}")


def check_risk(evidence: "Evidence") -> None:
    """No fill grows |position| beyond ``risk.max_position_size_usd`` (at the fill price); a day
    whose PnL fell below ``-daily_loss_limit_usd`` halted; after a halt nothing trades."""
    events = evidence.events
    risk = events[0]["payload"]["ssot"]["risk"]
    limit = float(risk["max_position_size_usd"])
    loss_limit = float(risk["daily_loss_limit_usd"])
    qty = 0.0
    price = None
    for event in events:
        kind, p = event["event_type"], event["payload"]
        if kind == "order_filled":
            price = float(p["price"])
        elif kind == "position_updated" and price is not None:
            new = float(p["qty"])
            exposure = abs(new) * price
            if exposure > limit * (1 + 1e-9) + 1e-6 and abs(new) > abs(qty) * (1 + 1e-12):
                _fail("risk", f"{_where(event)}: the fill grew the position to {exposure:.6f} USD "
                              f"(qty {new!r} @ {price!r}), beyond max_position_size_usd {limit:g}")
            qty = new
    halts = [i for i, e in enumerate(events) if e["event_type"] == "halt"]
    run_end = events[-1]["payload"]
    if len(halts) > 1:
        _fail("risk", f"{len(halts)} halt events; a run halts once")
    if halts:
        at = halts[0]
        after = [e for e in events[at + 1:] if e["event_type"] in _TRADING]
        if after:
            _fail("risk", f"trading after the halt at {_where(events[at])}: {_where(after[0])}")
        if run_end["status"] != "halted" or evidence.court["status"] != "halted":
            _fail("risk", f"a halt event, but run_end says {run_end['status']!r} and the court report "
                          f"{evidence.court['status']!r}")
        halt_bar = events[at]["payload"]["bar_idx"]
        curve = evidence.equity
        if halt_bar is not None and len(curve) and int(curve["bar_idx"][-1]) > halt_bar:
            _fail("risk", f"the equity curve goes on to bar {int(curve['bar_idx'][-1])} after the halt at "
                          f"bar {halt_bar}")
    elif run_end["status"] == "halted":
        _fail("risk", "run_end says halted but no halt event was logged")
    for i, event in enumerate(events):
        if event["event_type"] == "daily_loss_limit":
            nxt = next((e for e in events[i + 1:] if e["event_type"] == "halt"), None)
            if nxt is None or nxt["payload"]["reason"] != "daily_loss_limit":
                _fail("risk", f"{_where(event)} was not followed by a daily_loss_limit halt")
        elif event["event_type"] == "day_end":
            p = event["payload"]
            if float(p["min_pnl_usd"]) < -loss_limit - 1e-6 * max(1.0, loss_limit) and not halts:
                _fail("risk", f"day {p['day']} fell to {p['min_pnl_usd']} USD, below -daily_loss_limit_usd "
                              f"{loss_limit:g}, and trading went on without a halt")


def check_orders(evidence: "Evidence", bars: "Bars | None" = None) -> None:
    """Every placed order ends exactly once (filled, cancelled or rejected) and nothing happens
    to it after; fills never exceed the placed qty, placed never exceeds requested; with the
    dataset's ``bars``: fills land on a later bar than the decision, at a price inside that
    bar's range widened by the SSOT's slippage."""
    events = evidence.events
    slip = float(events[0]["payload"]["ssot"]["execution"]["slippage"]["bps"]) / 10_000.0
    placed: dict[str, dict[str, Any]] = {}
    filled: dict[str, float] = {}
    fills: Counter[str] = Counter()
    ended: dict[str, dict[str, Any]] = {}
    run_status = events[-1]["payload"]["status"]
    for event in events:
        kind, p = event["event_type"], event["payload"]
        oid: str | None = p.get("order_id") if isinstance(p, dict) else None
        if kind == "order_placed" and oid is not None:
            if oid in placed or oid in ended:
                _fail("orders", f"{_where(event)}: order id {oid} used twice")
            if float(p["qty"]) > float(p["requested_qty"]) * (1 + 1e-9) + 1e-10:  # both rounded to 1e-10
                _fail("orders", f"{_where(event)}: placed qty {p['qty']} exceeds the requested {p['requested_qty']}")
            placed[oid] = event
            filled[oid] = 0.0
            continue
        if kind not in ("order_filled", "order_cancelled", "order_rejected") or oid is None:
            continue
        if oid in ended:
            _fail("orders", f"{_where(event)}: order {oid} already ended at {_where(ended[oid])}")
        if oid not in placed:
            if kind == "order_rejected":  # refused before placing (risk, qty step): ends at once
                ended[oid] = event
                continue
            _fail("orders", f"{_where(event)}: {kind} for order {oid}, which was never placed")
        order = placed[oid]["payload"]
        if kind == "order_filled":
            filled[oid] += float(p["fill_qty"])
            fills[oid] += 1
            # each fill_qty is rounded to 10 decimals, so n partial fills may add up to n * 5e-11 more
            if filled[oid] > float(order["qty"]) * (1 + 1e-9) + 5e-11 * (fills[oid] + 1):
                _fail("orders", f"{_where(event)}: order {oid} filled {filled[oid]!r} of {order['qty']}")
            if p["side"] != order["side"]:
                _fail("orders", f"{_where(event)}: fill side {p['side']} on a {order['side']} order")
            if bars is not None:
                b = int(p["bar_idx"])
                if b <= int(order["bar_idx"]):
                    _fail("orders", f"{_where(event)}: filled on bar {b}, not after the decision bar "
                                    f"{order['bar_idx']} (look-ahead)")
                lo, hi = float(bars.low[b]) * (1 - slip), float(bars.high[b]) * (1 + slip)
                if not lo * (1 - 1e-9) <= float(p["price"]) <= hi * (1 + 1e-9):
                    _fail("orders", f"{_where(event)}: fill price {p['price']} outside bar {b}'s range "
                                    f"[{lo!r}, {hi!r}] (low/high with {slip * 1e4:g} bps slippage)")
            if p["status"] == "filled":
                ended[oid] = event
        else:
            ended[oid] = event
    if run_status != "error":
        open_orders = sorted(set(placed) - set(ended))
        if open_orders:
            _fail("orders", f"order(s) {', '.join(open_orders[:5])} never reached a terminal state "
                            f"(filled, cancelled, rejected) by run_end")


def check_report_agreement(evidence: "Evidence") -> None:
    """The court and eqs reports agree with the events: counts, last hash, status, orders,
    fills, trades, fees, bars, inputs' hashes, findings, and the equity curve's SHA-256."""
    import hashlib

    events = evidence.events
    court, eqs = evidence.court, evidence.eqs
    metrics = court["metrics"]
    counts = Counter(e["event_type"] for e in events)
    run_start, run_end = events[0]["payload"], events[-1]["payload"]
    fills = [e["payload"] for e in events if e["event_type"] == "order_filled"]
    fees = math.fsum(float(f["fee"]) for f in fills)
    loaded = _first(events, "dataset_loaded")
    pairs: list[tuple[str, Any, Any]] = [
        ("court events.total", court["events"]["total"], len(events)),
        ("court events.last_hash", court["events"]["last_hash"], events[-1]["hash"]),
        ("court events.by_category", court["events"]["by_category"],
         dict(sorted(Counter(e["category"] for e in events).items()))),
        ("court events.by_level", court["events"]["by_level"],
         dict(sorted(Counter(e["level"] for e in events).items()))),
        ("court status", court["status"], run_end["status"]),
        ("court reason", court["reason"], run_end["reason"]),
        ("court metrics.orders", metrics["orders"], counts["order_placed"]),
        ("run_end orders", run_end["orders"], counts["order_placed"]),
        ("eqs orders", eqs["orders"], counts["order_placed"]),
        ("court metrics.fills", metrics["fills"], counts["order_filled"]),
        ("run_end fills", run_end["fills"], counts["order_filled"]),
        ("eqs fills", eqs["fills"], counts["order_filled"]),
        ("run_end trades", run_end["trades"], metrics["trades"]),
        ("run_end bars_processed", run_end["bars_processed"], metrics["bars"]),
        ("court metrics.bars", metrics["bars"], len(evidence.equity)),
        ("court evidence.equity_curve_sha256", court["evidence"]["equity_curve_sha256"],
         hashlib.sha256(evidence.equity_bytes).hexdigest()),
        ("court inputs.seed", court["inputs"]["seed"], run_start["seed"]),
        ("court inputs.dataset_sha256", court["inputs"]["dataset_sha256"], run_start["dataset"]["sha256"]),
        ("court run_id", court["run_id"], events[0]["run_id"]),
        ("eqs run_id", eqs["run_id"], events[0]["run_id"]),
    ]
    if loaded is not None:
        pairs.append(("dataset_loaded dataset_sha", loaded["payload"]["dataset_sha"], run_start["dataset"]["sha256"]))
    for name, got, want in pairs:
        if got != want:
            _fail("report_agreement", f"{name} is {got!r}, the events say {want!r}")
    for name, got in (("court metrics.fees_usd", metrics["fees_usd"]),
                      ("eqs fees.total_usd", eqs["fees"]["total_usd"])):
        if not _close(float(got), fees, fees):
            _fail("report_agreement", f"{name} is {got!r}, the fills' fees add up to {fees!r}")
    if not _close(float(run_end["total_return"]), float(metrics["total_return"])):
        _fail("report_agreement", f"run_end total_return {run_end['total_return']!r} != court "
                                  f"{metrics['total_return']!r}")
    findings = {f["code"]: f["count"] for f in court["findings"]}
    for code, event_type in (("DATA_GAP", "data_gap_detected"), ("DUPLICATE_TIMESTAMP", "duplicate_timestamp"),
                             ("RISK_LIMIT_EXCEEDED", "limit_exceeded")):
        if code == "RISK_LIMIT_EXCEEDED":
            want = counts[event_type] or None
        else:  # data findings count what the dataset holds, events what the run reached
            want = (loaded["payload"]["gaps" if code == "DATA_GAP" else "duplicates"] if loaded else 0) or None
        if findings.get(code) != want:
            _fail("report_agreement", f"court finding {code} counts {findings.get(code)}, expected {want}")


def check_data_events(evidence: "Evidence", dataset: "GeneratedDataset") -> None:
    """The engine reports exactly the gaps and duplicates the dataset holds: in dataset_loaded,
    and one event per gap/duplicate at its bar for every bar the run reached."""
    events = evidence.events
    loaded = _first(events, "dataset_loaded")
    if loaded is None:
        _fail("data_events", "no dataset_loaded event")
    p = loaded["payload"]  # type: ignore[index]
    if (p["bars"], p["gaps"], p["duplicates"], p["dataset_sha"]) != (
            len(dataset), len(dataset.gaps), len(dataset.duplicates), dataset.sha256):
        _fail("data_events", f"dataset_loaded says {p['bars']} bars, {p['gaps']} gaps, {p['duplicates']} duplicates; "
                             f"the data has {len(dataset)}, {len(dataset.gaps)}, {len(dataset.duplicates)}")
    halt = _first(events, "halt")
    halt_bar = halt["payload"]["bar_idx"] if halt is not None else None
    reached = len(dataset) - 1 if halt is None else (-1 if halt_bar is None else halt_bar)
    for event_type, injected in (("data_gap_detected", dataset.gaps), ("duplicate_timestamp", dataset.duplicates)):
        got = [e["payload"]["bar_idx"] for e in events if e["event_type"] == event_type]
        want = [i for i in injected if i <= reached]
        if got != want:
            _fail("data_events", f"{event_type} at bars {got}, but the data has them at {want} "
                                 f"(bars reached: 0..{reached})")
    t = dataset.bars.t_ms
    interval = dataset.interval_ms
    for e in events:
        if e["event_type"] == "data_gap_detected":
            i = e["payload"]["bar_idx"]
            missing = (int(t[i]) - int(t[i - 1])) // interval - 1
            if e["payload"]["missing_bars"] != missing:
                _fail("data_events", f"{_where(e)}: missing_bars {e['payload']['missing_bars']}, "
                                     f"the data skips {missing}")


def check_determinism(a: "Evidence", b: "Evidence") -> None:
    """Two runs of the same inputs left the same canonical evidence: identical event log bytes,
    court and eqs reports equal after dropping volatile fields, identical equity.npy."""
    from treasure.compare import compare_documents, compare_event_logs

    if a.log_bytes != b.log_bytes:
        # hash and prev differ from the first changed event on: show the content that differs
        diff = compare_event_logs(a.events, b.events, drop=["hash", "prev"], max_events=3, max_lines=8)
        first = next((x["seq"] for x, y in zip(a.events, b.events) if x != y), min(len(a.events), len(b.events)))
        _fail("determinism", f"the event logs of two runs of the same inputs differ from seq {first} on",
              diff.summary.splitlines() or ["(byte-level difference)"])
    contracts = _contracts(Path(a.truth_dir))
    for name, left, right in (("court_report", a.court, b.court), ("eqs_report", a.eqs, b.eqs)):
        diff = compare_documents(left, right, volatile=contracts.volatile_paths(name))
        if not diff.equal:
            _fail("determinism", f"{name}.json differs between two runs of the same inputs", diff.summary.splitlines())
    if a.equity_bytes != b.equity_bytes:
        _fail("determinism", "equity.npy differs between two runs of the same inputs")


def check_no_lookahead(case: "Case | None", outcome: "Outcome") -> None:
    """The strategy's decisions before a bar do not change when the data after it is cut off: the
    case is re-run in memory on a few prefixes (cut at bars sampled from its seed) and every
    intent before each cut must equal the full run's (:func:`treasure.lookahead.check_case_lookahead`).
    Only for a case that ran (complete or halted) in a staged workspace; it re-runs the engine, so
    it is the one invariant that costs more than reading evidence (see docs/hunting.md)."""
    if case is None or outcome.evidence is None or outcome.status not in ("complete", "halted"):
        return
    from treasure.lookahead import check_case_lookahead

    check_case_lookahead(case, outcome.evidence)


def check_evidence(evidence: "Evidence", *, dataset: "GeneratedDataset | None" = None,
                   only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> None:
    """Every evidence invariant (event_log first: the others read its events)."""
    names = selected(only, skip)
    if "event_log" in names:
        check_event_log(evidence)
    if "accounting" in names:
        check_accounting(evidence)
    if "risk" in names:
        check_risk(evidence)
    if "orders" in names:
        check_orders(evidence, dataset.bars if dataset is not None else None)
    if "report_agreement" in names:
        check_report_agreement(evidence)
    if "data_events" in names and dataset is not None:
        check_data_events(evidence, dataset)


def check_outcome(case: "Case | None", first: "Outcome", second: "Outcome | None" = None, *,
                  only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> None:
    """Check one case's outcome (and, for determinism, a second run of it) against every
    selected invariant; raise the first :class:`InvariantViolation`."""
    names = selected(only, skip)
    runs = [first] + ([second] if second is not None else [])
    for outcome in runs:
        if outcome.status == "crashed" and "coded_errors" in names:
            check_clean_run(outcome)
    if "clean_run" in names:
        check_clean_run(first, case)
    dataset = case.dataset if case is not None else None
    if first.evidence is not None:
        check_evidence(first.evidence, dataset=dataset, only=names)
    if second is not None and "determinism" in names:
        if (first.status, first.code) != (second.status, second.code):
            _fail("determinism", f"two runs of the same inputs ended differently: {first.status} {first.code or ''} "
                                 f"({first.where}) vs {second.status} {second.code or ''} ({second.where})")
        if first.evidence is not None and second.evidence is not None:
            check_determinism(first.evidence, second.evidence)
    if "lookahead" in names:  # after determinism: a nondeterministic strategy is not a leaking one
        check_no_lookahead(case, first)




# ------------------------------------------------------------------------------------------
# the registry: the one list of invariants


@dataclass(frozen=True)
class Invariant:
    """One invariant: its ``name`` (for ``skip``/``only``, ``--skip``, reports), what it promises,
    and the function checking it."""

    name: str
    promise: str
    check: Callable[..., Any]


#: Every invariant, in the order they are checked (cheap and fundamental first).
CHECKS: tuple[Invariant, ...] = (
    Invariant("coded_errors", "nothing but a coded TreasureError ever escapes", check_coded_errors),
    Invariant("clean_run", "valid input runs to complete or halted; a refusal only where the SSOT's data "
              "policy demands it (on_gap/on_duplicate: error), with its code", check_clean_run),
    Invariant("event_log", "the log verifies (schema, seq, time, hash chain); run_start first, run_end last; "
              "plugins' event checks pass", check_event_log),
    Invariant("accounting", "equity = cash + qty x close at every bar; qty and cash follow the fills",
              check_accounting),
    Invariant("risk", "no fill grows the position beyond max_position_size_usd; a breached daily loss halts; "
              "after a halt nothing trades", check_risk),
    Invariant("orders", "every order ends once, never over-fills, and fills on a later bar inside that bar's "
              "range (no look-ahead)", check_orders),
    Invariant("report_agreement", "court and eqs reports say what the events say", check_report_agreement),
    Invariant("data_events", "the gaps and duplicates the engine reports are exactly those in the data",
              check_data_events),
    Invariant("determinism", "the same inputs give the same canonical evidence (in another process, with "
              "another PYTHONHASHSEED, under treasure hunt)", check_determinism),
    Invariant("lookahead", "decisions before a bar do not change when the data after it is cut off (re-runs "
              "the case on a few prefixes: the strategy does not read the future)", check_no_lookahead),
)
#: The names of :data:`CHECKS`, in order.
INVARIANTS: tuple[str, ...] = tuple(invariant.name for invariant in CHECKS)
