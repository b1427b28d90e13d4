"""Finding a strategy by name: a plugin's name, ``module:Class`` or ``path/to/file.py:Class``.

Names come from the ``treasure_strategies`` hook (Treasure's built-ins are a plugin too); a
``module:Class`` reference is checked and its module allowed (:func:`treasure.plugins.parse_module_ref`)
before anything is imported; a file reference loads that file.

The SHA-256 of the strategy's source file is recorded in run_start and the court report, so a
replay can tell when the code behind a run has changed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from treasure.contracts import error_field, first_error
from treasure.errors import RunError
from treasure.strategy.base import Strategy


@dataclass(frozen=True)
class LoadedStrategy:
    strategy: Strategy
    name: str
    ref: str
    params: dict[str, Any]
    source_sha256: str
    source_path: str | None


def _import_class(module_name: str, class_name: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise RunError("STRATEGY_UNKNOWN", f"cannot import module {module_name!r}: {exc}",
                       field="strategy.name") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise RunError("STRATEGY_UNKNOWN", f"{module_name} has no class {class_name!r}", field="strategy.name")
    return cls


def _load_class(ref: str, base_dir: Path | None) -> Any:
    from treasure import plugins

    declared = plugins.resolve_strategy(ref)
    if isinstance(declared, str):  # a plugin's name for "module:Class": the plugin vouches for it
        module_name, _, class_name = declared.rpartition(":")
        return _import_class(module_name, class_name)
    if declared is not None:
        return declared
    if ":" not in ref:
        raise RunError("STRATEGY_UNKNOWN", f"unknown strategy {ref!r} (known: "
                       f"{', '.join(plugins.strategies())})", field="strategy.name")
    target, _, class_name = ref.rpartition(":")
    if not target.endswith(".py"):
        return _import_class(*plugins.parse_module_ref(ref))  # refused before any import if not allowed
    path = Path(target)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise RunError("STRATEGY_UNKNOWN", f"strategy file {target} not found", path=str(path),
                       field="strategy.name")
    module_name = "treasure_user_strategy_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RunError("STRATEGY_UNKNOWN", f"cannot import {path}", path=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module failed to import: report, don't crash
        sys.modules.pop(module_name, None)
        raise RunError("STRATEGY_INVALID", f"importing {path} failed: {type(exc).__name__}: {exc}",
                       path=str(path)) from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise RunError("STRATEGY_UNKNOWN", f"{target} has no class {class_name!r}", field="strategy.name")
    return cls


def load_strategy(ref: str, params: dict[str, Any] | None = None, *,
                  base_dir: Path | None = None, display_ref: str | None = None) -> LoadedStrategy:
    """Instantiate a strategy with validated params; every failure is a coded RunError."""
    params = dict(params or {})
    cls = _load_class(ref, base_dir)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise RunError("STRATEGY_INVALID", f"{ref} is not a treasure.Strategy subclass", field="strategy.name")
    found = first_error(Draft202012Validator(getattr(cls, "params_schema", {"type": "object"})), params)
    if found is not None:
        raise RunError("STRATEGY_PARAMS", f"{ref}: {found.message}",
                       field=f"strategy.params.{error_field(found)}".rstrip(".").replace(".(root)", ""))
    try:
        instance = cls(**params)
    except (TypeError, ValueError) as exc:
        raise RunError("STRATEGY_PARAMS", f"{ref}: {exc}", field="strategy.params") from exc
    try:
        source_path = inspect.getsourcefile(cls)
    except TypeError:
        source_path = None
    source = Path(source_path).read_bytes() if source_path and Path(source_path).is_file() else b""
    return LoadedStrategy(
        strategy=instance,
        name=getattr(cls, "name", cls.__name__) or cls.__name__,
        ref=display_ref or ref,
        params=params,
        source_sha256=hashlib.sha256(source).hexdigest(),
        source_path=source_path,
    )
