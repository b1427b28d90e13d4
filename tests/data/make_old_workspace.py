"""Make tests/data/workspace_ca58ece.tar.gz: a workspace as the previous release made it.

Provenance: the previous release is git commit ca58ece ("One in-memory EventSink ..."); its
``treasure init`` copied the packaged spec/, truth/ and fixtures/ of that commit. This script
takes those folders from ``git archive ca58ece`` (run it once, in a clone that has the history),
leaving out the files that did not change since and are large: the dataset
fixtures/data/default_bars.csv and the recorded live sessions fixtures/live/*.jsonl. The test
(tests/test_migrate.py) puts those back from the current package after checking their SHA-256
against the old SSOT's pin and treasure.migrate's table of the previous release's files, so the
rebuilt workspace is byte for byte what ca58ece's ``treasure init`` wrote. The tarball's headers
are normalised (mtime 0, mode 0644, sorted), so re-running the script gives the same bytes.

    .venv/bin/python tests/data/make_old_workspace.py
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

COMMIT = "ca58ece"
HERE = Path(__file__).resolve().parent
OUT = HERE / "workspace_ca58ece.tar.gz"


def _keep(name: str) -> bool:
    if name.startswith("fixtures/data/"):
        return False
    return not (name.startswith("fixtures/live/") and name.endswith(".jsonl"))


def main() -> None:
    raw = subprocess.run(["git", "archive", "--format=tar", COMMIT, "spec", "truth", "fixtures"],
                         cwd=HERE.parents[1], check=True, capture_output=True).stdout
    members: list[tuple[str, bytes]] = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as source:
        for info in source.getmembers():
            if info.isfile() and _keep(info.name):
                handle = source.extractfile(info)
                assert handle is not None
                members.append((info.name, handle.read()))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in sorted(members):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    OUT.write_bytes(buffer.getvalue())
    print(f"{OUT.name}: {len(members)} files, {len(buffer.getvalue())} bytes")


if __name__ == "__main__":
    main()
