"""Execution: the adapter interface, its messages and the built-in adapters."""

from treasure.execution.base import ExecutionAdapter, adapter_names, create_adapter, register_adapter
from treasure.execution.messages import ExecReport, Fill, Order
from treasure.execution import sim as _sim  # noqa: F401  (registers "sim")
from treasure.execution import dryrun as _dryrun  # noqa: F401  (registers "dryrun")
from treasure.execution import replay_live as _replay_live  # noqa: F401  (registers "replay-live")

__all__ = ["ExecutionAdapter", "ExecReport", "Fill", "Order", "adapter_names", "create_adapter",
           "register_adapter"]
