"""A recurring row this server cannot read or fire does not stop the scheduler's round."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.databases import migrated_engine
from tests.integration.handlers import Notes

START = dt.datetime(2026, 1, 5, 9, 0, 30, tzinfo=dt.UTC)
# A write that fails for one recurring job only (not a uniqueness conflict: those mean "another
# replica fired it first")
POISON_TICK = """
CREATE TRIGGER poison_tick BEFORE INSERT ON recurring_ticks
WHEN NEW.recurring_id = 'a-poison-tick'
BEGIN SELECT json('{ this tick cannot be written'); END
"""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    with migrated_engine("sqlite", tmp_path) as engine:
        yield engine


async def test_unreadable_and_failing_recurring_jobs_do_not_stop_the_others(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # Given four minutely jobs: a zone this server lacks, a cron its library refuses, a tick
    # write that fails, and a healthy one due last
    registry = HandlerRegistry()
    registry.register(Notes.write)
    store = SQLAlchemyJobStore(engine)
    clock = FakeClock(START)
    jobs = EngineJobService(store, registry, clock)
    ids = ["a-unknown-zone", "a-refused-cron", "a-poison-tick", "z-healthy"]
    for recurring_id in ids:
        await jobs.add_or_update_recurring(recurring_id, "* * * * *", Notes.write, recurring_id)
    with engine.begin() as connection:
        recurring = sa.table("recurring_jobs", sa.column("id"), sa.column("cron"))
        connection.execute(
            sa.text("UPDATE recurring_jobs SET timezone = 'Mars/Olympus' WHERE id = :id"),
            {"id": "a-unknown-zone"},
        )
        connection.execute(
            recurring.update().where(recurring.c.id == "a-refused-cron").values(cron="H * * * *")
        )
        connection.execute(
            sa.text("UPDATE recurring_jobs SET next_run_at = :due WHERE id != 'z-healthy'"),
            {"due": "2026-01-05 09:00:00.000000"},
        )
        connection.exec_driver_sql(POISON_TICK)
    scheduler = Scheduler(store, clock)

    # When two rounds run, a minute apart
    clock.advance(dt.timedelta(seconds=40))
    fired_first = await scheduler.tick()
    clock.advance(dt.timedelta(minutes=1))
    fired_second = await scheduler.tick()

    # Then the healthy job fired both times, the others are untouched and logged once each
    assert (fired_first, fired_second) == (1, 1)
    healthy = await store.get_recurring("z-healthy")
    assert healthy is not None and healthy.last_run_at == dt.datetime(
        2026, 1, 5, 9, 2, tzinfo=dt.UTC
    )
    with engine.connect() as connection:
        stuck = connection.execute(
            sa.text("SELECT id, next_run_at FROM recurring_jobs WHERE id != 'z-healthy'")
        ).all()
    assert {row[0] for row in stuck} == set(ids[:3])
    assert {str(row[1]).startswith("2026-01-05 09:00:00") for row in stuck} == {True}
    flagged = [r for r in caplog.records if getattr(r, "recurring_id", None) in ids[:3]]
    assert sorted((r.recurring_id, r.action) for r in flagged) == [  # type: ignore[attr-defined]
        ("a-poison-tick", "recurring_fire_failed"),
        ("a-refused-cron", "recurring_fire_failed"),
        ("a-unknown-zone", "recurring_unloadable"),
    ]
    assert all(r.levelno == logging.ERROR for r in flagged)
