"""The packaged defaults and the repository's root workspace: one generated from the other.

``treasure init`` copies the defaults shipped inside the package (``treasure/defaults/``: spec/,
truth/, fixtures/ as real files, read with importlib.resources). The repository root is itself a
workspace whose spec/, truth/ and fixtures/ are where developers edit, approve and regenerate.
So the root is the source and the package copy is generated from it:
``python -m treasure.packaged --sync`` copies the tracked files over; ``--check`` (and
tests/test_packaged_defaults.py, which CI runs) fails when the two differ. Only files listed by
:data:`PARTS` travel, so scratch output such as ``fixtures/regressions/`` (from ``treasure hunt``)
never ships in the wheel or in a new workspace.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from treasure.digest import file_sha256

#: What a new workspace gets: (folder, patterns of files under it that ship).
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spec", ("*.json", "*.lock", "workspace.version")),
    ("truth", ("*.json", "events/*.json")),
    ("fixtures", ("data/*.csv", "golden/*.json", "live/*.jsonl", "live/*.json")),
)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def packaged_root() -> Path:
    return Path(__file__).resolve().parent / "defaults"


def shipped_files(root: Path) -> list[str]:
    """Relative paths of the default files under ``root``, sorted."""
    out: set[str] = set()
    for folder, patterns in PARTS:
        for pattern in patterns:
            out.update(str(p.relative_to(root)) for p in sorted((root / folder).glob(pattern)) if p.is_file())
    return sorted(out)


def differences(source: Path | None = None, target: Path | None = None) -> list[str]:
    """Human-readable differences between the root workspace and the packaged copy."""
    source = source or repo_root()
    target = target or packaged_root()
    want, have = shipped_files(source), shipped_files(target)
    out = [f"missing from the package: {p}" for p in sorted(set(want) - set(have))]
    out += [f"only in the package: {p}" for p in sorted(set(have) - set(want))]
    out += [f"differs: {p}" for p in sorted(set(want) & set(have))
            if file_sha256(source / p) != file_sha256(target / p)]
    return out


def sync(source: Path | None = None, target: Path | None = None) -> list[str]:
    """Make the packaged copy equal the root workspace's default files; return what changed."""
    source = source or repo_root()
    target = target or packaged_root()
    changes = differences(source, target)
    if target.exists():
        shutil.rmtree(target)
    for rel in shipped_files(source):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, target / rel)
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m treasure.packaged", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sync", action="store_true", help="copy the root workspace's defaults into the package")
    parser.add_argument("--check", action="store_true", help="exit 2 if they differ (the default)")
    args = parser.parse_args(argv)
    if args.sync:
        for line in sync():
            print(line)
        return 0
    diffs = differences()
    for line in diffs:
        print(line)
    return 2 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
