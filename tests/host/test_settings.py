"""The job tables' schema: `APP_DB__SCHEMA_NAME`, else `jobs` on SQL Server (none elsewhere),
derived once in the settings so `serve`, `migrate`, the workers and the store agree."""

from __future__ import annotations

import pytest

from host.container import create_container
from host.settings import DatabaseSettings, Settings
from infrastructure.jobs.sql.store import SQLAlchemyJobStore

MSSQL_URL = (
    "mssql+pyodbc://user:secret@127.0.0.1:1433/jobsdb"
    "?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes"
)


@pytest.fixture(autouse=True)
def no_app_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_DB__URL", raising=False)
    monkeypatch.delenv("APP_DB__SCHEMA_NAME", raising=False)


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        (MSSQL_URL, "jobs"),
        ("mssql+pyodbc://user:secret@dsn", "jobs"),
        ("sqlite:///./data/jobs.db", None),
        ("postgresql+psycopg://postgres@127.0.0.1/db", None),
        ("mysql+pyodbc://root@127.0.0.1/db?driver=MariaDB+Unicode&port=3306", None),
        ("not a url", None),
    ],
)
def test_default_schema_by_database(url: str, schema: str | None) -> None:
    assert DatabaseSettings(url=url).schema_name == schema


def test_the_environment_sets_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DB__URL", MSSQL_URL)
    assert Settings().db.schema_name == "jobs"
    monkeypatch.setenv("APP_DB__SCHEMA_NAME", "dbo")
    assert Settings().db.schema_name == "dbo"


def test_the_store_gets_the_default_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """The container builds the store on `jobs.*` tables (nothing connects)."""
    monkeypatch.setenv("APP_DB__URL", MSSQL_URL)
    container = create_container(Settings())
    try:
        store = container.job_store()
        assert isinstance(store, SQLAlchemyJobStore)
        assert {table.schema for table in store.metadata.tables.values()} == {"jobs"}
        assert "jobs.jobs" in store.metadata.tables
    finally:
        container.shutdown_resources()
