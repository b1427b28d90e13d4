"""Shrunk failures as fixtures: ``fixtures/regressions/<id>/`` with a pytest test that replays it.

A reproducer is three files: ``dataset.csv`` (the shrunk bars, byte for byte), ``ssot.json`` (the
SSOT pinned to it, its ``strategy.name`` as the operator wrote it, relative to the workspace) and
``test_reproduce.py``, which runs the case again through :func:`reproduce` and fails while the
bug is there. The id is ``<invariant>-<first 12 hex of the case digest>``: the same failure
always lands in the same folder, a different one never overwrites it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson

from treasure.hunt.case import Case, GeneratedDataset
from treasure.jsonio import atomic_write_bytes

_TEMPLATE = '''\
"""Reproducer written by `treasure hunt`: the {invariant} invariant broke.

{violation}

Case: {case}
Found by: treasure hunt --strategy {strategy} --seed {seed} (after {examples} example(s); shrunk in
{shrinks} step(s)). Determinism was checked {determinism_text}.

This test fails while the bug is there and passes once it is fixed: keep it as a regression test.
Run it with: pytest {test_path}
"""

from pathlib import Path

from treasure.hunt.reproducer import reproduce

HERE = Path(__file__).resolve().parent
INVARIANT = {invariant!r}
DETERMINISM = {determinism!r}
SKIP = {skip!r}  # invariants the hunt did not check


def test_reproduce(tmp_path: Path) -> None:
    reproduce(HERE, tmp_path, determinism=DETERMINISM, skip=SKIP)
'''

_DETERMINISM_TEXT = {
    "process": "in two processes (PYTHONHASHSEED 1 and 2)",
    "inprocess": "by running twice in one process",
    "off": "not at all",
}


def reproducer_id(case: Case, invariant: str) -> str:
    return f"{invariant}-{case.digest[:12]}"


def write_reproducer(directory: Path, case: Case, violation: Any, *, strategy: str, seed: int, examples: int,
                     shrinks: int, determinism: str, skip: tuple[str, ...] = (),
                     display_dir: str | None = None) -> Path:
    """Write the case under ``directory/<id>/`` and return that folder."""
    folder = Path(directory) / reproducer_id(case, violation.invariant)
    ssot = dict(case.ssot)
    ssot["strategy"] = {**dict(ssot["strategy"]), "name": strategy}
    shown = display_dir or str(folder)
    text = "\n".join(textwrap.wrap(str(violation).splitlines()[0], 96, initial_indent="    ",
                                   subsequent_indent="    "))
    details = "\n".join(f"      {line}" for line in str(violation).splitlines()[1:12])
    atomic_write_bytes(folder / "dataset.csv", case.dataset.csv, durable=False)
    pretty = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    atomic_write_bytes(folder / "ssot.json", orjson.dumps(ssot, option=pretty), durable=False)
    test = _TEMPLATE.format(invariant=violation.invariant, violation=text + ("\n" + details if details else ""),
                            case=case.describe(), strategy=strategy, seed=seed, examples=examples, shrinks=shrinks,
                            determinism=determinism, skip=tuple(skip),
                            determinism_text=_DETERMINISM_TEXT.get(determinism, determinism),
                            test_path=f"{shown}/test_reproduce.py")
    atomic_write_bytes(folder / "test_reproduce.py", test.encode("utf-8"), durable=False)
    return folder


def load_case(folder: Path) -> Case:
    """Rebuild the :class:`Case` of a reproducer folder from its dataset.csv and ssot.json."""
    from treasure.data import load_dataset

    ssot = orjson.loads((Path(folder) / "ssot.json").read_bytes())
    path = Path(folder) / "dataset.csv"
    loaded = load_dataset(path, interval_ms=int(ssot["dataset"]["interval_ms"]))
    dataset = GeneratedDataset(bars=loaded.bars, csv=path.read_bytes(), interval_ms=int(ssot["dataset"]["interval_ms"]),
                               gaps=tuple(g.bar_idx for g in loaded.gaps),
                               duplicates=tuple(d.bar_idx for d in loaded.duplicates))
    return Case(dataset, ssot)


def reproduce(folder: Path, scratch: Path, *, determinism: str = "process", skip: tuple[str, ...] = (),
              workspace_root: Path | None = None) -> None:
    """Run a reproducer's case and check every invariant; raise the violation if it persists.

    ``workspace_root`` (default: three levels up, the workspace holding
    ``fixtures/regressions/<id>/``) is where a ``file.py:Class`` strategy path is resolved.
    """
    from treasure.invariants import check_outcome
    from treasure.hunt.execute import make_executor

    folder = Path(folder).resolve()
    root = workspace_root if workspace_root is not None else folder.parents[2]
    case = load_case(folder)
    executor = make_executor(determinism, Path(scratch), base_dir=root)
    try:
        first, second = executor.run(case, twice=determinism != "off")
    finally:
        executor.close()
    check_outcome(case, first, second, skip=skip)
