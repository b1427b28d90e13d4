"""Shared fixtures of the test suite: fresh workspaces and an in-process CLI runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from treasure.workspace import Workspace, init_workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace (packaged default spec, truth and dataset) in a temp folder."""
    return init_workspace(tmp_path / "ws")


@pytest.fixture
def edit_ssot(workspace: Workspace) -> Callable[[Callable[[dict[str, Any]], None]], None]:
    """Edit the workspace's SSOT in place: ``edit_ssot(lambda s: s["risk"].update(...))``."""

    def edit(change: Callable[[dict[str, Any]], None]) -> None:
        document = json.loads(workspace.ssot_path.read_text())
        change(document)
        workspace.ssot_path.write_text(json.dumps(document, indent=2))

    return edit


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``treasure`` in-process: ``code, out, err = cli("run", "--workspace", ws)``."""
    from treasure.cli.main import main

    def run(*args: Any) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
