"""Migrations: the schema they build matches the tables the store uses, and several processes
migrating at once are safe."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from infrastructure.jobs.sql import migrate
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.tables import build_metadata
from tests.databases import server_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'jobs.db'}"
        return
    with server_database(request.param) as url:
        yield url


def test_migrations_build_exactly_the_store_tables(empty_database: str) -> None:
    engine = create_engine(empty_database)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), build_metadata())
    engine.dispose()
    assert differences == []


def test_three_concurrent_migrates_all_succeed_and_migrate_once(empty_database: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "APP_DB__URL": empty_database,
        "APP_LOG_LEVEL": "WARNING",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "host", "migrate"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    engine = create_engine(empty_database)
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert [row[0] for row in versions] == [migrate.head_revision()]
    assert migrate.is_at_head(engine)
    engine.dispose()


def test_schema_not_at_head_before_migrating(empty_database: str) -> None:
    engine = create_engine(empty_database)
    assert not migrate.is_at_head(engine)
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine)
    engine.dispose()
