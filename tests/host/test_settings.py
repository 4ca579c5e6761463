"""The job tables' schema: `APP_DB__SCHEMA_NAME`, else `jobs` on SQL Server (none elsewhere),
derived once, by the SQL backend, so `serve`, `migrate`, the workers and the store agree."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from host.container import create_container
from host.settings import JobsSettings, Settings
from infrastructure.jobs.sql.database import default_schema
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.engine_loop import engine_of

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
    assert default_schema(url) == schema


@pytest.mark.parametrize(("configured", "schema"), [(None, "jobs"), ("dbo", "dbo")])
async def test_the_store_gets_the_configured_or_default_schema(
    monkeypatch: pytest.MonkeyPatch, configured: str | None, schema: str
) -> None:
    """The container builds the store on `<schema>.*` tables (nothing connects)."""
    monkeypatch.setenv("APP_DB__URL", MSSQL_URL)
    if configured is not None:
        monkeypatch.setenv("APP_DB__SCHEMA_NAME", configured)
    backend = engine_of(create_container(Settings()))
    try:
        store = backend.store
        assert isinstance(store, SQLAlchemyJobStore)
        assert {table.schema for table in store.metadata.tables.values()} == {schema}
        assert f"{schema}.jobs" in store.metadata.tables
    finally:
        await backend.close()


def test_business_timezone_takes_a_windows_id_and_keeps_its_iana_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_BUSINESS_TIMEZONE", "Turkey Standard Time")

    assert Settings().business_timezone == "Europe/Istanbul"


def test_unknown_business_timezone_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_BUSINESS_TIMEZONE", "Mars Standard Time")

    with pytest.raises(ValueError, match="unknown time zone"):
        Settings()


def test_queue_weights_must_name_served_queues() -> None:
    with pytest.raises(ValidationError, match="not served: urgent"):
        JobsSettings(queues=["critical", "low"], queue_weights={"critical": 3, "urgent": 2})
    assert JobsSettings(queue_weights={"critical": 3, "low": 1}).queue_weights["critical"] == 3
