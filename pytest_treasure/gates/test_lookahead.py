"""Gate lookahead: the workspace's strategy does not read the future.

``on_start`` hands a strategy the whole series so it can vectorise its indicators; it also lets a
strategy peek ahead (a z-score against the whole series' mean, a "next close"). This gate runs the
workspace's strategy, with its SSOT and seed, on prefixes of its dataset cut at bars sampled
deterministically from the seed, in memory (no evidence written), and requires every intent before
each cut to equal the full run's: bar, side, quantity and reason. A failure names the first bar
whose decision changed and the cut that changed it (see :mod:`treasure.lookahead`).
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.gate("lookahead")


def test_decisions_do_not_depend_on_later_bars(treasure_workspace: Any, gate_note: Any) -> None:
    from treasure.lookahead import LookaheadError, check_lookahead

    try:
        result = check_lookahead(treasure_workspace)
    except LookaheadError as exc:
        pytest.fail(f"lookahead: {exc}", pytrace=False)
    if result.finding is not None:
        pytest.fail(f"lookahead: {result.finding.message()} (cuts tried: "
                    f"{', '.join(map(str, result.cuts))})", pytrace=False)
    gate_note(f"{result.intents} intents over {result.bars} bars unchanged at cuts "
              f"{', '.join(map(str, result.cuts))}")
