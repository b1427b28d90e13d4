"""Treasure's operator gates: one test module per gate, each marked ``@pytest.mark.gate(name)``.

An importable subpackage of the plugin, so the gates ship in the wheel as real files and run
against any workspace with ``pytest --pyargs pytest_treasure.gates --treasure-workspace=DIR``
(what ``treasure verify`` does). A package, so gate modules never clash with same-named test
modules elsewhere.
"""

from pathlib import Path

#: Folder holding the gate modules (``test_<gate>.py``).
GATES_DIR = Path(__file__).resolve().parent
