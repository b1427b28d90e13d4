"""Recon throughput: orders reconciled per second on 1M generated orders (not a test).

Stages measured, best of ``--repeat``:

* ``reconcile`` - the vectorised matcher on two in-memory ledgers (what ``treasure recon`` spends
  once the inputs are read);
* ``per-order loop`` - the same rules written as a plain Python loop over orders (dicts of fills),
  on a slice, to show what vectorising buys;
* ``parse + ledger`` - reading the live session from JSONL bytes (orjson + schema check per line)
  and building its ledger;
* ``end to end`` - parse + ledger + reconcile.

    python bench/recon_bench.py                 # 1,000,000 orders
    python bench/recon_bench.py --orders 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from treasure.recon import Ledger, Tolerances, dump_session, ledger_from_messages, parse_live, reconcile
from treasure.recon.model import STATE_CODE

T0 = 1_767_225_600_000
BAR = 300_000
TOL = Tolerances()


def generate(n: int, seed: int = 7) -> tuple[Ledger, Ledger, int]:
    """Expected and live ledgers for ``n`` orders: 1 fill each, 10% with 2; live with latency and
    noise inside the tolerances; 0.1% of orders perturbed (price, fee, dropped fill, state)."""
    rng = np.random.default_rng(seed)
    ids = np.char.mod("o%07d", np.arange(1, n + 1))
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    qty = np.round(rng.uniform(0.1, 100.0, n), 6)
    placed = T0 + np.arange(n, dtype=np.int64) * BAR
    two = rng.random(n) < 0.10
    fill_order = np.concatenate([np.arange(n), np.flatnonzero(two)])
    k = np.concatenate([np.zeros(n, np.int64), np.ones(int(two.sum()), np.int64)])
    order = np.lexsort((k, fill_order))
    fill_order, k = fill_order[order], k[order]
    share = np.where(two[fill_order], 0.5, 1.0)
    fill_qty = qty[fill_order] * share
    price = np.round(100.0 + 20.0 * np.sin(fill_order / 5000.0) + k * 0.05, 4)
    fill_ts = placed[fill_order] + BAR * (1 + k)
    fee = fill_qty * price * 0.0005
    state = np.full(n, STATE_CODE["filled"], np.int8)
    expected = Ledger.from_columns(ids=ids, side=side, qty=qty, state=state, placed_ts=placed,
                                   fill_order=fill_order, fill_ts=fill_ts, fill_qty=fill_qty, fill_price=price,
                                   fill_fee=fee)
    live_price = price * (1 + side[fill_order] * rng.uniform(-1, 1, len(price)) / 1e4)
    live_fee = fill_qty * live_price * 0.0005 + rng.uniform(-0.002, 0.002, len(price))
    live_ts = fill_ts + rng.integers(20, 400, len(price))
    live_state = state.copy()
    keep = np.ones(len(price), bool)
    victims = rng.choice(n, size=max(4, n // 1000), replace=False)
    for j, victim in enumerate(victims.tolist()):
        rows = np.flatnonzero(fill_order == victim) if n <= 10_000 else np.searchsorted(fill_order, [victim])
        kind = j % 4
        if kind == 0:
            live_price[rows] *= 1.002
            live_fee[rows] *= 1.002
        elif kind == 1:
            live_fee[rows[0]] += 0.5
        elif kind == 2:
            live_state[victim] = STATE_CODE["cancelled"]
        else:
            keep[rows[0]] = False
    live = Ledger.from_columns(ids=ids, side=side, qty=qty, state=live_state, placed_ts=placed,
                               fill_order=fill_order[keep], fill_ts=live_ts[keep], fill_qty=fill_qty[keep],
                               fill_price=live_price[keep], fill_fee=live_fee[keep])
    return expected, live, len(victims)


def per_order_loop(expected: Ledger, live: Ledger, tol: Tolerances) -> int:
    """The matcher's rules as a plain loop (the baseline); returns the number of mismatches."""
    def group(ledger: Ledger) -> dict[str, list[tuple[int, float, float, float]]]:
        out: dict[str, list] = {oid: [] for oid in ledger.ids.tolist()}
        ids = ledger.ids.tolist()
        for o, ts, q, p, f in zip(ledger.fill_order.tolist(), ledger.fill_ts.tolist(), ledger.fill_qty.tolist(),
                                  ledger.fill_price.tolist(), ledger.fill_fee.tolist()):
            out[ids[o]].append((ts, q, p, f))
        return out

    e_fills, l_fills = group(expected), group(live)
    e_state = dict(zip(expected.ids.tolist(), expected.state.tolist()))
    l_state = dict(zip(live.ids.tolist(), live.state.tolist()))
    sides = dict(zip(expected.ids.tolist(), expected.side.tolist()))
    window = tol.time_window_ms
    found = 0
    for oid in sorted(set(e_fills) | set(l_fills)):
        ef, lf = e_fills.get(oid, []), l_fills.get(oid, [])
        qe, ql = sum(f[1] for f in ef), sum(f[1] for f in lf)
        mq = spl = spe = fl = fe = 0.0
        unmatched = 0
        for ts, q, p, f in lf:
            best = min(ef, key=lambda e: abs(e[0] - ts), default=None)
            if best is None or abs(best[0] - ts) > window:
                unmatched += 1
                continue
            mq += q
            spl += q * p
            spe += q * best[2]
            fl += f
            fe += best[3] / (best[1] * best[2]) * q * p
        uncovered = sum(1 for e in ef if not any(abs(e[0] - l[0]) <= window for l in lf))
        found += abs(ql - qe) > 1e-9 * (1 + max(qe, ql)) or unmatched > 0 or uncovered > 0
        found += e_state.get(oid) != l_state.get(oid)
        if mq > 0:
            bps = (1 if sides.get(oid, 1) >= 0 else -1) * (spl / mq - spe / mq) / (spe / mq) * 1e4
            found += abs(bps) > tol.price_tolerance_bps
            found += abs(fl - fe) > max(tol.fee_tolerance_abs_usd, tol.fee_tolerance_rel * abs(fe))
    return found


def session_bytes(live: Ledger) -> bytes:
    """The live ledger as a recorded session (JSONL), built with numpy string ops for speed."""
    ids = live.ids.tolist()
    lines = [f'{{"type":"ack","order_id":"{oid}","venue_ts_ms":{T0 + i * BAR + BAR + 10}}}'
             for i, oid in enumerate(ids)]
    states = live.state.tolist()
    for n, (o, ts, q, p, f) in enumerate(zip(live.fill_order.tolist(), live.fill_ts.tolist(), live.fill_qty.tolist(),
                                             live.fill_price.tolist(), live.fill_fee.tolist())):
        status = "filled" if states[o] == STATE_CODE["filled"] else "partially_filled"
        lines.append(f'{{"type":"fill","order_id":"{ids[o]}","venue_ts_ms":{ts},"fill_id":"F{n}","qty":{q!r},'
                     f'"price":{p!r},"fee":{f!r},"status":"{status}"}}')
    for o in np.flatnonzero(live.state == STATE_CODE["cancelled"]).tolist():
        lines.append(f'{{"type":"cancel","order_id":"{ids[o]}","venue_ts_ms":{T0 + o * BAR + 3 * BAR}}}')
    order = np.argsort([int(line.split('"venue_ts_ms":')[1].split(",")[0].rstrip("}")) for line in lines], kind="stable")
    return dump_session([], header={"venue": "bench", "symbol": "X"}) + "".join(lines[i] + "\n" for i in order).encode()


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--loop-orders", type=int, default=100_000, help="orders for the per-order loop baseline")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.orders
    expected, live, injected = generate(n)
    rows = []

    seconds, result = best_of(args.repeat, lambda: reconcile(expected, live, TOL))
    assert result.mismatched_orders == injected, (result.mismatched_orders, injected)
    rows.append(("reconcile (vectorised)", n, seconds, f"{result.mismatched_orders} mismatched orders found"))

    small_e, small_l, _ = generate(args.loop_orders)
    seconds_loop, found = best_of(1, lambda: per_order_loop(small_e, small_l, TOL))
    seconds_vec, small = best_of(args.repeat, lambda: reconcile(small_e, small_l, TOL))
    assert found == len(small.mismatches), (found, len(small.mismatches))
    rows.append(("per-order Python loop", args.loop_orders, seconds_loop, "same rules, baseline"))
    rows.append(("reconcile (vectorised)", args.loop_orders, seconds_vec, f"{seconds_loop / seconds_vec:.0f}x the loop"))

    data = session_bytes(live)
    seconds_parse, ledger = best_of(1, lambda: ledger_from_messages(
        parse_live(data, path="bench", time_window_ms=TOL.time_window_ms, strict=True).messages))
    lines = data.count(b"\n")
    rows.append(("parse + ledger (JSONL)", n, seconds_parse, f"{len(data) / 1e6:.0f} MB, {lines:,} lines"))
    seconds_e2e, final = best_of(1, lambda: reconcile(expected, ledger_from_messages(
        parse_live(data, path="bench", time_window_ms=TOL.time_window_ms, strict=True).messages), TOL))
    assert final.mismatched_orders == injected
    rows.append(("end to end (parse + reconcile)", n, seconds_e2e, ""))

    print(f"{'stage':<32}{'orders':>12}{'seconds':>10}{'orders/s':>14}  note")
    for stage, count, secs, note in rows:
        print(f"{stage:<32}{count:>12,}{secs:>10.3f}{count / secs:>14,.0f}  {note}")


if __name__ == "__main__":
    main()
