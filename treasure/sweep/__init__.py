"""Sweeps: strategies x parameter grids x datasets x seeds, each point a full run with its own
evidence, executed serially or on Dask distributed (``treasure sweep SPEC``).

- :mod:`~treasure.sweep.spec`     -- the sweep file and its checks (truth/sweep_spec.schema.json)
- :mod:`~treasure.sweep.planner`  -- points with stable ids; inputs addressed by SHA-256
- :mod:`~treasure.sweep.worker`   -- one point on a worker (pure: safe to retry)
- :mod:`~treasure.sweep.executor` -- serial, LocalCluster or a remote scheduler
- :mod:`~treasure.sweep.report`   -- the canonical sweep report, ranking, HTML heat map
- :mod:`~treasure.sweep.service`  -- the sweep directory, idempotent writes, the store
"""

from treasure.sweep.executor import ExecutorOptions
from treasure.sweep.service import SweepOutcome, run_sweep

__all__ = ["ExecutorOptions", "SweepOutcome", "run_sweep"]
