"""JSON Schemas compiled into fast, *conservative* checks: what makes the events gate cheap.

Two compilers, one contract: a compiled check may reject a valid document but never accepts an
invalid one, so a rejection is always re-checked by ``jsonschema`` (which also names the field).

* :func:`compile_predicate` turns a schema into a generated Python ``predicate(document) -> bool``
  over an already parsed document (``type(x) is ...`` tests, one ``dict.keys()`` comparison per
  closed object, memoised regexes). Schemas outside its subset use fastjsonschema.
* :func:`compile_struct` turns a schema into a ``msgspec`` type, so that decoding JSON bytes with
  ``msgspec.json.Decoder(type)`` *is* the validation, in C. It covers a narrower subset (closed
  objects, typed scalars, string enums, typed arrays) and returns ``None`` for anything else, or
  when msgspec is not installed: callers keep a pure path.

The subset keywords: type, enum, const, properties, required, additionalProperties, minimum,
maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern, items, minItems,
maxItems (plus min/maxProperties for predicates); annotations and ``x-`` keywords are ignored.
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Annotated, Any, Callable, Literal, Mapping, Union

import fastjsonschema
from jsonschema import Draft202012Validator

try:  # optional: the msgspec tier of treasure.eventlog; everything works without it
    import msgspec
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    msgspec = None  # type: ignore[assignment]

__all__ = ["HAVE_MSGSPEC", "compile_predicate", "compile_struct", "is_annotation", "trivial", "union_decoder"]

HAVE_MSGSPEC = msgspec is not None


# --------------------------------------------------------------------------------------------
# schemas compiled to conservative predicates
# --------------------------------------------------------------------------------------------
class _Unsupported(Exception):
    """The schema uses something a compiler here does not handle (the caller falls back)."""


_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$anchor", "$defs", "title", "description",
                          "examples", "default", "deprecated", "readOnly", "writeOnly", "format"})
_SUPPORTED = frozenset({"type", "enum", "const", "properties", "required", "additionalProperties",
                        "minProperties", "maxProperties", "minimum", "maximum", "exclusiveMinimum",
                        "exclusiveMaximum", "minLength", "maxLength", "pattern", "items", "minItems",
                        "maxItems"})
# Tests that a value is of a JSON type, on exact builtin types only: orjson produces nothing else,
# and anything unusual (an integral float for "integer", a subclass) is left to jsonschema.
_IS_TYPE = {
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "string": "type({v}) is str",
    "integer": "type({v}) is int",
    "number": "type({v}) in _NUM",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
}
_NOT_TYPE = {
    "object": "type({v}) is not dict",
    "array": "type({v}) is not list",
    "string": "type({v}) is not str",
    "integer": "type({v}) is not int",
    "number": "type({v}) not in _NUM",
    "boolean": "type({v}) is not bool",
    "null": "{v} is not None",
}
_KIND_OF_TYPE = {"integer": "number", "number": "number", "string": "string", "object": "object",
                 "array": "array", "boolean": "boolean", "null": "null"}
_GUARD = {"number": _IS_TYPE["number"], "string": _IS_TYPE["string"], "object": _IS_TYPE["object"],
          "array": _IS_TYPE["array"]}
_SCALARS = (str, int, float, bool, type(None))
_KIND_OF_VALUE = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
_PATTERN_MEMO = 1024

Body = Callable[[str, int], None]


def _pattern_miss(regex: re.Pattern[str], memo: set[str], value: str) -> bool:
    """True if ``value`` does not match; matches are memoised (the memo restarts when full)."""
    if regex.search(value) is None:
        return True
    if len(memo) >= _PATTERN_MEMO:
        memo.clear()
    memo.add(value)
    return False


class _Codegen:
    """Emits the body of ``def check(x) -> bool`` for a schema in a subset of draft 2020-12.

    Each schema becomes a list of *failure conditions* on one value (joined with ``or``, in an
    order where the type test guards the rest) plus statements for nested values. A value that
    needs only one test is not even bound to a local: ``if type(x['fee']) not in _NUM: ...``.
    The function body sits in ``try/except TypeError`` (free in CPython 3.11+), so membership
    tests need no hashability guard: an unhashable value is simply "not proven valid".
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "_JSON_TYPES": frozenset({dict, list, str, int, float, bool, type(None)}),
            "_NUM": frozenset({int, float}),
            "_SCALARS": frozenset(_SCALARS),
            "_MISSING": object(),
            "_pattern_miss": _pattern_miss,
        }
        self._counter = 0

    def fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def const(self, value: Any, prefix: str = "C") -> str:
        name = self.fresh(prefix)
        self.names[name] = value
        return name

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    # one value ---------------------------------------------------------------------------------
    def check(self, schema: Any, expr: str, depth: int, *, bound: bool = False) -> None:
        """Emit the checks of the value of ``expr`` (a local name if ``bound``, else e.g. x['k'])."""
        conds, bodies = self.plan(schema)
        self._emit_plan(conds, bodies, expr, depth, bound=bound)

    def _emit_plan(self, conds: list[str], bodies: list[tuple[str | None, Body]], expr: str, depth: int, *,
                   bound: bool) -> None:
        if not conds and not bodies:
            return
        joined = " or ".join(conds)
        if not bound and not bodies and joined.count("{v}") == 1:
            self.emit(depth, f"if {joined.format(v=expr)}: return False")
            return
        name = expr
        if not bound:
            name = self.fresh("x")
            self.emit(depth, f"{name} = {expr}")
        if conds:
            self.emit(depth, f"if {joined.format(v=name)}: return False")
        for guard, body in bodies:
            if guard is None:
                body(name, depth)
            else:
                self.emit(depth, f"if {guard.format(v=name)}:")
                body(name, depth + 1)

    def plan(self, schema: Any, *, typed: bool = False) -> tuple[list[str], list[tuple[str | None, Body]]]:
        """Failure conditions (templates over ``{v}``) and nested-statement emitters of a schema.

        ``typed``: the caller already proved the value has one of the schema's ``type``s.
        """
        if schema is True:
            return [], []
        if schema is False:
            return ["True"], []
        if not isinstance(schema, Mapping):
            raise _Unsupported("schema is not an object")
        unknown = [k for k in schema if k not in _SUPPORTED and k not in _ANNOTATIONS and not k.startswith("x-")]
        if unknown:
            raise _Unsupported(", ".join(sorted(unknown)))
        conds: list[str] = []
        kinds: set[str] | None
        if "type" in schema:
            kinds = self._types(schema["type"], [] if typed else conds)
            self._enum(schema, conds)
        elif "enum" in schema or "const" in schema:
            kinds = self._enum(schema, conds)  # the members' types bound the value's type
        else:
            conds.append("type({v}) not in _JSON_TYPES")
            kinds = None
        bodies: list[tuple[str | None, Body]] = []
        for kind, planner in (("number", self._number), ("string", self._string),
                              ("object", self._object), ("array", self._array)):
            if kinds is not None and kind not in kinds:
                continue  # the type test already excludes this kind: its keywords cannot apply
            kind_conds, body = planner(schema)
            exact = kinds == {kind}
            if kind_conds:
                joined = " or ".join(kind_conds)
                conds.append(joined if exact else f"({_GUARD[kind]} and ({joined}))")
            if body is not None:
                bodies.append((None if exact else _GUARD[kind], body))
        return conds, bodies

    def _types(self, declared: Any, conds: list[str]) -> set[str]:
        names = [declared] if isinstance(declared, str) else list(declared)
        if not names or any(name not in _IS_TYPE for name in names):
            raise _Unsupported(f"type {declared!r}")
        if len(names) == 1:
            conds.append(_NOT_TYPE[names[0]])
        else:
            conds.append("not (" + " or ".join(_IS_TYPE[name] for name in names) + ")")
        return {_KIND_OF_TYPE[name] for name in names}

    def _enum(self, schema: Mapping[str, Any], conds: list[str]) -> set[str] | None:
        members: list[Any] | None = None
        if "enum" in schema:
            members = list(schema["enum"])
        if "const" in schema:
            members = [schema["const"]] if members is None else [m for m in members if _same(m, schema["const"])]
        if members is None:
            return None
        if any(type(m) not in _SCALARS for m in members):
            raise _Unsupported("enum/const with containers")
        if members and all(type(m) is str for m in members):
            # A non-string never equals a string member (jsonschema's equality agrees).
            conds.append(f"{{v}} not in {self.const(frozenset(members), 'E')}")
        else:
            # (type, value) pairs keep 1, 1.0 and True apart; a mismatch only costs the slow path.
            conds.append(f"(type({{v}}), {{v}}) not in {self.const(frozenset((type(m), m) for m in members), 'E')}")
        return {_KIND_OF_VALUE[type(m)] for m in members}

    def _number(self, schema: Mapping[str, Any]) -> tuple[list[str], Body | None]:
        conds = []
        for key, op in (("minimum", "<"), ("exclusiveMinimum", "<="), ("maximum", ">"),
                        ("exclusiveMaximum", ">=")):
            if key in schema:
                bound = schema[key]
                if type(bound) not in (int, float):
                    raise _Unsupported(f"{key} {bound!r}")
                conds.append(f"{{v}} {op} {self.const(bound, 'N')}")
        return conds, None

    def _string(self, schema: Mapping[str, Any]) -> tuple[list[str], Body | None]:
        conds = []
        for key, op in (("minLength", "<"), ("maxLength", ">")):
            if key in schema:
                conds.append(f"len({{v}}) {op} {int(schema[key])}")
        if "pattern" in schema:
            regex = self.const(re.compile(schema["pattern"]), "P")
            memo = self.const(set(), "M")
            conds.append(f"({{v}} not in {memo} and _pattern_miss({regex}, {memo}, {{v}}))")
        return conds, None

    def _object(self, schema: Mapping[str, Any]) -> tuple[list[str], Body | None]:
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = list(dict.fromkeys(schema.get("required") or ()))
        extra = schema.get("additionalProperties", True)
        conds = []
        for key, op in (("minProperties", "<"), ("maxProperties", ">")):
            if key in schema:
                conds.append(f"len({{v}}) {op} {int(schema[key])}")
        known = self.const(frozenset(props), "K")
        if extra is False and set(required) == set(props):
            conds.append(f"{{v}}.keys() != {known}")  # a closed object, every member required
        else:
            if required:
                conds.append(f"not {{v}}.keys() >= {self.const(frozenset(required), 'R')}")
            if extra is False:
                conds.append(f"not {{v}}.keys() <= {known}")
        checked = [(name, sub) for name, sub in props.items() if not trivial(sub)]
        open_schema = extra not in (True, False) and not trivial(extra)
        if not checked and not open_schema:
            return conds, None

        def body(var: str, depth: int) -> None:
            if open_schema:
                key, item = self.fresh("k"), self.fresh("x")
                self.emit(depth, f"for {key}, {item} in {var}.items():")
                self.emit(depth + 1, f"if {key} in {known}: continue")
                self.check(extra, item, depth + 1, bound=True)
            for name, sub in checked:
                if name in required:
                    self.check(sub, f"{var}[{name!r}]", depth)
                    continue
                item = self.fresh("x")
                self.emit(depth, f"{item} = {var}.get({name!r}, _MISSING)")
                self.emit(depth, f"if {item} is not _MISSING:")
                start = len(self.lines)
                self.check(sub, item, depth + 1, bound=True)
                if len(self.lines) == start:
                    self.emit(depth + 1, "pass")

        return conds, body

    def _array(self, schema: Mapping[str, Any]) -> tuple[list[str], Body | None]:
        conds = []
        for key, op in (("minItems", "<"), ("maxItems", ">")):
            if key in schema:
                conds.append(f"len({{v}}) {op} {int(schema[key])}")
        items = schema.get("items", True)
        if trivial(items):
            return conds, None

        def body(var: str, depth: int) -> None:
            item = self.fresh("x")
            self.emit(depth, f"for {item} in {var}:")
            start = len(self.lines)
            self.check(items, item, depth + 1, bound=True)
            if len(self.lines) == start:
                self.emit(depth + 1, "pass")

        return conds, body


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def trivial(schema: Any) -> bool:
    """True for a schema that accepts everything (``true`` or annotations only)."""
    if schema is True:
        return True
    return isinstance(schema, Mapping) and all(k in _ANNOTATIONS or k.startswith("x-") for k in schema)


def _strip_annotations(schema: Any) -> Any:
    if isinstance(schema, Mapping):
        return {k: _strip_annotations(v) for k, v in schema.items()
                if k not in ("$schema", "$id") and not k.startswith("x-")}
    if isinstance(schema, list):
        return [_strip_annotations(v) for v in schema]
    return schema


def compile_predicate(schema: Any, *, name: str = "check") -> Callable[[Any], bool]:
    """Compile a JSON Schema into a fast, *conservative* ``predicate(document) -> bool``.

    ``True`` means the document is valid; ``False`` means "not proven valid": re-check with
    jsonschema (which also names the failing field). Schemas outside the supported subset (type,
    enum, const, properties, required, additionalProperties, min/max*, exclusive*, *Length,
    pattern, items, *Items, *Properties) are compiled with fastjsonschema instead.
    """
    gen = _Codegen()
    try:
        gen.check(schema, "x", 2, bound=True)
    except _Unsupported:
        return _fastjsonschema_predicate(schema)
    func_name = "check_" + re.sub(r"\W", "_", name)
    source = "\n".join([f"def {func_name}(x):", "    try:", *gen.lines, "        pass",
                        "    except TypeError:  # an unhashable value in a membership test",
                        "        return False", "    return True", ""])
    namespace = dict(gen.names)
    exec(compile(source, f"<treasure schema {name}>", "exec"), namespace)  # noqa: S102 - generated above
    predicate = namespace[func_name]
    predicate.source = source  # type: ignore[attr-defined]  # for debugging and the tests
    return predicate


def _fastjsonschema_predicate(schema: Any) -> Callable[[Any], bool]:
    validate = fastjsonschema.compile(_strip_annotations(schema), use_default=False)

    def predicate(document: Any) -> bool:
        try:
            validate(document)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    predicate.source = None  # type: ignore[attr-defined]
    return predicate


def is_annotation(key: str) -> bool:
    """True for a keyword that does not constrain (``title``, ``format``, ``x-...``)."""
    return key in _ANNOTATIONS or key.startswith("x-")


# --------------------------------------------------------------------------------------------
# schemas compiled to msgspec types: decoding is validating
# --------------------------------------------------------------------------------------------
_STRUCT_KEYWORDS = frozenset({"type", "enum", "const", "properties", "required", "additionalProperties",
                              "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
                              "maxLength", "pattern", "items", "minItems", "maxItems"})
# msgspec decodes any integer exactly, orjson only within 64 bits (beyond, it returns a float).
# Integers are held to int64 so that whatever the struct accepts decodes to the very value orjson
# gives; a rarer integer is "not proven" and takes the pure path.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT_INT = 2**53  # an integer bound beyond this is not exact as a C double
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def compile_struct(schema: Any, *, name: str = "Document", tag_field: str | None = None,
                   tag: str | None = None) -> Any | None:
    """Compile a JSON Schema into a msgspec type whose JSON decoder accepts only valid documents.

    Returns the type (for ``msgspec.json.Decoder(type)``, or a member of a ``Union``), or
    ``None`` when msgspec is missing or the schema is outside the subset: objects must be closed
    (``additionalProperties: false``; an open object would let msgspec skip members unchecked)
    and every value typed (no ``{}``/``true``, so a document's depth is bounded by the schema's),
    enums hold strings (and ``null``), integers stay within int64 and numeric bounds are exact
    doubles. Absent optional members decode as ``msgspec.UNSET``.

    With ``tag_field``/``tag`` the schema must be an object requiring ``tag_field`` with a
    subschema that accepts ``tag``: the result is a tagged struct for a ``Union`` of several
    (msgspec dispatches on the tag's value; a lone tagged struct would accept a missing tag).
    """
    if msgspec is None:
        return None
    try:
        built = _StructBuilder().type_of(schema, _identifier(name), tag_field=tag_field, tag=tag)
        msgspec.json.Decoder(built)  # msgspec refuses some unions only here
    except (_Unsupported, TypeError, ValueError, re.error):
        return None
    return built


def _identifier(text: str) -> str:
    cleaned = re.sub(r"\W", "_", text)
    return cleaned if cleaned[:1].isalpha() else f"S_{cleaned}"


class _StructBuilder:
    """Builds msgspec types for the struct subset; raises _Unsupported outside it."""

    def type_of(self, schema: Any, name: str, *, tag_field: str | None = None, tag: str | None = None) -> Any:
        if not isinstance(schema, Mapping):
            raise _Unsupported("a boolean schema")
        unknown = [k for k in schema if k not in _STRUCT_KEYWORDS and not is_annotation(k)]
        if unknown:
            raise _Unsupported(", ".join(sorted(unknown)))
        if tag_field is not None and schema.get("type") != "object":
            raise _Unsupported("a tagged struct needs an object schema")
        if "enum" in schema or "const" in schema:
            return self._literal(schema)
        declared = schema.get("type")
        if declared is None:
            raise _Unsupported("an untyped value (any JSON)")
        kinds = [declared] if isinstance(declared, str) else list(declared)
        if not kinds or len(set(kinds)) != len(kinds):
            raise _Unsupported(f"type {declared!r}")
        members = [self._kind(kind, schema, f"{name}_{kind}" if len(kinds) > 1 else name,
                              tag_field=tag_field, tag=tag) for kind in kinds]
        return members[0] if len(members) == 1 else Union[tuple(members)]  # type: ignore[return-value]

    def _kind(self, kind: str, schema: Mapping[str, Any], name: str, *, tag_field: str | None,
              tag: str | None) -> Any:
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return Union[_integer(schema), _float(schema)]
        if kind == "string":
            return _string(schema)
        if kind == "boolean":
            return bool
        if kind == "null":
            return type(None)
        if kind == "object":
            return self._object(schema, name, tag_field=tag_field, tag=tag)
        if kind == "array":
            return self._array(schema, name)
        raise _Unsupported(f"type {kind!r}")

    def _literal(self, schema: Mapping[str, Any]) -> Any:
        extra = [k for k in schema if k not in ("enum", "const", "type") and not is_annotation(k)]
        if extra or ("enum" in schema and "const" in schema):
            raise _Unsupported("enum/const with other keywords")
        members = list(schema["enum"]) if "enum" in schema else [schema["const"]]
        if any(m is not None and type(m) is not str for m in members):
            raise _Unsupported("enum/const members that are not strings or null")
        declared = schema.get("type")
        if declared is not None:
            kinds = {declared} if isinstance(declared, str) else set(declared)
            members = [m for m in members if ("null" if m is None else "string") in kinds]
        strings = tuple(dict.fromkeys(m for m in members if m is not None))
        options: list[Any] = [Literal[strings]] if strings else []  # type: ignore[valid-type]
        if None in members:
            options.append(type(None))
        if not options:
            raise _Unsupported("an enum nothing can match")
        return options[0] if len(options) == 1 else Union[tuple(options)]

    def _object(self, schema: Mapping[str, Any], name: str, *, tag_field: str | None, tag: str | None) -> Any:
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = list(dict.fromkeys(schema.get("required") or ()))
        if schema.get("additionalProperties", True) is not False:
            raise _Unsupported("an open object")
        if any(key not in props for key in required):
            raise _Unsupported("a required member without a schema")
        if tag_field is not None:
            if tag_field not in required or not Draft202012Validator(props[tag_field]).is_valid(tag):
                raise _Unsupported(f"tag {tag!r} is not a valid required {tag_field}")
        fields: list[tuple[Any, ...]] = []
        rename: dict[str, str] = {}
        for index, (key, sub) in enumerate(props.items()):
            if key == tag_field:
                continue
            attribute = key
            if not key.isidentifier() or keyword.iskeyword(key) or key.startswith("_"):
                attribute = f"m{index}_"
                while attribute in props:
                    attribute += "_"
                rename[attribute] = key
            member = self.type_of(sub, f"{name}_{_identifier(key)}")
            if key in required:
                fields.append((attribute, member))
            else:
                fields.append((attribute, Union[member, msgspec.UnsetType], msgspec.UNSET))
        options: dict[str, Any] = {"tag_field": tag_field, "tag": tag} if tag_field is not None else {}
        # gc=False: a decoded document holds no cycles, and untracked structs cost the collector nothing.
        return msgspec.defstruct(name, fields, rename=rename or None, forbid_unknown_fields=True, kw_only=True,
                                 gc=False, **options)

    def _array(self, schema: Mapping[str, Any], name: str) -> Any:
        if "items" not in schema:
            raise _Unsupported("an array of anything")
        item = self.type_of(schema["items"], f"{name}_item")
        return _annotated(list[item], _lengths(schema, "minItems", "maxItems"))  # type: ignore[valid-type]


def _annotated(base: Any, meta: dict[str, Any]) -> Any:
    """``base`` with msgspec constraints (``Annotated[base, Meta(...)]``), or ``base`` without any."""
    return Annotated[base, msgspec.Meta(**meta)] if meta else base


def _lengths(schema: Mapping[str, Any], low: str, high: str) -> dict[str, int]:
    meta = {}
    if low in schema:
        meta["min_length"] = int(schema[low])
    if high in schema:
        meta["max_length"] = int(schema[high])
    return meta


def _bound(schema: Mapping[str, Any], key: str) -> int | float | None:
    value = schema.get(key)
    if value is None:
        return None
    if type(value) not in (int, float):
        raise _Unsupported(f"{key} {value!r}")
    return value


def _integer(schema: Mapping[str, Any]) -> Any:
    """int within int64, with the schema's bounds made inclusive integer bounds (exact for ints)."""
    low, high = _INT_MIN, _INT_MAX
    if (b := _bound(schema, "minimum")) is not None:
        low = max(low, math.ceil(b))
    if (b := _bound(schema, "exclusiveMinimum")) is not None:
        low = max(low, math.floor(b) + 1)
    if (b := _bound(schema, "maximum")) is not None:
        high = min(high, math.floor(b))
    if (b := _bound(schema, "exclusiveMaximum")) is not None:
        high = min(high, math.ceil(b) - 1)
    if low > high:
        raise _Unsupported("integer bounds nothing can meet")
    return _annotated(int, {"ge": low, "le": high})


def _float(schema: Mapping[str, Any]) -> Any:
    meta = {}
    for key, option in zip(_BOUNDS, ("ge", "le", "gt", "lt")):
        b = _bound(schema, key)
        if b is None:
            continue
        if type(b) is int and abs(b) > _EXACT_FLOAT_INT:
            raise _Unsupported(f"{key} {b} is not exact as a double")
        meta[option] = float(b)
    return _annotated(float, meta)


def _string(schema: Mapping[str, Any]) -> Any:
    # Lengths count code points and patterns use re.search, as jsonschema does.
    meta: dict[str, Any] = _lengths(schema, "minLength", "maxLength")
    if "pattern" in schema:
        meta["pattern"] = schema["pattern"]
    return _annotated(str, meta)


def union_decoder(types: list[Any]) -> Any | None:
    """A ``msgspec.json.Decoder`` of the union of ``types`` (e.g. tagged structs from
    :func:`compile_struct`), or None if msgspec is missing or refuses the union."""
    if msgspec is None or not types:
        return None
    try:
        return msgspec.json.Decoder(Union[tuple(types)])  # type: ignore[valid-type]
    except (TypeError, ValueError):
        return None
