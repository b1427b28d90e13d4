"""``treasure verify [GATE...]``: run the operator gates, through pytest, against a workspace.

The gates ship as the importable subpackage ``pytest_treasure.gates`` and run with ``pytest
--pyargs``, so this works in any workspace made by ``treasure init``, inside or outside a source
checkout. pytest runs in a subprocess with an empty configuration (``-c os.devnull``) and the
gates folder as rootdir and conftest boundary, so
neither the caller's nor the repository's pytest settings change what the gates do. The verdict
is ``evidence/gates.json``, which the pytest plugin writes once at the end of the session.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from treasure.cli.types import positive_count
from treasure.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, TreasureError

#: pytest exit codes: 0 all passed, 1 some failed, 2 interrupted, 3 internal error, 4 usage error,
#: 5 no tests collected.
_PYTEST_USAGE = 4
_PYTEST_INTERNAL = 3


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from treasure import gate_catalog

    parser = subparsers.add_parser(
        "verify", parents=[common], help="run the operator gates (pytest -m gate) against the workspace",
        description="Run the operator gates shipped with Treasure against the workspace. Exit 0 only when "
        "every selected gate passed (a skipped gate is not a pass); 2 when one failed, was skipped or "
        "had no test. The report is evidence/gates.json (printed with --json).")
    parser.add_argument("gates", nargs="*", metavar="GATE",
                        help=f"gates to run (default: all): {gate_catalog.names_text()}")
    parser.add_argument("--jobs", "-n", type=positive_count, default=None, metavar="N",
                        help="run the gates on N processes (pytest-xdist)")
    parser.set_defaults(handler=handle)


#: The gates' package: run by name (``pytest --pyargs``), found wherever it is installed.
GATES_PACKAGE = "pytest_treasure.gates"


def pytest_command(workspace_root: Path, gates: list[str], *, jobs: int | None = None,
                   quiet: bool = False) -> list[str]:
    """The pytest invocation behind ``treasure verify`` (also what CI may run by hand)."""
    import importlib.util

    spec = importlib.util.find_spec(GATES_PACKAGE)  # locating the package runs none of its code
    if spec is None or not spec.submodule_search_locations:
        from treasure.errors import TreasureError

        raise TreasureError("GATES_MISSING", f"the gates package {GATES_PACKAGE} is not installed")
    gates_dir = Path(list(spec.submodule_search_locations)[0]).resolve()
    command = [sys.executable, "-m", "pytest", "--pyargs", GATES_PACKAGE, "-m", "gate", "-c", os.devnull,
               f"--rootdir={gates_dir.parent}", f"--confcutdir={gates_dir}", "-p", "no:cacheprovider",
               f"--treasure-workspace={workspace_root}", "-qq" if quiet else "-q", "-rfEs"]
    command += [f"--gate={name}" for name in gates]
    if jobs is not None and jobs > 1:
        command += ["-n", str(jobs)]
    return command


def _stamp(path: Path) -> Any:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _stderr_fd() -> int | None:
    """The file descriptor behind ``sys.stderr``, or None when it has none (replaced by a capture
    such as pytest's capsys, or by an embedding application): then a subprocess's output must be
    captured and written through ``sys.stderr`` instead of handed the stream."""
    try:
        sys.stderr.flush()
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and ValueError
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _require_writable_evidence(ws: Any) -> None:
    """The gates record their verdicts in evidence/ (gates.json, each gate's report): refuse up
    front, coded, when it cannot be written (a read-only workspace, a file in its place) instead of
    letting a gate fail on a good log with a pytest traceback."""
    import errno

    from treasure.workspace import check_layout, io_error, make_dirs

    ws.check_output_dirs()
    make_dirs(ws.evidence_dir)
    if not os.access(ws.evidence_dir, os.W_OK):  # EROFS on a read-only mount, even for root
        reason = errno.EROFS if _read_only_mount(ws.evidence_dir) else errno.EACCES
        raise io_error(OSError(reason, os.strerror(reason) + " (nothing was verified)"), ws.evidence_dir,
                       "record the gates' verdicts (evidence/gates.json) in")
    check_layout(ws.root, ws.evidence_dir)


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def handle(args: argparse.Namespace) -> int:
    from treasure import gate_history
    from treasure.jsonio import read_json
    from treasure.workspace import Workspace

    ws = Workspace.at(args.workspace)
    report_path = ws.evidence_dir / "gates.json"
    _require_writable_evidence(ws)
    before = _stamp(report_path)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.setdefault(gate_history.RUN_BY_ENV, "cli")  # recorded in the gate history (checklist sets its own)
    command = pytest_command(ws.root, list(args.gates), jobs=args.jobs, quiet=args.quiet)
    # With --json, stdout carries only the report: pytest's own output goes to stderr.
    if args.quiet:  # -q: pytest's output is kept back and shown only if the gates do not pass
        completed = subprocess.run(command, cwd=ws.root, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
    elif args.json and _stderr_fd() is None:  # embedded (sys.stderr replaced): capture, re-emit below
        completed = subprocess.run(command, cwd=ws.root, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        if completed.stdout:
            sys.stderr.write(completed.stdout.decode("utf-8", "replace"))
            sys.stderr.flush()
    else:
        completed = subprocess.run(command, cwd=ws.root, env=env,
                                   stdout=_stderr_fd() if args.json else None)
    written = _stamp(report_path)
    passed = completed.returncode == 0 and written is not None and written != before \
        and gate_history.session_view(read_json(report_path)).get("status") == "passed"
    if args.quiet and not passed and completed.stdout:
        sys.stderr.write(completed.stdout.decode("utf-8", "replace"))
    if written is None or written == before:
        code = "GATES_USAGE" if completed.returncode == _PYTEST_USAGE else "GATES_NOT_RUN"
        raise TreasureError(code, f"pytest ended with exit code {completed.returncode} before writing "
                            f"{ws.relative(report_path)}", path=ws.relative(report_path))
    report = gate_history.session_view(read_json(report_path))  # this session's gates, not every gate's
    if args.json:
        from treasure.cli.output import print_json

        print_json(report)
    elif not args.quiet or report["status"] != "passed":
        not_passed = [f"{g['name']} ({g['status']})" for g in report["gates"] if g["status"] != "passed"]
        verdict = "PASSED" if report["status"] == "passed" else f"{report['status'].upper()}: " + ", ".join(not_passed)
        print(f"treasure verify: {verdict} ({len(report['gates'])} gate(s); report {ws.relative(report_path)})")
    if completed.returncode == _PYTEST_INTERNAL:
        return EXIT_INTERNAL
    if report["status"] == "passed" and completed.returncode == 0:
        return EXIT_OK
    return EXIT_BAD_INPUT
