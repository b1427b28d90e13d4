"""The run: SSOT + dataset + seed in, events and reports out.

Two phases. :func:`prepare_run` does every check that can refuse the inputs (SSOT schema, dataset
validity and pinned SHA, strategy, run id) before anything is written, so bad input never leaves
half-written evidence. :func:`execute_run` then drives the bar loop and always finishes its evidence:
a strategy that raises, a halt, or a write error still ends with run_end and reports saying so.

Modules, in the order a run passes them (the same split as :mod:`treasure.recon`: pure parts, I/O
in a service):

- :mod:`~treasure.engine.request`  -- preparation: every refusal before anything is written
- :mod:`~treasure.engine.loop`     -- the bar loop: lifecycle, intents, fills, halts
- :mod:`~treasure.engine.orders`   -- the order book (working orders, fills)
- :mod:`~treasure.engine.evidence` -- equity curve and reports from what the loop recorded (pure)
- :mod:`~treasure.engine.service`  -- sinks, running the loop, writing the evidence
- risk rules live in :mod:`treasure.risk`, accounting in :mod:`treasure.portfolio`
"""

from treasure.engine.evidence import EQUITY_DTYPE
from treasure.engine.loop import DAY_MS, PROGRESS_EVERY
from treasure.engine.request import (MAX_SEED, PreparedRun, RunRequest, RunResult, SinkFactory,
                                     derive_run_id, prepare_run)
from treasure.engine.service import execute_run, run
from treasure.execution.messages import quantize

__all__ = ["DAY_MS", "EQUITY_DTYPE", "MAX_SEED", "PROGRESS_EVERY", "PreparedRun", "RunRequest", "RunResult",
           "SinkFactory", "derive_run_id", "execute_run", "prepare_run", "quantize", "run"]
