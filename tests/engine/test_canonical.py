"""canonical_bytes must be exact RFC 8785 for every JSON value, fast path or not."""

from __future__ import annotations

import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from treasure.canonical import canonical_bytes, drop_paths

json_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_matches_reference_jcs(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("number", [0.0, -0.0, 1.0, -1.0, 0.1, 1e-5, 9.99e-6, 1e-7, 2.0**53, 2.0**53 - 1,
                                    1e16, 1e21, 1e300, 5e-324, 123456789.125])
def test_float_edge_cases(number):
    assert canonical_bytes({"x": number, "y": [number]}) == rfc8785.dumps({"x": number, "y": [number]})


def test_key_order_is_utf16_not_insertion():
    assert canonical_bytes({"b": 1, "a": 2, "é": 3, "z": 4}) == rfc8785.dumps({"a": 2, "b": 1, "z": 4, "é": 3})


@pytest.mark.parametrize("value", [2**53, -(2**53), {"é": 2**60}, [2**64]])
def test_integers_outside_ijson_range_are_refused_on_every_path(value):
    with pytest.raises(ValueError):
        canonical_bytes(value)


def test_nan_is_refused():
    with pytest.raises(ValueError):
        canonical_bytes({"x": math.nan})


def test_drop_paths_with_wildcards_and_missing_paths():
    doc = {"timing": {"wall_ms": 3, "n": 1}, "runs": [{"d": 1, "k": 2}, {"d": 2, "k": 3}], "keep": True}
    out = drop_paths(doc, ["timing.wall_ms", "runs.*.d", "absent.path"])
    assert out == {"timing": {"n": 1}, "runs": [{"k": 2}, {"k": 3}], "keep": True}
    assert doc["timing"]["wall_ms"] == 3  # the input is not modified


@given(json_values)
@settings(max_examples=200, deadline=None)
def test_event_fast_path_equals_full_canonical_form(payload):
    from treasure.canonical import canonical_event_bytes

    event = {"category": "SYS", "event_type": "x", "level": "INFO", "payload": {"p": payload},
             "prev": "0" * 64, "run_id": "r", "seq": 3, "ts_ms": 1767225600000}
    assert canonical_event_bytes(event) == canonical_bytes(event)
