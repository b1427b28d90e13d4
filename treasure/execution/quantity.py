"""Exact sizes: a quantity is a whole number of ``qty_step`` lots (a Python int) inside the engine.

As NautilusTrader's ``Quantity`` keeps a raw integer at a fixed precision, Treasure keeps positions,
order sizes, fills and working quantities as integer lots, so adding and subtracting them is exact:
a position bought in any number of fills and sold "in full" is flat exactly, for every size and
step. Floats exist only at the edges: what a strategy asks for and sees (``Intent.qty``,
``ctx.position``), what an adapter reports, and what events and reports record (``lots * step``).

Converting a float to lots forgives float noise relative to the size (a few ulps of ``qty / step``,
never less than a millionth of a step) and otherwise rounds down, so a size never grows by rounding.
"""

from __future__ import annotations

import math

from treasure.errors import RunError

#: Noise forgiven when a float becomes lots, relative to qty/step: ~8 ulps of a double.
REL_NOISE = 2.0 ** -49
#: ... and never less than this fraction of one step (the old absolute tolerance).
ABS_NOISE = 1e-6
#: Largest size in lots (10^30: 10^12 units at a step of 10^-10 is 10^22); beyond it a size is refused.
MAX_LOTS = 10 ** 30


class QuantityError(RunError):
    """A size that cannot be a number of lots (not finite, negative, or beyond :data:`MAX_LOTS`)."""


def _refuse(qty: float, step: float) -> QuantityError:
    return QuantityError("QTY_OUT_OF_RANGE", f"size {qty!r} at qty_step {step!r} is not a usable number of lots "
                         f"(0 to {MAX_LOTS:.0e} lots)", field="instrument.qty_step",
                         hint="size orders in units of the instrument (0 < qty, qty / instrument.qty_step "
                              "<= 1e30); at prices near zero cap the order's USD value")


def to_lots(qty: float, step: float, *, near: int | None = None) -> int:
    """``qty`` units as whole lots of ``step``: rounded to the nearest lot when within float noise of
    it, else rounded down. ``near`` (e.g. the position being closed, or an order's remaining lots)
    wins when ``qty`` is within noise of it: "sell everything" of a position whose float ``qty`` is
    not exactly representable (beyond 2**53 lots) still closes it exactly."""
    x = qty / step
    if not (0.0 <= x < MAX_LOTS):  # also NaN
        raise _refuse(qty, step)
    tolerance = max(ABS_NOISE, x * REL_NOISE)
    if near is not None and abs(x - near) <= tolerance:
        return near
    nearest = round(x)
    if abs(x - nearest) <= tolerance:
        return int(nearest)
    return int(math.floor(x))


def to_qty(lots: int, step: float) -> float:
    """Lots as float units, for the edges (events, reports, what a strategy sees)."""
    return lots * step


def quantize(qty: float, step: float) -> float:
    """Round ``qty`` down to whole lots of ``step`` (float noise forgiven), as float units."""
    return to_lots(qty, step) * step


def to_ticks(price: float, tick: float) -> int:
    """A price as the nearest whole number of ``tick`` (prices round to the nearest tick)."""
    x = price / tick
    if not (0.0 <= x < MAX_LOTS):
        raise RunError("PRICE_OUT_OF_RANGE", f"price {price!r} at price_tick {tick!r} is out of range",
                       field="instrument.price_tick",
                       hint="set instrument.price_tick to the venue's tick, or remove it to keep prices as given")
    return int(round(x))
