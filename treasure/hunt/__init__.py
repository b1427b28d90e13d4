"""Property-based regression hunting: generated cases, invariant checks, shrunk reproducers.

``treasure hunt`` (and :func:`treasure.hunt.search.hunt`) points hypothesis at a strategy: it
generates datasets and SSOTs (:mod:`treasure.hunt.strategies`), runs each through the engine,
checks every invariant (:mod:`treasure.invariants`) and, when one breaks, shrinks the case
and writes it under ``fixtures/regressions/<id>/`` with a pytest test that reproduces it.
"""

from treasure.hunt.case import Case, GeneratedDataset

__all__ = ["Case", "GeneratedDataset"]
