"""The contracts in truth/: JSON Schemas (draft 2020-12) of events, reports and data.

Documents (reports, the SSOT) are validated with ``jsonschema`` for its precise error paths. Events
are validated on the hot path with validators compiled by ``fastjsonschema`` (about 15x faster),
falling back to ``jsonschema`` only to explain a failure. Fields whose value is a wall-clock reading
are marked ``"x-treasure-volatile": true`` in a schema; :meth:`Contracts.volatile_paths` lists them so
canonical comparison can drop them.
"""

from __future__ import annotations

import copy
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import fastjsonschema
import jsonschema
import orjson
from jsonschema import Draft202012Validator

from treasure.errors import ConfigError, EventLogError, TreasureError
from treasure.jsonio import read_json

VOLATILE_KEYWORD = "x-treasure-volatile"
_SUFFIX = ".schema.json"


def schema_name(path: Path) -> str:
    return path.name[: -len(_SUFFIX)]


_VALID_SCHEMAS: set[bytes] = set()


def check_schema(schema: Any, *, source: str) -> None:
    """Refuse a file that is not a valid draft 2020-12 schema, naming the bad keyword.

    Checking against the meta-schema costs ~50 ms a schema and is a pure function of the
    document, so a schema that passed once (same canonical content) is not checked again.
    """
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        key = None
    if key is not None and key in _VALID_SCHEMAS:
        return
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        field = "/".join(str(p) for p in exc.absolute_path) or None
        raise ConfigError("SCHEMA_INVALID", f"not a valid JSON Schema: {exc.message}",
                          path=source, field=field) from exc
    if key is not None:
        _VALID_SCHEMAS.add(key)


def first_error(validator: Draft202012Validator, document: Any) -> jsonschema.ValidationError | None:
    """The most relevant error (deepest path first, then message) so reports are stable."""
    errors = sorted(validator.iter_errors(document),
                    key=lambda e: (-len(e.absolute_path), [str(p) for p in e.absolute_path], e.message))
    return errors[0] if errors else None


def error_field(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


class Contracts:
    """All schemas of a truth/ folder, loaded lazily and validated when first used."""

    def __init__(self, truth_dir: Path) -> None:
        self.truth_dir = Path(truth_dir)
        self._schemas: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, Draft202012Validator] = {}

    # loading ----------------------------------------------------------------------------------
    def schema_path(self, name: str) -> Path:
        if name.startswith("events/"):
            return self.truth_dir / "events" / f"{name[len('events/'):]}{_SUFFIX}"
        return self.truth_dir / f"{name}{_SUFFIX}"

    def schema(self, name: str) -> dict[str, Any]:
        if name not in self._schemas:
            path = self.schema_path(name)
            if not path.is_file():
                raise ConfigError("SCHEMA_MISSING", f"no schema {path.name} in truth/", path=str(path),
                                  hint="restore truth/ from the package (`treasure init --force`)")
            self._schemas[name] = _load_checked(path)
        return self._schemas[name]

    def validator(self, name: str) -> Draft202012Validator:
        if name not in self._validators:
            self._validators[name] = Draft202012Validator(self.schema(name))
        return self._validators[name]

    @cached_property
    def event_types(self) -> tuple[str, ...]:
        folder = self.truth_dir / "events"
        return tuple(sorted(schema_name(p) for p in folder.glob(f"*{_SUFFIX}")))

    # documents --------------------------------------------------------------------------------
    def errors(self, name: str, document: Any) -> list[str]:
        return [f"{error_field(e)}: {e.message}" for e in
                sorted(self.validator(name).iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]

    def validate(self, name: str, document: Any, *, source: str | None = None,
                 code: str = "REPORT_INVALID", error: type[TreasureError] = ConfigError) -> None:
        found = first_error(self.validator(name), document)
        if found is not None:
            raise error(code, f"{name}: {found.message}", path=source, field=error_field(found))

    def volatile_paths(self, name: str) -> list[str]:
        """Dot paths of fields marked volatile in the schema (``*`` for array items / any key)."""
        paths: list[str] = []
        _collect_volatile(self.schema(name), "", paths)
        return sorted(set(paths))

    # events -----------------------------------------------------------------------------------
    @cached_property
    def _fast_envelope(self) -> Callable[[Any], Any]:
        return _compile(self.schema("event"))

    def _fast_payload(self, event_type: str) -> Callable[[Any], Any] | None:
        cache = self.__dict__.setdefault("_payload_cache", {})
        if event_type not in cache:
            path = self.schema_path(f"events/{event_type}")
            cache[event_type] = _compile(self.schema(f"events/{event_type}")) if path.is_file() else None
        return cache[event_type]

    def check_event(self, event: dict[str, Any], *, source: str | None = None, line: int | None = None) -> None:
        """Validate an event's envelope and its payload against its event type's schema."""
        try:
            self._fast_envelope(event)
        except fastjsonschema.JsonSchemaException:
            self._explain(event, "event", event, "", source, line)
        payload_check = self._fast_payload(event["event_type"])
        if payload_check is None:
            raise EventLogError("EVENTS_SCHEMA", f"unknown event_type {event['event_type']!r}",
                                path=source, line=line, field="event_type",
                                hint="every event_type needs a payload schema in truth/events/")
        try:
            payload_check(event["payload"])
        except fastjsonschema.JsonSchemaException:
            self._explain(event["payload"], f"events/{event['event_type']}", event, "payload.", source, line)

    def check_emitted(self, event: dict[str, Any]) -> None:
        """Validate the payload of an event the engine itself built.

        The envelope is constructed by :class:`treasure.events.EventBus` from typed values, so
        on the hot path only the payload (the part callers supply) needs its schema checked; the
        events gate validates envelopes of every log it reads.
        """
        event_type = event["event_type"]
        predicates = self.__dict__.setdefault("_payload_predicates", {})
        predicate = predicates.get(event_type)
        if predicate is None:
            if not self.schema_path(f"events/{event_type}").is_file():
                raise EventLogError("EVENTS_SCHEMA", f"unknown event_type {event_type!r}", field="event_type",
                                    hint="every event_type needs a payload schema in truth/events/")
            from treasure.schemacheck import compile_predicate

            predicate = predicates[event_type] = compile_predicate(self.schema(f"events/{event_type}"),
                                                                   name=event_type)
        if not predicate(event["payload"]):
            # the compiled predicate is conservative: jsonschema decides, and names the field
            name = f"events/{event_type}"
            if first_error(self.validator(name), event["payload"]) is not None:
                self._explain(event["payload"], name, event, "payload.", None, None)

    def _explain(self, document: Any, name: str, event: dict[str, Any], prefix: str,
                 source: str | None, line: int | None) -> None:
        found = first_error(self.validator(name), document)
        message = found.message if found else "does not match its schema"
        field = prefix + (error_field(found) if found else "")
        raise EventLogError("EVENTS_SCHEMA", f"{event.get('event_type', '?')} event: {message}",
                            path=source, line=line, field=field.rstrip("."))


_CHECKED: dict[tuple[str, int, int], dict[str, Any]] = {}


def _load_checked(path: Path) -> dict[str, Any]:
    """Read and meta-validate a schema once per process per file version.

    Checking against the draft 2020-12 meta-schema costs 10-100 ms a file; keyed by path, size
    and mtime the result is reused by every Contracts instance until the file changes.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        schema = read_json(path, code="SCHEMA_INVALID")
        check_schema(schema, source=str(path))
        _CHECKED[key] = schema
    return copy.deepcopy(_CHECKED[key])


def _strip_meta(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_meta(v) for k, v in schema.items() if k not in ("$schema", "$id", VOLATILE_KEYWORD)}
    if isinstance(schema, list):
        return [_strip_meta(v) for v in schema]
    return schema


def _compile(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """fastjsonschema speaks draft-07; our event schemas keep to its common subset."""
    return fastjsonschema.compile(_strip_meta(schema), use_default=False)


def _collect_volatile(schema: Any, prefix: str, out: list[str]) -> None:
    if not isinstance(schema, dict):
        return
    for key, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}{key}"
        if isinstance(sub, dict) and sub.get(VOLATILE_KEYWORD) is True:
            out.append(path)
        else:
            _collect_volatile(sub, f"{path}.", out)
    items = schema.get("items")
    if isinstance(items, dict):
        _collect_volatile(items, f"{prefix}*.", out)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        _collect_volatile(extra, f"{prefix}*.", out)
