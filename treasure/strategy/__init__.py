"""Strategy API and built-ins.

``Bar``, ``Intent`` and ``Strategy`` are imported at once; the built-in classes and the loader
(which pulls in jsonschema and the plugin manager) on first use.
"""

from typing import TYPE_CHECKING, Any

from treasure.strategy.base import Bar, Intent, Strategy

if TYPE_CHECKING:  # pragma: no cover
    from treasure.strategy.builtin import BUILTIN, BuyAndHold, MeanReversion, SmaCrossover
    from treasure.strategy.loader import LoadedStrategy, load_strategy

_BUILTIN_NAMES = ("BUILTIN", "BuyAndHold", "MeanReversion", "SmaCrossover")
_LOADER_NAMES = ("LoadedStrategy", "load_strategy")


def __getattr__(name: str) -> Any:
    if name in _BUILTIN_NAMES:
        from treasure.strategy import builtin

        return getattr(builtin, name)
    if name in _LOADER_NAMES:
        from treasure.strategy import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'treasure.strategy' has no attribute {name!r}")


__all__ = ["Bar", "Intent", "Strategy", "BUILTIN", "BuyAndHold", "MeanReversion", "SmaCrossover",
           "LoadedStrategy", "load_strategy"]
