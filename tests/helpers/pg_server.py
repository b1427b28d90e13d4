"""A throwaway PostgreSQL server for the tests and the benchmark: the Debian ``postgresql`` binaries,
``initdb`` in a temporary folder, one unix socket, no TCP port, torn down afterwards.

Root cannot run ``postgres``, so as root the server runs as the ``postgres`` user (else ``nobody``)
through ``setpriv``, which execs in place: the process we hold is the postmaster itself.

``TREASURE_TEST_PG_URL=postgresql://...`` uses an existing server instead (each test still gets
its own fresh database on it). Without the binaries the tests FAIL naming the apt package; only
``TREASURE_ALLOW_NO_PG=1`` (a developer without root) turns that into a skip.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

APT_PACKAGE = "postgresql"
_names = itertools.count()


def find_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PgServer:
    """``with PgServer() as server: server.url`` (a superuser ``treasure`` with trust auth)."""

    def __init__(self, *, fsync: bool = False) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise FileNotFoundError(f"PostgreSQL server binaries (initdb, postgres) not found: install the Debian "
                                    f"package: apt-get install -y {APT_PACKAGE}")
        self.bindir = bindir
        self.fsync = fsync
        self.root = Path(tempfile.mkdtemp(prefix="treasure-pg-"))
        self.data = self.root / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"postgresql:///postgres?host={self.root}&user=treasure"

    def _as_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = pwd.getpwnam("nobody")
        os.chown(self.root, user.pw_uid, user.pw_gid)
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]

    def start(self) -> "PgServer":
        prefix = self._as_user()
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        subprocess.run([*prefix, str(self.bindir / "initdb"), "-D", str(self.data), "-U", "treasure", "-A", "trust",
                        "-E", "UTF8", "--locale=C", "--no-sync"], check=True, capture_output=True, env=env)
        log = open(self.root / "server.log", "wb")
        self.proc = subprocess.Popen(
            [*prefix, str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.root), "-c",
             "listen_addresses=", "-c", f"fsync={'on' if self.fsync else 'off'}", "-c", "max_connections=60",
             "-c", "shared_buffers=64MB"], stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres did not start: {(self.root / 'server.log').read_text()[-2000:]}")
                time.sleep(0.1)

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        return create_database(self.url)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PgServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_database(url: str) -> str:
    """``CREATE DATABASE`` a fresh one on the server of ``url``; return its URL."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"treasure_test_{os.getpid()}_{next(_names)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                     .encode())
    params = conninfo_to_dict(url)
    host, user = params.get("host"), params.get("user")
    if host and str(host).startswith("/"):
        return f"postgresql:///{name}?host={host}" + (f"&user={user}" if user else "")
    return make_conninfo(url, dbname=name) if "://" not in url else _with_dbname(url, name)


def _with_dbname(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def server_or_fail() -> Iterator[str]:
    """Generator behind the ``pg_server_url`` fixture: yields a server's admin URL."""
    given = os.environ.get("TREASURE_TEST_PG_URL")
    if given:
        yield given
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[dev]' (the postgres extra)")
    if find_bindir() is None:
        message = (f"PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb): "
                   f"apt-get install -y {APT_PACKAGE}")
        if os.environ.get("TREASURE_ALLOW_NO_PG") == "1":
            pytest.skip(message + " (skipped: TREASURE_ALLOW_NO_PG=1)")
        pytest.fail(message + "; set TREASURE_ALLOW_NO_PG=1 to skip these tests on a machine without root")
    with PgServer() as server:
        yield server.url
