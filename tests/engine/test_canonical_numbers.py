"""Canonical JSON numbers outside orjson's agreement range are written without the reference
encoder (orjson.Fragment + ECMAScript layout), byte for byte as ``rfc8785`` writes them."""

from __future__ import annotations


import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from treasure.canonical import canonical_bytes

EDGES = [1e-8, 1.5e-7, 1e-6, 9.99e-6, 1e-5, 2.0**53, 2.0**53 + 2, 1e21, 1e22, 1.2345678901234568e17, 5e-324,
         1.7976931348623157e308, 123e-20, 0.0, -0.0, 1e-7, 123456789012345678901234.0]


@given(st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(EDGES))
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_every_finite_float_is_written_as_the_reference_writes_it(value: float) -> None:
    document = {"a": value, "b": [value, {"c": -value}], "d": "x"}
    assert canonical_bytes(document) == rfc8785.dumps(document)


def test_the_edges() -> None:
    for value in EDGES:
        for x in (value, -value):
            assert canonical_bytes([x]) == rfc8785.dumps([x]), x
    assert canonical_bytes({"q": 1e-8}) == b'{"q":1e-8}'
    assert canonical_bytes({"q": 2.0**60}) == b'{"q":1152921504606847000}'  # ES: shortest digits, zeros
