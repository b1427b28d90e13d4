"""Generate ``fixtures/live/``: recorded live sessions for the default workspace.

No venue is reachable here, so the "recordings" are derived, deterministically, from a dry-run of
the default SSOT: the clean session is what the venue would report for exactly those orders, with
venue latency and price/fee noise inside the SSOT's tolerances; each faulty session perturbs a few
orders of the clean one so that it triggers exactly one mismatch code (or crosses the halt
threshold). ``manifest.json`` lists every session with the mismatches it must produce; the
``dryrun-live`` gate holds recon to it.

Because the sessions are keyed by the engine's order ids, they go stale when the default run's
orders or fills change. ``tests/recon/test_recon_fixtures.py`` regenerates them in memory and fails on
any byte difference; then run::

    python -m treasure.recon.fixturegen            # rewrite fixtures/live/
    python -m treasure.recon.fixturegen --check    # exit 1 if they are stale

The generator reconciles every session it writes and refuses to write one that does not produce
exactly its declared mismatches.

``treasure recon record RUN_ID`` uses the same generator on a workspace's *own* run
(:func:`generate` with ``adaptive=True``): perturbation sizes follow that SSOT's tolerances, the
threshold sessions hold ``recon.max_mismatches`` and one more mismatched orders, an order with one
fill stands in where no order has two, and a session the run has too few orders for is left out.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from treasure.context import make_rng
from treasure.jsonio import atomic_write_bytes, dumps_pretty
from treasure.recon.venue_sessions import dump_session, ledger_from_messages, messages_from_ledger, parse_live
from treasure.recon.matcher import reconcile
from treasure.recon.model import STATE_CODE, Ledger, Tolerances
from treasure.recon.runlog import RunRecord, read_run

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "treasure-live-manifest/1"
SEED = 20_260_501
VENUE = "recorded-replay"
PRICE_NOISE_BPS = 1.0       # the clean session's price noise: well inside a 5 bps tolerance
FEE_NOISE_USD = 0.003       # and its fee noise, inside 0.01 USD
_COPY = ("spec", "truth")

Messages = list[dict[str, Any]]
Perturbation = Callable[[Messages, str], None]


# the default run ----------------------------------------------------------------------------------
def default_run(source: Path | None = None) -> tuple[RunRecord, Tolerances]:
    """Dry-run the default SSOT of ``source`` (a workspace; default: the packaged one) in a temp copy;
    return the run and the SSOT's recon tolerances."""
    from treasure.config import load_config
    from treasure.engine import RunRequest, run
    from treasure.workspace import Workspace, bundle_dir

    source = Path(source) if source is not None else bundle_dir()
    with tempfile.TemporaryDirectory(prefix="treasure-fixturegen-") as tmp:
        root = Path(tmp) / "ws"
        for part in _COPY:
            shutil.copytree(source / part, root / part)
        shutil.copytree(source / "fixtures" / "data", root / "fixtures" / "data")
        ws = Workspace.at(root)
        result = run(RunRequest(workspace=ws, adapter="dryrun", overwrite=True))
        if result.status != "complete":
            raise RuntimeError(f"the default dry-run ended {result.status}: {result.error}")
        config = load_config(ws.ssot_path, ws.config_schema_path)
        return read_run(ws, result.run_id), Tolerances.from_config(config.section("recon"))


# the clean session --------------------------------------------------------------------------------
def clean_messages(ledger: Ledger, rng: np.random.Generator, *, price_noise_bps: float = PRICE_NOISE_BPS,
                   fee_noise_usd: float = FEE_NOISE_USD) -> Messages:
    """The venue's view of ``ledger``: latency, and price/fee noise inside the tolerances."""
    messages = messages_from_ledger(
        ledger,
        ack_latency_ms=lambda i: 15 + (i * 7) % 30,
        fill_latency_ms=lambda i, k: 80 + (i * 13 + k * 29) % 250,
    )
    side = {oid: int(s) for oid, s in zip(ledger.ids.tolist(), ledger.side.tolist())}
    for message in messages:
        if message["type"] != "fill":
            continue
        bps = float(rng.uniform(-price_noise_bps, price_noise_bps))
        price = round(message["price"] * (1.0 + bps / 1e4 * (side[message["order_id"]] or 1)), 8)
        rate = message["fee"] / (message["qty"] * message["price"])
        message["fee"] = round(rate * message["qty"] * price + float(rng.uniform(-fee_noise_usd, fee_noise_usd)), 8)
        message["price"] = price
    return messages


# perturbations: each acts on one order and must trigger exactly one code -----------------------
def _fills(messages: Messages, oid: str) -> Messages:
    return [m for m in messages if m["order_id"] == oid and m["type"] == "fill"]


def shift_price(bps: float) -> Perturbation:
    """Every fill of the order executes ``bps`` worse (negative: better); fees follow the notional."""
    def apply(messages: Messages, oid: str) -> None:
        ack = next(m for m in messages if m["order_id"] == oid and m["type"] == "ack")
        sign = 1.0 if ack.get("side", "buy") == "buy" else -1.0
        for fill in _fills(messages, oid):
            factor = 1.0 + sign * bps / 1e4
            fill["price"] = round(fill["price"] * factor, 8)
            fill["fee"] = round(fill["fee"] * factor, 8)
    apply.__name__ = f"shift_price({bps:+g} bps)"
    return apply


def change_fee(*, factor: float = 1.0, add: float = 0.0) -> Perturbation:
    """The venue charged a different fee on the order's first fill."""
    def apply(messages: Messages, oid: str) -> None:
        fill = _fills(messages, oid)[0]
        fill["fee"] = round(fill["fee"] * factor + add, 8)
    apply.__name__ = f"change_fee(x{factor:g} {add:+g} USD)"
    return apply


def bump_fee(tolerances: Tolerances, multiple: float) -> Perturbation:
    """The venue charged ``multiple`` times the fee tolerance (plus the clean noise) too much on the
    order's first fill: a fee mismatch whatever the order's size or the SSOT's fee tolerances."""
    def apply(messages: Messages, oid: str) -> None:
        fills = _fills(messages, oid)
        total = sum(abs(f["fee"]) for f in fills)
        allowed = max(tolerances.fee_tolerance_abs_usd, tolerances.fee_tolerance_rel * total)
        fills[0]["fee"] = round(fills[0]["fee"] + multiple * (allowed + 0.01) + len(fills) * FEE_NOISE_USD, 8)
    apply.__name__ = f"change_fee(+{multiple:g}x tolerance)"
    return apply


def drop_fill(messages: Messages, oid: str) -> None:
    """The recording lacks a (non-final) fill the dry-run recorded."""
    messages.remove(_fills(messages, oid)[0])


def extra_fill(messages: Messages, oid: str) -> None:
    """The venue reports a fill the dry-run never recorded (a duplicate execution, new fill id)."""
    fill = _fills(messages, oid)[0]
    extra = dict(fill, fill_id="X" + fill["fill_id"], venue_ts_ms=fill["venue_ts_ms"] + 7,
                 qty=round(fill["qty"] * 0.25, 10), fee=round(fill["fee"] * 0.25, 8), status="partially_filled")
    messages.insert(messages.index(fill) + 1, extra)


def drop_order(messages: Messages, oid: str) -> None:
    """The venue has no record of the order at all."""
    messages[:] = [m for m in messages if m["order_id"] != oid]


def state_working(messages: Messages, oid: str) -> None:
    """The venue still shows the order working (its last fill says partially_filled)."""
    _fills(messages, oid)[-1]["status"] = "partially_filled"


def state_cancelled(messages: Messages, oid: str) -> None:
    """The venue cancelled what it thought was left of the order."""
    last = _fills(messages, oid)[-1]
    last["status"] = "partially_filled"
    messages.insert(messages.index(last) + 1, {
        "type": "cancel", "order_id": oid, "venue_ts_ms": last["venue_ts_ms"] + 1500,
        "venue_order_id": last["venue_order_id"], "reason": "expired"})


#: code each perturbation triggers, and whether it needs an order with two or more fills
_EFFECT: dict[str, tuple[str, bool]] = {
    "shift_price": ("PRICE_MISMATCH", False), "change_fee": ("FEE_MISMATCH", False),
    "drop_fill": ("MISSING_FILL", True), "extra_fill": ("MISSING_FILL", False),
    "drop_order": ("MISSING_FILL", False), "state_working": ("ORDER_STATE_DRIFT", False),
    "state_cancelled": ("ORDER_STATE_DRIFT", False),
}


def _kind(p: Perturbation) -> str:
    return p.__name__.split("(")[0]


_PRICE: list[Perturbation] = [shift_price(9.0), shift_price(25.0), shift_price(-12.0)]
_FEE: list[Perturbation] = [change_fee(factor=1.5), change_fee(add=0.05), change_fee(factor=0.5)]
_MISSING: list[Perturbation] = [drop_fill, extra_fill, drop_order]
_STATE: list[Perturbation] = [state_working, state_cancelled]

#: name -> (description, perturbations)
SESSIONS: dict[str, tuple[str, list[Perturbation]]] = {
    "clean": ("every order as the dry-run expects, with venue latency and noise inside the tolerances", []),
    "price_mismatch": ("three orders executed beyond the price tolerance (two adverse, one favourable)", _PRICE),
    "fee_mismatch": ("three orders charged fees beyond the fee tolerance", _FEE),
    "missing_fill": ("a dry-run fill missing live, a live fill the dry-run never recorded, an order the "
                     "venue never saw", _MISSING),
    "order_state_drift": ("two orders whose venue state differs from the dry-run's (still working; "
                          "cancelled)", _STATE),
    "threshold_at": ("ten mismatched orders: at recon.max_mismatches, no halt",
                     _PRICE + _FEE + _MISSING[:2] + _STATE),
    "threshold_over": ("eleven mismatched orders: above recon.max_mismatches, halt",
                       _PRICE + _FEE + _MISSING[:2] + _STATE + [shift_price(40.0)]),
}


def adaptive_sessions(ledger: Ledger, tolerances: Tolerances) -> dict[str, tuple[str, list[Perturbation]]]:
    """The sessions for a workspace's own run: sized by its tolerances and what its orders allow.

    Price shifts scale with ``price_tolerance_bps`` (the default's 9/25/-12/40 bps at 5 bps), fee
    changes are a multiple of the fee tolerance, ``drop_fill`` becomes ``drop_order`` when no order
    has two fills, and the threshold sessions hold ``max_mismatches`` and ``max_mismatches + 1``
    orders; a session needing more filled orders than the run has is left out.
    """
    scale = max(tolerances.price_tolerance_bps, 0.5) / 5.0
    counts = np.bincount(ledger.fill_order, minlength=ledger.orders)
    filled = ledger.state == STATE_CODE["filled"]
    singles = int(np.count_nonzero(filled & (counts >= 1)))
    multi = bool(np.count_nonzero(filled & (counts >= 2)))
    price = [shift_price(9.0 * scale), shift_price(25.0 * scale), shift_price(-12.0 * scale)]
    fee = [bump_fee(tolerances, 2.0), bump_fee(tolerances, 4.0), bump_fee(tolerances, 8.0)]
    missing: list[Perturbation] = [drop_fill if multi else drop_order, extra_fill, drop_order]
    state = [state_working, state_cancelled]
    cycle = price + fee + missing[:2] + state
    limit = tolerances.max_mismatches

    def threshold(size: int) -> list[Perturbation]:
        extra = [shift_price((40.0 + 10.0 * k) * scale) for k in range(max(0, size - len(cycle)))]
        return (cycle + extra)[:size]

    plan: dict[str, tuple[str, list[Perturbation]]] = {
        "clean": SESSIONS["clean"],
        "price_mismatch": (SESSIONS["price_mismatch"][0], price),
        "fee_mismatch": (SESSIONS["fee_mismatch"][0], fee),
        "missing_fill": (SESSIONS["missing_fill"][0] if multi else
                         "a live fill the dry-run never recorded, two orders the venue never saw", missing),
        "order_state_drift": SESSIONS["order_state_drift"],
        "threshold_at": (f"{limit} mismatched orders: at recon.max_mismatches, no halt", threshold(limit)),
        "threshold_over": (f"{limit + 1} mismatched orders: above recon.max_mismatches, halt", threshold(limit + 1)),
    }
    return {name: entry for name, entry in plan.items() if len(entry[1]) <= singles and
            (name != "threshold_at" or limit > 0)}


def _targets(ledger: Ledger, perturbations: list[Perturbation], rng: np.random.Generator) -> list[str]:
    """Distinct filled orders for the perturbations, drawn from the seeded generator."""
    counts = np.bincount(ledger.fill_order, minlength=ledger.orders)
    filled = ledger.state == STATE_CODE["filled"]
    ids = ledger.ids.tolist()
    multi = sorted(ids[i] for i in np.flatnonzero(filled & (counts >= 2)))
    single = sorted(ids[i] for i in np.flatnonzero(filled & (counts >= 1)))
    chosen: list[str] = []
    for p in perturbations:
        pool = [oid for oid in (multi if _EFFECT[_kind(p)][1] else single) if oid not in chosen]
        if not pool:
            raise RuntimeError(f"the default run has no order left for {p.__name__}")
        chosen.append(pool[int(rng.integers(len(pool)))])
    return chosen


def generate(source: Path | None = None, *, run: tuple[RunRecord, Tolerances] | None = None,
             adaptive: bool = False) -> dict[str, bytes]:
    """Every file of ``fixtures/live/`` (name -> bytes), self-checked against the matcher.

    ``adaptive``: the sessions of a workspace's own run (:func:`adaptive_sessions`, noise scaled to
    its tolerances, the run id in each session header); else the packaged default sessions."""
    record, tolerances = run or default_run(source)
    ledger = record.ledger
    rng = make_rng(SEED, stream=0)  # the engine's seeded generator: no global randomness
    if adaptive:
        fills_per_order = int(np.bincount(ledger.fill_order).max()) if ledger.fills else 1
        base = clean_messages(ledger, rng,
                              price_noise_bps=PRICE_NOISE_BPS * max(tolerances.price_tolerance_bps, 0.5) / 5.0,
                              fee_noise_usd=min(FEE_NOISE_USD, 0.3 * tolerances.fee_tolerance_abs_usd / fills_per_order))
        plan = adaptive_sessions(ledger, tolerances)
    else:
        base = clean_messages(ledger, rng)
        plan = SESSIONS
    files: dict[str, bytes] = {}
    entries = []
    for name, (description, perturbations) in plan.items():
        messages = copy.deepcopy(base)
        expected = []
        for perturbation, oid in zip(perturbations, _targets(ledger, perturbations, rng)):
            perturbation(messages, oid)
            expected.append({"code": _EFFECT[_kind(perturbation)][0], "order_id": oid,
                             "perturbation": perturbation.__name__})
        messages.sort(key=lambda m: m["venue_ts_ms"])
        header = {"venue": VENUE, "symbol": record.symbol, "session": name,
                  "dataset_sha256": record.dataset_sha256, "generator": "treasure.recon.fixturegen"}
        if adaptive:
            header.update(run_id=record.run_id, generator="treasure recon record")
        data = dump_session(messages, header=header)
        expected.sort(key=lambda e: (e["order_id"], e["code"]))
        halt = len({e["order_id"] for e in expected}) > tolerances.max_mismatches
        _self_check(name, data, ledger, tolerances, expected, halt)
        files[f"{name}.jsonl"] = data
        entries.append({"file": f"{name}.jsonl", "description": description, "halt": halt,
                        "mismatches": expected})
    files[MANIFEST] = dumps_pretty({
        "format": MANIFEST_FORMAT,
        "generated_by": f"treasure recon record {record.run_id}" if adaptive else "python -m treasure.recon.fixturegen",
        "run": {"ssot": "spec/ssot.json", "run_id": record.run_id, "symbol": record.symbol,
                "dataset_sha256": record.dataset_sha256, "orders": ledger.orders, "fills": ledger.fills},
        "tolerances": tolerances.as_dict(),
        "sessions": entries,
    })
    return files


def _self_check(name: str, data: bytes, ledger: Ledger, tolerances: Tolerances, expected: list[dict[str, Any]],
                halt: bool) -> None:
    session = parse_live(data, path=name, time_window_ms=tolerances.time_window_ms, strict=True)
    result = reconcile(ledger, ledger_from_messages(session.messages), tolerances)
    want = sorted((e["code"], e["order_id"]) for e in expected)
    if result.pairs() != want or result.halted != halt:
        raise RuntimeError(f"session {name}: recon gives {result.pairs()} (halt {result.halted}), "
                           f"declared {want} (halt {halt})")


def stale_files(directory: Path, files: dict[str, bytes]) -> list[str]:
    """Names whose bytes in ``directory`` differ from ``files`` (missing counts as different)."""
    out = []
    for name, data in sorted(files.items()):
        path = Path(directory) / name
        if not path.is_file() or path.read_bytes() != data:
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m treasure.recon.fixturegen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=None, help="workspace whose default SSOT to dry-run "
                        "(default: the packaged defaults)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: SOURCE/fixtures/live)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any file is stale")
    args = parser.parse_args(argv)
    from treasure.workspace import bundle_dir

    out = (args.out or (args.source or bundle_dir()) / "fixtures" / "live").resolve()
    files = generate(args.source)
    stale = stale_files(out, files)
    if args.check:
        for name in stale:
            print(f"stale: {out / name}")
        print("fixtures/live is up to date" if not stale else "regenerate with: python -m treasure.recon.fixturegen")
        return 1 if stale else 0
    for name in stale:
        atomic_write_bytes(out / name, files[name])
        (out / name).chmod(0o644)
        print(f"wrote {out / name}")
    if not stale:
        print(f"{out}: up to date")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
