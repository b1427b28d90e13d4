"""Where a run's event log lives, for the operations commands: a view of :mod:`treasure.logfiles`.

The layout (part names, strays, missing parts, archive lookup) is :mod:`treasure.logfiles`' and
the bounded reading :mod:`treasure.logread`'s; this module only re-exports them under the names
the operations commands use, and adds the lenient line parser they share. It imports nothing of
``treasure.ops.archive`` (which writes archives), so the two no longer import each other.
"""

from __future__ import annotations

from typing import Any

import orjson

from treasure.logfiles import (
    LIVE_ORDER,
    RunLog,
    Segment,
    live_name,
    local_segments,
    locate,
    require_segments,
    run_segments,
    segment_order,
)
from treasure.logread import open_segment, read_first_line, read_last_line

__all__ = ["LIVE_ORDER", "RunLog", "Segment", "line_object", "live_name", "local_segments", "locate",
           "open_segment", "read_first_line", "read_last_line", "require_segments", "run_segments",
           "segment_order"]


def line_object(raw: bytes) -> dict[str, Any]:
    """A log line parsed leniently: ``{}`` for an empty, torn or non-object line."""
    try:
        doc = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
