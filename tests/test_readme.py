"""The README's first two commands are the contract with a new user and with CI."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "the README must open with a bash block holding the two commands"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_test_command():
    setup_and_run, setup_and_test = readme_commands()[:2]
    assert "treasure run" in setup_and_run
    assert "pytest" in setup_and_test
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup_and_test in ci.splitlines(), ".ci/run must call the README's test command verbatim"
    assert "-eq 5" in ci, ".ci/run must handle pytest's exit code 5"


def test_top_level_layout_is_as_designed():
    for name in ("pyproject.toml", "treasure", "pytest_treasure", "pytest_treasure/gates", "treasure/defaults",
                 "spec", "truth", "fixtures",
                 "conftest.py", "tests", "bench", "README.md", ".ci/run"):
        assert (ROOT / name).exists(), name
