"""Execution: the adapter interface, its messages and the built-in adapters.

Adapters are found through the ``treasure_execution_adapters`` hook (:mod:`treasure.plugins`):
the built-ins are a plugin, third parties add theirs with a ``treasure`` entry point.
``register_adapter`` is kept for existing code and seen by the same lookup.
"""

from treasure.execution.base import ExecutionAdapter, register_adapter
from treasure.execution.messages import ExecReport, Fill, Order
from treasure.plugins import adapter_names, create_adapter

__all__ = ["ExecutionAdapter", "ExecReport", "Fill", "Order", "adapter_names", "create_adapter",
           "register_adapter"]
