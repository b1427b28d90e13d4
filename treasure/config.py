"""The SSOT (spec/ssot.json): loaded, validated against spec/config.schema.json, then frozen.

Validation happens once, at the boundary, with the schema the workspace ships (so an operator can
tighten it). The result is a read-only :class:`Config` whose ``raw`` mapping is what run_start
records, so a run can be replayed from its own event log.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from jsonschema import Draft202012Validator

from treasure.canonical import canonical_bytes
from treasure.contracts import check_schema, error_field, first_error
from treasure.errors import ConfigError
from treasure.jsonio import read_json


@dataclass(frozen=True)
class Config:
    """A validated SSOT. ``raw`` is the document as written; accessors apply schema defaults."""

    raw: Mapping[str, Any]
    path: str
    sha256: str  # of the file bytes: what an approval lock pins

    @property
    def canonical_sha256(self) -> str:
        return hashlib.sha256(canonical_bytes(self.as_dict())).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return _thaw(self.raw)

    def section(self, name: str) -> Mapping[str, Any]:
        return self.raw.get(name, MappingProxyType({}))

    # convenient typed views -------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return int(self.raw["run"]["seed"])

    @property
    def starting_cash(self) -> float:
        return float(self.raw["run"]["starting_cash_usd"])

    @property
    def symbol(self) -> str:
        return str(self.raw["instrument"]["symbol"])

    @property
    def qty_step(self) -> float:
        return float(self.raw["instrument"].get("qty_step", 1e-8))

    @property
    def price_tick(self) -> float | None:
        tick = self.raw["instrument"].get("price_tick")
        return None if tick is None else float(tick)

    @property
    def strategy_name(self) -> str:
        return str(self.raw["strategy"]["name"])

    @property
    def strategy_params(self) -> dict[str, Any]:
        return _thaw(self.raw["strategy"].get("params", {}))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def load_schema(schema_path: Path) -> dict[str, Any]:
    schema = read_json(schema_path, code="SSOT_SCHEMA_INVALID")
    check_schema(schema, source=str(schema_path))
    return schema


def validate_config(document: Any, schema: Mapping[str, Any], *, source: str) -> None:
    """Raise SSOT_SCHEMA naming the first offending field (deepest first, stable order)."""
    if not isinstance(document, dict):
        raise ConfigError("SSOT_SCHEMA", f"the SSOT must be a JSON object, not {type(document).__name__}",
                          path=source, field="(root)")
    found = first_error(Draft202012Validator(schema), document)
    if found is not None:
        raise ConfigError("SSOT_SCHEMA", found.message, path=source, field=error_field(found))


def config_from_dict(document: Any, schema: Mapping[str, Any], *, source: str = "<ssot>",
                     file_sha256: str | None = None) -> Config:
    validate_config(document, schema, source=source)
    try:
        canonical = canonical_bytes(document)
    except ValueError as exc:  # e.g. an integer beyond 2**53 in strategy params
        raise ConfigError("SSOT_SCHEMA", f"value has no exact canonical JSON form: {exc}", path=source,
                          field=_first_unrepresentable(document) or "(root)",
                          hint="keep integers within +-(2**53 - 1) (I-JSON)") from exc
    sha = file_sha256 or hashlib.sha256(canonical).hexdigest()
    return Config(raw=_freeze(document), path=source, sha256=sha)


def _first_unrepresentable(node: Any, prefix: str = "") -> str | None:
    """Dot path of the first value canonical JSON cannot hold exactly (sorted-key order)."""
    if isinstance(node, dict):
        for key in sorted(node):
            found = _first_unrepresentable(node[key], f"{prefix}{key}.")
            if found:
                return found
        return None
    if isinstance(node, list):
        for i, item in enumerate(node):
            found = _first_unrepresentable(item, f"{prefix}{i}.")
            if found:
                return found
        return None
    try:
        canonical_bytes(node)
    except ValueError:
        return prefix.rstrip(".") or "(root)"
    return None


def _refuse_duplicate_keys(raw: bytes, shown: str) -> None:
    """orjson (like most readers) lets the last of two equal keys win silently; in the file that
    decides risk limits a duplicate is far more likely a bad merge than intent, so refuse it."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise ConfigError("SSOT_DUPLICATE_KEY", f"key {key!r} appears twice in one object",
                                  path=shown, field=key)
            seen.add(key)
        return dict(items)

    json.loads(raw, object_pairs_hook=pairs)


def _check_workspace_spec(ssot_path: Path, schema_path: Path) -> None:
    """When the schema is a workspace's spec/config.schema.json, refuse a spec/ or truth/ that
    escapes the workspace (a symlinked folder, spec/ssot.json or any entry linked out, a device):
    ``PATH_ESCAPE`` / ``WORKSPACE_LAYOUT``. An SSOT given on the command line (``--ssot``) outside
    spec/ is the operator's explicit choice and is read as given."""
    from treasure.workspace import Workspace

    spec = Path(os.path.abspath(schema_path)).parent
    if spec.name != "spec":
        return  # a bare schema file (tests, tools): no workspace to hold it to
    ws = Workspace(spec.parent.resolve())
    ws.check_spec_tree()
    in_spec = Path(os.path.abspath(ssot_path)).parent == spec
    for path in ([ssot_path] if in_spec else []) + [schema_path]:
        if path.is_symlink():
            rel = f"spec/{path.name}"
            raise ConfigError("PATH_ESCAPE", f"{rel} is a symlink (to {os.readlink(path)})", path=rel,
                              hint=f"replace {rel} with the real file: what a run reads must be what "
                              "`treasure ssot approve` pinned")


def load_config(ssot_path: Path, schema_path: Path, *, display_path: str | None = None) -> Config:
    """Load and validate an SSOT file; every failure is a coded ConfigError naming file and field."""
    shown = display_path or str(ssot_path)
    _check_workspace_spec(Path(ssot_path), Path(schema_path))
    if not Path(ssot_path).is_file():
        code = "SSOT_MISSING"
        raise ConfigError(code, f"no SSOT at {shown}", path=shown)
    raw = Path(ssot_path).read_bytes()
    document = read_json(ssot_path, code="SSOT_JSON")
    _refuse_duplicate_keys(raw, shown)
    schema = load_schema(schema_path)
    return config_from_dict(document, schema, source=shown, file_sha256=hashlib.sha256(raw).hexdigest())
