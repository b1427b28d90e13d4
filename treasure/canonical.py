"""RFC 8785 (JCS) canonical JSON, fast enough for the event hot path, and volatile-field removal.

Canonical bytes are what hashes, determinism diffs and goldens are computed over. orjson is ~50x
faster than a pure-Python JCS encoder and agrees with JCS byte for byte on everything except some
floats: integral floats (``1.0`` vs ``1``), ``-0.0``, and magnitudes where the two pick different
notations (below 1e-5 or at/above 2**53). :func:`canonical_bytes` normalises the first two and hands
documents holding the rare third kind to the reference ``rfc8785`` encoder, so the output is always
exact JCS. Keys must be strings; non-ASCII keys also take the reference path (JCS sorts by UTF-16
code units, orjson by UTF-8 bytes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import rfc8785

_SORT = orjson.OPT_SORT_KEYS
_EXACT_INT_LIMIT = 2.0**53
_TINY = 1e-5
_SAFE_INT = 2**53  # I-JSON: integers beyond +-(2**53 - 1) lose precision in JSON numbers


class _NeedsReference(Exception):
    """Raised inside the normaliser when only the reference encoder can be exact."""


def _float(value: float) -> Any:
    if value.is_integer():
        if -_EXACT_INT_LIMIT < value < _EXACT_INT_LIMIT:
            return int(value)
        return orjson.Fragment(es_number(value))
    if value != value or value in (math.inf, -math.inf):
        raise ValueError("NaN and infinity have no canonical JSON form")
    magnitude = -value if value < 0 else value
    if magnitude < _TINY or magnitude >= _EXACT_INT_LIMIT:
        return orjson.Fragment(es_number(value))
    return value


def es_number(value: float) -> bytes:
    """A finite float as ECMAScript's Number::toString writes it (what RFC 8785 prescribes), for
    the magnitudes where orjson's notation differs (below 1e-5, at or above 2**53). Python's
    ``repr`` gives the same shortest round-tripping digits; only the layout differs."""
    if value == 0.0:
        return b"0"
    text = repr(abs(value))
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + (int(exp) if exp else 0) - (len(whole + frac) - len(digits))  # ES's n
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= point <= 21:
        out = digits + "0" * (point - k)
    elif 0 < point <= 21:
        out = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        out = "0." + "0" * -point + digits
    else:
        e = point - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    return (("-" if value < 0 else "") + out).encode("ascii")


def _normalise(value: Any) -> Any:
    """Return ``value`` with floats in their JCS-equivalent form; copies only what changes.

    Runs once per event on the hot path, so the common case (str, int, bool, None and
    non-integral floats in ordinary ranges) touches each leaf once and allocates nothing.
    """
    kind = type(value)
    if kind is dict:
        out = None
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"canonical JSON keys must be str, got {type(key).__name__}")
            if not key.isascii():
                raise _NeedsReference
            t = type(item)
            if t is float:
                # the common float (not integral, 1e-5 <= |x| < 2**53; NaN and inf fail the range)
                # is already in its JCS form: test it inline, no call, no copy
                if (_TINY <= item < _EXACT_INT_LIMIT or -_EXACT_INT_LIMIT < item <= -_TINY) \
                        and not item.is_integer():
                    continue
                new = _float(item)
                if out is None:
                    out = dict(value)
                out[key] = new
                continue
            if t is str or t is bool or item is None:
                continue
            if t is int:
                if -_SAFE_INT < item < _SAFE_INT:
                    continue
                raise ValueError(f"integer {item} is outside the I-JSON range RFC 8785 can represent")
            new = _float(item) if t is float else _normalise(item)
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out
    if kind is float:
        return _float(value)
    if kind is list or kind is tuple:
        items = [_normalise(item) for item in value]
        return items
    if kind is int:
        if -_SAFE_INT < value < _SAFE_INT:
            return value
        raise ValueError(f"integer {value} is outside the I-JSON range RFC 8785 can represent")
    if value is None or kind is str or kind is bool:
        return value
    if isinstance(value, Mapping):
        return _normalise(dict(value))
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, int):
        return _normalise(int(value))
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"{kind.__name__} has no canonical JSON form")


def canonical_bytes(document: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON-compatible document."""
    try:
        return orjson.dumps(_normalise(document), option=_SORT)
    except _NeedsReference:
        try:
            return rfc8785.dumps(_to_plain(document))
        except rfc8785.CanonicalizationError as exc:
            raise ValueError(str(exc)) from exc


def canonical_event_bytes(event: dict[str, Any]) -> bytes:
    """:func:`canonical_bytes` for an event whose envelope holds only str and I-JSON int values
    (as :class:`treasure.events.EventBus` builds it): only the payload is walked."""
    try:
        payload = event["payload"]
        normal = _normalise(payload)
        if normal is not payload:
            event = {**event, "payload": normal}
        return orjson.dumps(event, option=_SORT)
    except _NeedsReference:
        return canonical_bytes(event)


def _to_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, float) and value == 0.0:
        return 0.0
    return value


def canonical_text(document: Any) -> str:
    return canonical_bytes(document).decode("utf-8")


def drop_paths(document: Any, paths: Iterable[str]) -> Any:
    """Return a copy of ``document`` without the fields at ``paths``.

    A path is dot-separated (``timing.wall_ms``); ``*`` matches every key of an object or every item
    of an array (``runs.*.duration_ms``). Missing paths are ignored: volatile fields are optional.
    """
    result = _deep_copy(document)
    for path in paths:
        _drop(result, path.split("."))
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _drop(node: Any, parts: list[str]) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else ([head] if head in node else [])
        for key in keys:
            if rest:
                _drop(node[key], rest)
            else:
                del node[key]
    elif isinstance(node, list) and head == "*":
        for item in node:
            if rest:
                _drop(item, rest)
