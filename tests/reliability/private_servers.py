"""Database servers of a test's own, on 127.0.0.1 and a free port, so a test may stop and start
them without disturbing anyone else's tests on the shared servers. Whatever is started is
stopped (immediately) and its files removed when the context exits."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.processes import free_port

POSTGRES_USER = "postgres"


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no PostgreSQL {name} under /usr/lib/postgresql")
    return found[-1]


def _as_postgres(*args: str) -> list[str]:
    """`args` run as the postgres user when we are root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", POSTGRES_USER, "--", *args] if os.geteuid() == 0 else list(args)


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster in `directory` listening on 127.0.0.1:`port` (trust auth)."""

    directory: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._pg_ctl("start", "-w", "-t", "60", "-o", options, "-l", str(self.log))

    def stop(self) -> None:
        """An immediate stop, as a crash would be: connections are cut, nothing is flushed."""
        self._pg_ctl("stop", "-m", "immediate", "-w")

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(_postgres_bin("pg_ctl"), "-D", str(self.data), *args),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=90,
        )


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A new cluster, started; stopped and removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="private-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(directory, POSTGRES_USER, POSTGRES_USER)
        server = PrivatePostgres(directory, free_port())
        subprocess.run(
            _as_postgres(
                _postgres_bin("initdb"),
                "-D",
                str(server.data),
                "-U",
                POSTGRES_USER,
                "-A",
                "trust",
                "--no-sync",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        server.start()
        try:
            yield server
        finally:
            subprocess.run(
                _as_postgres(
                    _postgres_bin("pg_ctl"), "-D", str(server.data), "stop", "-m", "immediate"
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
