"""Real databases for tests: SQLite files, and PostgreSQL and MariaDB servers on 127.0.0.1
(MariaDB twice: through PyMySQL, and through pyodbc with MariaDB Connector/ODBC, the driver
path SQL Server uses).

Each test session gets its own database on each server (dropped at the end); each test starts
from empty tables. A server that cannot be reached skips its tests locally and fails them when
`CI` is set, as a missing service is a failure in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa

from infrastructure.jobs.sql import migrate
from infrastructure.jobs.sql.database import create_engine
from infrastructure.persistence.sql import migrate as business_migrate

SERVER_URLS = {
    "postgresql": os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
    # The MariaDB ODBC driver ignores a port in the host part: it goes in the query string.
    "mariadb-odbc": os.environ.get(
        "TEST_MARIADB_ODBC_URL",
        "mysql+pyodbc://root@127.0.0.1/mysql?driver=MariaDB+Unicode&port=3306",
    ),
}
if os.environ.get("TEST_MSSQL_URL"):
    # Opt-in (no SQL Server runs on our machines; see docs/sql-server.md): a login that may
    # create databases, e.g. mssql+pyodbc://sa:...@127.0.0.1:1433/master?driver=ODBC+Driver+18+
    # for+SQL+Server&TrustServerCertificate=yes. The contract suite then runs on it too.
    SERVER_URLS["mssql"] = os.environ["TEST_MSSQL_URL"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(kind: str, error: Exception) -> NoReturn:
    shown = sa.make_url(SERVER_URLS[kind]).render_as_string(hide_password=True)
    reason = f"{kind} is not reachable at {shown}: {error}"
    if IN_CI:
        pytest.fail(f"{reason} (CI needs every service)")
    pytest.skip(reason)


@contextmanager
def server_database(kind: str) -> Iterator[str]:
    """Create a database of its own on the server `kind`; yield its URL; drop it after."""
    admin_url = sa.make_url(SERVER_URLS[kind])
    name = f"jobs_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    except ImportError as error:  # pyodbc without unixODBC's libodbc
        unavailable(kind, error)
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
            if kind == "mssql":  # the isolation docs/sql-server.md recommends
                connection.execute(sa.text(f"ALTER DATABASE {name} SET READ_COMMITTED_SNAPSHOT ON"))
    except sa.exc.DBAPIError as error:  # pyodbc: also a missing ODBC driver
        admin.dispose()
        unavailable(kind, error)
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            if kind == "postgresql":
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            elif kind == "mssql":
                connection.execute(
                    sa.text(f"ALTER DATABASE {name} SET SINGLE_USER WITH ROLLBACK IMMEDIATE")
                )
                connection.execute(sa.text(f"DROP DATABASE {name}"))
            else:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@contextmanager
def migrated_engine(kind: str, tmp_dir: Path) -> Iterator[sa.Engine]:
    """An engine on a fresh database of `kind` (sqlite, or a key of `SERVER_URLS`), with the
    job store's and the business tables migrated, as the service has them."""
    if kind == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_dir / 'jobs.db'}")
        _migrate(engine)
        yield engine
        engine.dispose()
        return
    with server_database(kind) as url:
        engine = create_engine(url)
        _migrate(engine)
        yield engine
        engine.dispose()


def _migrate(engine: sa.Engine) -> None:
    migrate.upgrade(engine)
    business_migrate.upgrade(engine)


def empty_tables(engine: sa.Engine, metadata: sa.MetaData) -> None:
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
