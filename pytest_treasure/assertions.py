"""The ``canonical`` fixture's logic: compare evidence canonically and fail with a readable diff.

Equality is decided on RFC 8785 bytes after dropping the volatile fields a schema in truth/
declares (``x-treasure-volatile``), so wall-clock figures never make two runs differ. On mismatch
the test fails with a short summary (paths, old -> new) and the full explanation is written to the
workspace's ``evidence/diffs/<test id>.txt``, the file an operator opens next. Outside a workspace
the comparisons work the same (against the packaged contracts), the diff goes under pytest's
temporary folder, and only goldens (which live in a workspace's fixtures/) are unavailable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from treasure.compare import Comparison
    from treasure.contracts import Contracts
    from treasure.workspace import Workspace

    from pytest_treasure.session import GateSession

_GOLDEN_NAME = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")


class Canonical:
    """Canonical comparisons bound to one test (its id names the diff file) and one workspace."""

    def __init__(self, workspace: "Workspace | None", contracts: "Contracts", test_id: str,
                 state: "GateSession | None" = None, *, diffs_dir: Path | None = None) -> None:
        self.workspace = workspace
        self.contracts = contracts
        self.test_id = test_id
        self._state = state
        self._diffs_dir = diffs_dir

    @property
    def update_goldens(self) -> bool:
        return bool(self._state and self._state.update_goldens)

    @property
    def diffs_dir(self) -> Path:
        if self._diffs_dir is not None or self.workspace is None:
            return self._diffs_dir or Path("evidence") / "diffs"
        return self.workspace.evidence_dir / "diffs"

    def _shown(self, path: Path) -> str:
        return self.workspace.relative(path) if self.workspace is not None else str(path)

    # public API ------------------------------------------------------------------------------
    def assert_equal(self, expected: Any, actual: Any, *, schema: str | None = None,
                     drop: Iterable[str] = (), name: str | None = None) -> None:
        """Fail unless the two JSON documents (objects, or ``Path``s to JSON files) are equal in
        canonical form, ignoring ``schema``'s volatile fields and the ``drop`` dot paths
        (``"a.b"``, ``"items.*.t"``). ``name`` replaces the test id as the diff file's name."""
        from treasure.compare import compare_documents

        result = compare_documents(self._load(expected), self._load(actual),
                                   volatile=self._volatile(schema, drop))
        if not result:
            self._fail(result, "documents differ", name)

    def assert_events_equal(self, expected: "Path | Sequence[dict[str, Any]]",
                            actual: "Path | Sequence[dict[str, Any]]", *, drop: Iterable[str] = (),
                            name: str | None = None) -> None:
        """Fail unless two event logs (paths to JSONL files, or lists of events) hold the same
        events in canonical form, after removing the ``drop`` paths from every event (e.g.
        ``("run_id", "prev", "hash")`` when two runs differ only by id)."""
        from treasure.compare import compare_event_logs

        result = compare_event_logs(self._events(expected), self._events(actual), drop=drop)
        if not result:
            self._fail(result, "event logs differ", name)

    def assert_golden(self, name: str, document: Any, *, schema: str | None = None,
                      drop: Iterable[str] = ()) -> None:
        """Fail unless ``document`` equals the golden ``fixtures/golden/<name>.json`` canonically.
        With ``--treasure-update-goldens`` the golden is (re)written instead, when it differs,
        and listed in the session summary. Volatile and ``drop`` fields are never stored."""
        from treasure.canonical import drop_paths
        from treasure.compare import compare_documents
        from treasure.jsonio import atomic_write_bytes, dumps_pretty, read_json

        path = self.golden_path(name)
        shown = self._shown(path)
        volatile = self._volatile(schema, drop)
        actual = drop_paths(self._load(document), volatile) if volatile else self._load(document)
        expected = read_json(path) if path.is_file() else None
        if expected is not None:
            result = compare_documents(expected, actual, volatile=volatile)
            if result:
                return
        if self.update_goldens:
            atomic_write_bytes(path, dumps_pretty(actual), durable=False)
            if self._state is not None:
                self._state.goldens_updated.add(shown)
            return
        if expected is None:
            pytest.fail(f"no golden {shown}: record it with `pytest --treasure-update-goldens`", pytrace=False)
        self._fail(result, f"differs from the golden {shown} (expected = golden; re-record with "
                           "--treasure-update-goldens if the change is intended)", f"{self.test_id}-golden-{name}")

    def golden_path(self, name: str) -> Path:
        if not _GOLDEN_NAME.fullmatch(name) or ".." in name.split("/"):
            raise ValueError(f"golden name {name!r}: use letters, digits, '_', '.', '-' and '/' only")
        if self.workspace is None:
            pytest.fail(f"golden {name!r}: goldens live in a Treasure workspace's fixtures/golden/, and this "
                        "session has none (set --treasure-workspace or the treasure_workspace ini option)",
                        pytrace=False)
        return self.workspace.fixtures_dir / "golden" / f"{name}.json"

    # helpers ---------------------------------------------------------------------------------
    def _volatile(self, schema: str | None, drop: Iterable[str]) -> list[str]:
        paths = list(self.contracts.volatile_paths(schema)) if schema else []
        return paths + [p for p in drop if p not in paths]

    @staticmethod
    def _load(document: Any) -> Any:
        if isinstance(document, Path):
            from treasure.jsonio import read_json

            return read_json(document)
        return document

    @staticmethod
    def _events(source: Any) -> Any:
        return Path(source) if isinstance(source, (str, Path)) else source

    def _fail(self, result: "Comparison", what: str, name: str | None) -> None:
        from treasure.compare import write_diff

        path = write_diff(self.diffs_dir, name or self.test_id, result)
        pytest.fail(f"{what}:\n{result.summary}\nfull diff: {self._shown(path)}", pytrace=False)
