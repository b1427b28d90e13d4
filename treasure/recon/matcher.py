"""Reconcile two ledgers order by order, in one vectorised pass.

The rules, per order present on both sides (``E`` = expected/dry-run, ``L`` = live):

* each live fill is matched to the *nearest in time* expected fill of the same order, if at most
  ``time_window_ms`` apart (ties go to the earlier one); each expected fill is *covered* if some
  live fill of the order lies within the window;
* ``MISSING_FILL``: the filled quantities differ, or a live fill matches no expected fill, or an
  expected fill is not covered (live filled, not recorded, or the reverse; a fill outside the time
  window counts as missing);
* ``ORDER_STATE_DRIFT``: the terminal states differ (state = highest precedence reached);
* ``PRICE_MISMATCH``: the VWAP of the matched live fills differs from the quantity-weighted price of
  the expected fills they matched by more than ``price_tolerance_bps`` (reported as adverse bps:
  positive means live executed worse than the dry-run expected);
* ``FEE_MISMATCH``: the live fees of the matched fills differ from the expected fee rate applied to
  the same live notional by more than ``max(fee_tolerance_abs_usd, fee_tolerance_rel * expected)``.

Comparing prices and fees on *matched* fills keeps the codes independent: a dropped fill is a
MISSING_FILL only, it does not also move the VWAP or the fee total. An order known to one side only
is one mismatch: MISSING_FILL if that side has fills, else ORDER_STATE_DRIFT.

Every input is sorted canonically first, so the result does not depend on the order in which
fills or messages were read, and the output is sorted by (order id, code).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from treasure.metrics import r10
from treasure.recon.model import (
    CODES,
    SIDE_NAME,
    STATES,
    Ledger,
    Mismatch,
    ReconResult,
    Tolerances,
)

#: Quantities equal within 1e-9 (absolute) plus 1e-9 of the larger fill total: evidence is rounded
#: to 10 decimals, so anything tighter would flag rounding noise.
QTY_TOL_ABS = 1e-9
QTY_TOL_REL = 1e-9
_BPS_EPS = 1e-7
_USD_EPS = 1e-9
_NO_MATCH = np.iinfo(np.int64).max


def _canonical_fills(ledger: Ledger, umap: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fills as (union index, ts, qty, price, fee), sorted by every column: order-independent.

    Ledgers usually arrive sorted by (order, time) with no ties; that is checked in O(n) and the
    full five-key sort is only paid when needed.
    """
    u = umap[ledger.fill_order] if len(ledger.fill_order) else np.zeros(0, np.int64)
    ts, qty, price, fee = ledger.fill_ts, ledger.fill_qty, ledger.fill_price, ledger.fill_fee
    same_u = u[1:] == u[:-1]
    if not ((u[1:] < u[:-1]) | (same_u & (ts[1:] <= ts[:-1]))).any():
        return u, ts, qty, price, fee
    order = np.lexsort((fee, qty, price, ts, u))
    return u[order], ts[order], qty[order], price[order], fee[order]


def _time_keys(e_u: np.ndarray, e_ts: np.ndarray, l_u: np.ndarray, l_ts: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """int64 keys ordering fills by (order, time) on both sides at once.

    ``order * span + (ts - t0)`` when that fits in 62 bits (always, for realistic sessions), else
    the time is replaced by its rank among all timestamps first.
    """
    all_ts = np.concatenate([e_ts, l_ts])
    if len(all_ts) == 0:
        return e_ts.astype(np.int64), l_ts.astype(np.int64)
    t0 = int(all_ts.min())
    span = int(all_ts.max()) - t0 + 1
    orders = int(max(e_u.max(initial=0), l_u.max(initial=0))) + 1
    if orders * span < 2**62:
        return e_u * span + (e_ts - t0), l_u * span + (l_ts - t0)
    uniq, inverse = np.unique(all_ts, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    width = len(uniq) + 1
    return e_u * width + inverse[: len(e_ts)], l_u * width + inverse[len(e_ts):]


def _nearest(src_u: np.ndarray, src_key: np.ndarray, src_ts: np.ndarray, dst_u: np.ndarray,
             dst_key: np.ndarray, dst_ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each source fill, the nearest-in-time destination fill of the same order.

    Destinations are sorted by (order, ts) and ``dst_key`` (see :func:`_time_keys`) keeps that
    order in one int64, so ``searchsorted`` finds the two neighbours of every source at once.
    Returns (destination index, |dt|), with |dt| = int64 max where the order has no destination.
    """
    m = len(dst_u)
    if m == 0 or len(src_u) == 0:
        return np.zeros(len(src_u), np.int64), np.full(len(src_u), _NO_MATCH, np.int64)
    pos = np.searchsorted(dst_key, src_key, side="left")
    left = np.clip(pos - 1, 0, m - 1)
    right = np.clip(pos, 0, m - 1)
    left_ok = (pos > 0) & (dst_u[left] == src_u)
    right_ok = (pos < m) & (dst_u[right] == src_u)
    dt_left = np.where(left_ok, np.abs(src_ts - dst_ts[left]), _NO_MATCH)
    dt_right = np.where(right_ok, np.abs(src_ts - dst_ts[right]), _NO_MATCH)
    take_right = dt_right < dt_left
    return np.where(take_right, right, left), np.where(take_right, dt_right, dt_left)


def reconcile(expected: Ledger, live: Ledger, tolerances: Tolerances) -> ReconResult:
    """Compare ``live`` against ``expected`` order by order; see the module docstring for the rules."""
    tol = tolerances
    ids = expected.ids
    if len(ids) == len(live.ids) and (len(ids) < 2 or bool((ids[1:] > ids[:-1]).all())) \
            and bool((ids == live.ids).all()):
        union = ids  # the common case: both sides list the same orders, sorted
        eu = lu = np.arange(len(ids), dtype=np.int64)
    else:
        union = np.union1d(expected.ids, live.ids)
        eu = np.searchsorted(union, expected.ids).astype(np.int64)
        lu = np.searchsorted(union, live.ids).astype(np.int64)
    n = len(union)

    in_e = np.zeros(n, bool)
    in_e[eu] = True
    in_l = np.zeros(n, bool)
    in_l[lu] = True
    state_e = np.zeros(n, np.int8)
    state_e[eu] = expected.state
    state_l = np.zeros(n, np.int8)
    state_l[lu] = live.state
    side = np.zeros(n, np.int8)
    side[lu] = live.side
    side[eu] = np.where(expected.side != 0, expected.side, side[eu])
    sign = np.where(side < 0, -1.0, 1.0)

    e_u, e_ts, e_q, e_p, e_f = _canonical_fills(expected, eu)
    l_u, l_ts, l_q, l_p, l_f = _canonical_fills(live, lu)
    e_key, l_key = _time_keys(e_u, e_ts, l_u, l_ts)

    window = int(tol.time_window_ms)
    near_e, dt_l = _nearest(l_u, l_key, l_ts, e_u, e_key, e_ts)
    matched = dt_l <= window
    _, dt_e = _nearest(e_u, e_key, e_ts, l_u, l_key, l_ts)
    covered = dt_e <= window

    q_e = np.bincount(e_u, e_q, minlength=n)
    n_e = np.bincount(e_u, minlength=n)
    q_l = np.bincount(l_u, l_q, minlength=n)
    n_l = np.bincount(l_u, minlength=n)
    unmatched_l = np.bincount(l_u, ~matched, minlength=n).astype(np.int64)
    uncovered_e = np.bincount(e_u, ~covered, minlength=n).astype(np.int64)

    w = np.where(matched, l_q, 0.0)
    if len(e_p):
        ref_p = np.where(matched, e_p[near_e], 0.0)
        notional_e = e_q[near_e] * e_p[near_e]
        rate = np.where(matched & (notional_e > 0), e_f[near_e] / np.where(notional_e > 0, notional_e, 1.0), 0.0)
    else:
        ref_p = np.zeros(len(l_u))
        rate = np.zeros(len(l_u))
    mq = np.bincount(l_u, w, minlength=n)
    has_px = mq > 0
    safe_mq = np.where(has_px, mq, 1.0)
    vwap_l = np.bincount(l_u, w * l_p, minlength=n) / safe_mq
    vwap_e = np.bincount(l_u, w * ref_p, minlength=n) / safe_mq
    fee_l = np.bincount(l_u, np.where(matched, l_f, 0.0), minlength=n)
    fee_e = np.bincount(l_u, rate * w * l_p, minlength=n)
    bps = np.where(has_px & (vwap_e > 0), sign * (vwap_l - vwap_e) / np.where(vwap_e > 0, vwap_e, 1.0) * 1e4, 0.0)
    fee_tol = np.maximum(tol.fee_tolerance_abs_usd, tol.fee_tolerance_rel * np.abs(fee_e))

    both = in_e & in_l
    one_sided = in_e ^ in_l
    one_side_fills = np.where(in_e, n_e, n_l) > 0
    qty_tol = QTY_TOL_ABS + QTY_TOL_REL * np.maximum(q_e, q_l)
    masks = {
        "MISSING_FILL": (both & ((np.abs(q_l - q_e) > qty_tol) | (unmatched_l > 0) | (uncovered_e > 0)))
        | (one_sided & one_side_fills),
        "ORDER_STATE_DRIFT": (both & (state_e != state_l)) | (one_sided & ~one_side_fills),
        "PRICE_MISMATCH": both & has_px & (np.abs(bps) > tol.price_tolerance_bps + _BPS_EPS),
        "FEE_MISMATCH": both & has_px & (np.abs(fee_l - fee_e) > fee_tol + _USD_EPS),
    }
    flagged = np.zeros(n, bool)
    for mask in masks.values():
        flagged |= mask

    mismatches: list[Mismatch] = []
    for i in np.flatnonzero(flagged).tolist():
        oid = str(union[i])
        for code in CODES:
            if not masks[code][i]:
                continue
            expected_doc: dict[str, Any]
            actual_doc: dict[str, Any]
            delta: dict[str, Any]
            if code == "MISSING_FILL":
                expected_doc = {"filled_qty": r10(q_e[i]), "fills": int(n_e[i])}
                actual_doc = {"filled_qty": r10(q_l[i]), "fills": int(n_l[i])}
                delta = {"qty": r10(q_l[i] - q_e[i]), "unmatched_live_fills": int(unmatched_l[i]),
                         "unmatched_expected_fills": int(uncovered_e[i])}
                if not in_l[i]:
                    detail = f"dry-run filled {q_e[i]:.10g} in {n_e[i]} fill(s); the live venue has no record of the order"
                elif not in_e[i]:
                    detail = f"live filled {q_l[i]:.10g} in {n_l[i]} fill(s); the dry-run never placed the order"
                else:
                    parts = [f"filled qty live {q_l[i]:.10g} vs dry-run {q_e[i]:.10g}"]
                    if unmatched_l[i]:
                        parts.append(f"{unmatched_l[i]} live fill(s) with no dry-run fill within {window} ms")
                    if uncovered_e[i]:
                        parts.append(f"{uncovered_e[i]} dry-run fill(s) with no live fill within {window} ms")
                    detail = "; ".join(parts)
            elif code == "ORDER_STATE_DRIFT":
                before, after = STATES[state_e[i]], STATES[state_l[i]]
                expected_doc, actual_doc = {"state": before}, {"state": after}
                delta = {"state": f"{before}->{after}"}
                detail = f"terminal state dry-run {before}, live {after}"
            elif code == "PRICE_MISMATCH":
                expected_doc = {"price": r10(vwap_e[i]), "side": SIDE_NAME[int(side[i])]}
                actual_doc = {"price": r10(vwap_l[i]), "side": SIDE_NAME[int(side[i])]}
                delta = {"bps": r10(bps[i]), "tolerance_bps": tol.price_tolerance_bps}
                detail = (f"live VWAP {vwap_l[i]:.10g} vs expected {vwap_e[i]:.10g}: {bps[i]:+.4f} bps "
                          f"{'adverse' if bps[i] > 0 else 'favourable'} (tolerance {tol.price_tolerance_bps:g} bps)")
            else:
                expected_doc, actual_doc = {"fee": r10(fee_e[i])}, {"fee": r10(fee_l[i])}
                delta = {"usd": r10(fee_l[i] - fee_e[i]), "tolerance_usd": r10(fee_tol[i])}
                detail = (f"live fees {fee_l[i]:.10g} USD vs expected {fee_e[i]:.10g} USD "
                          f"({fee_l[i] - fee_e[i]:+.10g}, tolerance {fee_tol[i]:.10g})")
            mismatches.append(Mismatch(code, oid, expected_doc, actual_doc, delta, detail))

    return ReconResult(
        orders_expected=expected.orders, orders_live=live.orders, orders_compared=n,
        fills_expected=expected.fills, fills_live=live.fills,
        mismatches=tuple(sorted(mismatches, key=Mismatch.sort_key)), tolerances=tol)
