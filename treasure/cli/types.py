"""Argument types and output targets shared by the commands.

Types raise :class:`argparse.ArgumentTypeError`; :class:`treasure.cli.main.ArgumentParser` turns
that into ``error[CLI_VALUE]`` with exit 2, so an absurd number never reaches the library (no
OverflowError from ``--tail 1e21`` or ``--max-mb inf``). :func:`out_target` is the one check every
command that writes a file the operator names (``--out``, ``db backup DEST``) goes through.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable, Iterable

from treasure.errors import TreasureError

#: Largest count accepted for --head/--tail/--limit/... (more than any log holds).
MAX_COUNT = 10**9
#: Largest size accepted for --max-mb (1 TB).
MAX_MB = 1024.0 * 1024.0
#: Workspace folders holding evidence or config: never an --out target, even with --force.
PROTECTED_DIRS = ("spec", "truth", "logs", "reports", "data", "evidence", "fixtures", "archive")


def count(text: str) -> int:
    """A whole number 0..MAX_COUNT."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_COUNT:,} (got {text})")
    return value


def positive_count(text: str) -> int:
    """A whole number 1..MAX_COUNT."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {text})")
    return value


def seed(text: str) -> int:
    """A run seed: an integer in [0, 2**53) (recorded as an exact JSON number)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r} (seeds are integers in [0, 2**53))") from None
    if not 0 <= value < 2**53:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**53) (got {text})")
    return value


def minutes(text: str) -> float:
    """A time budget in minutes: finite, > 0, at most a year."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= 525_600:
        raise argparse.ArgumentTypeError(f"must be minutes above 0 and at most 525,600 (got {text})")
    return value


def megabytes(text: str) -> float:
    """A size in MB: finite, > 0, at most MAX_MB."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_MB:
        raise argparse.ArgumentTypeError(f"must be a size in MB above 0 and at most {MAX_MB:,.0f} (got {text})")
    return value


def add_out_option(parser: argparse.ArgumentParser, *, help: str, required: bool = False) -> None:
    """``-o/--out FILE`` and ``--force``, the same on every command that writes a named file."""
    parser.add_argument("--out", "-o", metavar="FILE", required=required, help=help)
    parser.add_argument("--force", action="store_true",
                        help="replace FILE if it exists (never a file under spec/, truth/, logs/, reports/, "
                        "data/, evidence/, fixtures/ or archive/)")


def out_target(ws_root: Path, resolve: Callable[..., Path], raw: str, *, force: bool, field: str = "--out",
               protected: Iterable[Path] = (), check_exists: bool = True) -> Path:
    """Where a command may write the file the operator named, or a coded refusal.

    ``resolve`` is the workspace's CLI path resolver (relative to the current directory, kept in the
    workspace unless absolute). Refused: anything under the workspace's evidence and config folders
    and the ``protected`` files (e.g. the DB being read), with or without ``--force``; an existing
    file unless ``force``; a folder always.
    """
    target = resolve(raw, field=field)
    real = Path(target).resolve()  # a symlink named as the target counts as what it points at
    root = Path(ws_root).resolve()
    guarded = [root / name for name in PROTECTED_DIRS]
    if any(real == folder or folder in real.parents for folder in guarded) or \
            any(real == Path(p).resolve() for p in protected):
        raise TreasureError("OUT_PROTECTED", f"refusing to write {_shown(real, root)}: it is workspace evidence "
                            "or config, never an output target", field=field)
    if real.is_dir():
        raise TreasureError("OUT_EXISTS", f"{raw} is a folder; name a file", field=field,
                            hint="name a file to write, e.g. exports/run.jsonl")
    if check_exists and (real.exists() or Path(target).is_symlink()) and not force:
        raise TreasureError("OUT_EXISTS", f"{raw} already exists", field=field)
    return Path(target)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
