"""pytest-treasure: Treasure's operator gates as pytest markers, fixtures and hypothesis strategies.

Public API for gate authors and plugin writers (importing it is cheap: no engine, no numpy):

* ``hookimpl`` / ``hookspec``: pluggy markers of the "treasure" hooks (:mod:`pytest_treasure.hookspecs`)
* ``GateSpec``: what ``treasure_gates()`` returns
* ``manager(config)``: the session's Treasure plugin manager (``manager(config).hook.<hook>(...)``)
* ``check_event(config, event, workspace)``: every ``treasure_check_event`` problem, flattened
* ``workspace_of(run_result)``: the temporary workspace a ``treasure_run`` wrote into
"""

from pytest_treasure.hookspecs import hookimpl, hookspec
from pytest_treasure.registry import GateSpec, check_event, known_gates, manager
from pytest_treasure.runs import workspace_of

__all__ = ["hookimpl", "hookspec", "GateSpec", "manager", "check_event", "known_gates", "workspace_of"]
