"""Database servers of a test's own, on 127.0.0.1 and a free port, so a test may stop and start
them without disturbing anyone else's tests on the shared servers. Whatever is started is
stopped (immediately) and its files removed when the context exits."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from tests.reliability.processes import free_port

POSTGRES_USER = "postgres"
MARIADB_USER = "mysql"
START_SECONDS = 60.0


class PrivateServer(Protocol):
    """A database server of the test's own."""

    port: int

    @property
    def admin_url(self) -> str: ...

    def url(self, database: str) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def create_database(server: PrivateServer, name: str) -> None:
    admin = sa.create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()


def terminate_connections(server: PrivateServer) -> int:
    """Cut every other client's connection (`pg_terminate_backend`, MariaDB's `KILL`); how
    many were cut."""
    admin = sa.create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if admin.dialect.name == "postgresql":
                query = sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
                return int(connection.scalar(query) or 0)
            ids = list(
                connection.scalars(
                    sa.text(
                        "SELECT id FROM information_schema.processlist"
                        " WHERE id <> CONNECTION_ID() AND command <> 'Daemon'"
                        " AND user <> 'system user'"
                    )
                )
            )
            for connection_id in ids:
                try:
                    connection.execute(sa.text(f"KILL CONNECTION {int(connection_id)}"))
                except sa.exc.DBAPIError:  # gone meanwhile
                    pass
            return len(ids)
    finally:
        admin.dispose()


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


@dataclass
class PrivateMariaDB:
    """A mariadbd on `directory`'s data, listening on 127.0.0.1:`port` (root, no password)."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def admin_url(self) -> str:
        return self.url("mysql")

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--datadir={self.data}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.directory / 'mysqld.sock'}",
                f"--pid-file={self.directory / 'mysqld.pid'}",
                f"--log-error={self.directory / 'error.log'}",
                "--skip-name-resolve",
                *([f"--user={MARIADB_USER}"] if os.geteuid() == 0 else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_until_accepting()

    def stop(self) -> None:
        """A shutdown (as `mysqladmin shutdown` does), waited for."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=START_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def _wait_until_accepting(self) -> None:
        engine = sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool)
        deadline = time.monotonic() + START_SECONDS
        try:
            while True:
                try:
                    with engine.connect():
                        return
                except sa.exc.DBAPIError:
                    if (
                        time.monotonic() > deadline
                        or self.process is None
                        or (self.process.poll() is not None)
                    ):
                        raise
                    time.sleep(0.2)
        finally:
            engine.dispose()


@contextmanager
def private_mariadb() -> Iterator[PrivateMariaDB]:
    """A new mariadbd, started; stopped and its files removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="private-mariadb-"))
    server = PrivateMariaDB(directory, free_port())
    try:
        if os.geteuid() == 0:
            shutil.chown(directory, MARIADB_USER, MARIADB_USER)
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={server.data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *([f"--user={MARIADB_USER}"] if os.geteuid() == 0 else []),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
