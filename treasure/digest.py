"""SHA-256 of files, streamed: the one way every module pins, locks and compares file bytes."""

from __future__ import annotations

import hashlib
import os
from typing import IO, Iterable

CHUNK = 1 << 20


def stream_sha256(handle: IO[bytes]) -> str:
    """Hex SHA-256 of what is left to read in ``handle`` (a file, an archive member), in chunks."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def files_sha256(paths: Iterable[str | os.PathLike[str]]) -> str:
    """Hex SHA-256 of the files' bytes one after the other (a log's parts as one stream)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file's exact bytes; raises OSError like ``open`` (callers map it)."""
    with open(path, "rb") as handle:
        return stream_sha256(handle)
