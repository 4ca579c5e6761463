"""Session-wide fixtures: one migrated database per kind, shared by the tests that need it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.brokers import delete_session_queues
from tests.databases import migrated_engine


@pytest.fixture(scope="session", autouse=True)
def broker_queues_deleted() -> Iterator[None]:
    """The session's queues on the brokers go at its end (see tests/brokers.py)."""
    yield
    delete_session_queues()


def _engine(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    with migrated_engine(kind, tmp_path_factory.mktemp(kind)) as engine:
        yield engine


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    yield from _engine("sqlite", tmp_path_factory)


@pytest.fixture(scope="session")
def postgresql_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    yield from _engine("postgresql", tmp_path_factory)


@pytest.fixture(scope="session")
def mariadb_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    yield from _engine("mariadb", tmp_path_factory)


@pytest.fixture(scope="session")
def mariadb_odbc_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """MariaDB through pyodbc and MariaDB Connector/ODBC (`mysql+pyodbc`)."""
    yield from _engine("mariadb-odbc", tmp_path_factory)


@pytest.fixture(scope="session")
def mssql_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """SQL Server, only with `TEST_MSSQL_URL` set (see tests/databases.py)."""
    yield from _engine("mssql", tmp_path_factory)


_FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def summary_lines(pytestconfig: pytest.Config) -> list[str]:
    """Lines to show in the terminal summary (figures such as generated case counts)."""
    return pytestconfig.stash.setdefault(_FIGURES, [])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.write_sep("=", "test figures")
        for line in lines:
            terminalreporter.write_line(line)
