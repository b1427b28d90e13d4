"""Treasure: a deterministic, event-driven trading simulation engine with verification gates.

The public API: run a simulation (:func:`run` with a :class:`RunRequest`), write strategies
(:class:`Strategy`, :class:`Intent`, :class:`Bar`), and handle errors (:class:`TreasureError`).
"""

__version__ = "0.1.0"

from treasure.errors import TreasureError  # noqa: E402


def __getattr__(name: str):  # lazy: importing treasure must stay cheap for the pytest plugin
    if name in ("run", "RunRequest", "RunResult", "prepare_run", "execute_run"):
        from treasure import engine

        return getattr(engine, name)
    if name in ("Bar", "Intent", "Strategy"):  # numpy: not for `treasure --version` or the plugin
        from treasure import strategy

        return getattr(strategy, name)
    if name == "Workspace":
        from treasure.workspace import Workspace

        return Workspace
    raise AttributeError(name)


__all__ = ["__version__", "TreasureError", "Bar", "Intent", "Strategy", "run", "RunRequest",
           "RunResult", "Workspace"]
