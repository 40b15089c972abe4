"""A throwaway PostgreSQL server on loopback, from the machine's own PostgreSQL binaries.

``PROXIMA_TEST_POSTGRES`` (an SQLAlchemy URL of an empty database) is used instead when set.
Running as root, the server runs as the ``postgres`` system user, as PostgreSQL requires.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


def server_binaries() -> str | None:
    """The directory holding ``initdb`` and ``postgres``, if PostgreSQL is installed."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_postgres() -> Iterator[str]:
    """Start a server in a new temporary directory and yield a ``postgresql+psycopg://`` URL.

    The directory is made directly under the system's temporary directory (pytest's own are
    closed to other users, and the server may run as ``postgres``) and removed afterwards.
    """
    given = os.environ.get("PROXIMA_TEST_POSTGRES")
    if given:
        yield given
        return
    bindir = server_binaries()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb, postgres) on this machine")
    workdir = Path(tempfile.mkdtemp(prefix="proxima-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(workdir, "postgres")
    data = workdir / "data"
    init = subprocess.run(
        [*as_user, f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "proxima", "--no-sync"],
        check=False,
        capture_output=True,
    )
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr.decode(errors='replace').strip()}")
    port = _free_port()
    server = subprocess.Popen(
        [*as_user, f"{bindir}/postgres", "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(workdir), "-c", "fsync=off"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the PostgreSQL server did not start")
            time.sleep(0.05)
        ready = subprocess.run(
            [f"{bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(port), "-t", "30"],
            check=False,
            capture_output=True,
        )
        if ready.returncode != 0:
            raise RuntimeError(f"the PostgreSQL server is not ready: {ready.stdout.decode().strip()}")
        yield f"postgresql+psycopg://proxima@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
