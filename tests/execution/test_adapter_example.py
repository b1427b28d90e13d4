"""The worked exchange-adapter example in docs/recon.md runs as written, through the engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from treasure.engine import RunRequest, run
from treasure.eventlog import read_events
from treasure.execution import base
from treasure.workspace import init_workspace

DOC = Path(__file__).resolve().parents[2] / "docs" / "recon.md"
HEADING = "#### Writing an exchange adapter"


def example_source() -> str:
    text = DOC.read_text()
    after = text[text.index(HEADING):]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match, f"no python block after {HEADING!r} in {DOC}"
    return match.group(1)


def test_the_documented_adapter_runs_and_fills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))  # keep the example out of other tests
    namespace: dict = {}
    exec(compile(example_source(), str(DOC), "exec"), namespace)
    ws = init_workspace(tmp_path / "ws")
    result = run(RunRequest(workspace=ws, adapter="example-exchange",
                            adapter_options={"client": namespace["PaperVenue"]()}))
    assert result.status == "complete"
    events = list(read_events(result.event_log))
    placed = [e for e in events if e["event_type"] == "order_placed"]
    filled = [e for e in events if e["event_type"] == "order_filled"]
    assert placed and len(filled) == len(placed)
    assert not [e for e in events if e["event_type"] == "adapter_error"]
    assert {e["payload"]["adapter"] for e in placed} == {"example-exchange"}
