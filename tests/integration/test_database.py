"""The engines the job store creates: what their errors show, and how SQLite transactions
begin."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from infrastructure.jobs.sql.database import create_engine

SECRET = "payload-secret-3f9c"


def test_a_failed_statement_never_quotes_its_parameters(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        with pytest.raises(sa.exc.DBAPIError) as failed, engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO no_such_table VALUES (:value)"), {"value": SECRET})
    finally:
        engine.dispose()

    assert "no_such_table" in str(failed.value)
    assert SECRET not in str(failed.value)
