"""A strategy that does what its params say: the puppet of stateful and property tests.

``Scripted`` emits, at each bar, the intents its ``intents`` param lists under that bar's index
(``{"3": [["buy", 1.5, "why"]]}``: JSON keys are strings), so a test can drive the engine with
hypothesis-drawn orders instead of a signal. With ``flag_at`` and ``flag_path`` it also writes the
emergency flag when it reaches that bar, the way an operator's ``treasure halt`` lands in the
middle of a run: the engine must halt at the next bar. It looks at nothing but the bar index, so
runs over a prefix of a dataset make exactly the decisions of runs over the whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from treasure.jsonio import atomic_write_bytes
from treasure.strategy import Bar, Intent, Strategy

REF = "treasure.hunt.scripted:Scripted"


class Scripted(Strategy):
    """Emits scripted intents per bar index; optionally raises the emergency flag at a bar."""

    name = "scripted"
    params_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "intents": {"type": "object", "additionalProperties": {
                "type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 3}}},
            "flag_at": {"type": ["integer", "null"], "minimum": 0},
            "flag_path": {"type": ["string", "null"]},
        },
    }

    def __init__(self, intents: dict[str, list[list[Any]]] | None = None, flag_at: int | None = None,
                 flag_path: str | None = None) -> None:
        super().__init__(intents=intents or {}, flag_at=flag_at, flag_path=flag_path)
        self.script = {int(k): [Intent(str(i[0]), float(i[1]), str(i[2]) if len(i) > 2 else "")  # type: ignore
                                for i in v] for k, v in (intents or {}).items()}
        self.flag_at = flag_at
        self.flag_path = flag_path

    def on_bar(self, ctx: Any, bar: Bar) -> Sequence[Intent] | None:
        if self.flag_at is not None and self.flag_path and bar.idx == self.flag_at:
            doc = {"status": "EMERGENCY_HALT", "reason": f"scripted at bar {bar.idx}"}
            atomic_write_bytes(Path(self.flag_path), json.dumps(doc).encode(), durable=False)
        return self.script.get(bar.idx)
