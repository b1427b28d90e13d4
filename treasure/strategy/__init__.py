"""Strategy API and built-ins."""

from treasure.strategy.base import Bar, Intent, Strategy
from treasure.strategy.builtin import BUILTIN, BuyAndHold, MeanReversion, SmaCrossover
from treasure.strategy.loader import LoadedStrategy, load_strategy

__all__ = ["Bar", "Intent", "Strategy", "BUILTIN", "BuyAndHold", "MeanReversion", "SmaCrossover",
           "LoadedStrategy", "load_strategy"]
