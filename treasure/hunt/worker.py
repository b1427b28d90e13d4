"""A run-cases-on-request child process, so determinism is checked across processes.

``python -m treasure.hunt.worker ROOT`` reads one JSON request per stdin line
(``{"ssot": PATH, "run_id": ID}``), runs the engine on the inputs already staged in the scratch
workspace ROOT and answers with one JSON line (the :class:`~treasure.hunt.runner.Outcome`
without evidence, which the parent reads from ROOT). The parent starts two of these with
different ``PYTHONHASHSEED`` values: a strategy whose output depends on set or dict order of
strings, on ``hash()``, on ``id()`` or on the global ``random`` module yields different
evidence in the two, while a deterministic run is byte-identical.

The protocol keeps stdout to itself: whatever the strategy prints goes to the log file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from treasure.hunt.runner import Outcome, load_evidence, run_staged
from treasure.workspace import Workspace


def serve(root: Path, requests: IO[str], replies: IO[str]) -> None:
    workspace = Workspace.at(root)
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        outcome = run_staged(workspace, Path(request["ssot"]), request["run_id"])
        replies.write(json.dumps(outcome.to_wire()) + "\n")
        replies.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0])
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the strategy's prints land in the log, not in the protocol
    sys.stdout = sys.stderr
    serve(root, sys.stdin, replies)
    return 0


class Worker:
    """The parent's handle on one worker process (started lazily, restarted if it dies)."""

    def __init__(self, root: Path, *, hash_seed: int) -> None:
        self.root = Path(root)
        self.hash_seed = hash_seed
        self.log_path = self.root / f"worker-{hash_seed}.log"
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None

    @property
    def where(self) -> str:
        return f"worker PYTHONHASHSEED={self.hash_seed}"

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            env = dict(os.environ)
            env["PYTHONHASHSEED"] = str(self.hash_seed)
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
            self._log = open(self.log_path, "ab")
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "treasure.hunt.worker", str(self.root)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self._log, text=True, encoding="utf-8", env=env,
                cwd=os.getcwd())
        return self._proc

    def submit(self, ssot_path: Path, run_id: str) -> None:
        proc = self._start()
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps({"ssot": str(ssot_path), "run_id": run_id}) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # receive() reports the dead worker

    def receive(self, run_id: str) -> Outcome:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            self._proc = None
            tail = self.log_path.read_text(errors="replace").splitlines()[-8:] if self.log_path.exists() else []
            return Outcome("crashed", traceback="\n".join(
                tail + [f"the {self.where} process died (exit {proc.returncode}) while running the case"]),
                where=self.where)
        wire: dict[str, Any] = json.loads(line)
        evidence = missing = None
        if wire["status"] in ("complete", "halted", "error"):
            evidence, missing = load_evidence(Workspace.at(self.root), run_id)
        return Outcome(wire["status"], error=wire.get("error"), traceback=wire.get("traceback"),
                       evidence=evidence, where=self.where, missing=missing)

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
