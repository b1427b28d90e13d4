"""Execution: the adapter interface, its messages and the built-in adapters."""

from treasure.execution.base import ExecutionAdapter, adapter_names, create_adapter, register_adapter
from treasure.execution.messages import ExecReport, Fill, Order
from treasure.execution import sim as _sim  # noqa: F401  (registers "sim")

__all__ = ["ExecutionAdapter", "ExecReport", "Fill", "Order", "adapter_names", "create_adapter",
           "register_adapter"]
