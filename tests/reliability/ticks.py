"""What the recurring-tick scenarios (R3, R3b) share: the `* * * * * *` recurring job, the
`serve` processes that run it and the tick oracle (exactly one job per fire time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import httpx
import sqlalchemy as sa

from application.jobs import Cron
from domain.maintenance import HeartbeatJobs
from host.catalog import register_handlers
from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.reliability.common import HISTORY, JOBS, percentile
from tests.reliability.conftest import Database, Figures
from tests.reliability.processes import Child

RECURRING_ID = "reliability-every-second"
TICK_PREFIX = "recurring tick "


async def declare_every_second(engine: sa.Engine) -> None:
    registry = HandlerRegistry()
    register_handlers(registry)
    store = SQLAlchemyJobStore(engine)
    jobs = EngineJobService(store, registry, SystemClock())
    await jobs.add_or_update_recurring(RECURRING_ID, Cron("* * * * * *"), HeartbeatJobs.beat)
    await store.close()


def serve_env(database: Database, directory: Path) -> dict[str, str]:
    return {
        "APP_DB__URL": database.url,
        "APP_JOBS__SCHEDULER_POLL_SECONDS": "0.2",
        "APP_JOBS__POLL_SECONDS": "0.1",
        "APP_JOBS__SAMPLE_EVERY_MINUTE": "false",
        "APP_JOBS__SHUTDOWN_GRACE_SECONDS": "2",
        "APP_TEMP_DIRECTORY": str(directory / "tmp"),
        "APP_LOG_LEVEL": "WARNING",
    }


async def all_ready(servers: list[tuple[Child, int]], *, within: float) -> bool:
    """Whether every server answers 200 on /health/ready within `within` seconds."""
    deadline = time.monotonic() + within
    pending = list(servers)
    async with httpx.AsyncClient(timeout=2.0) as client:
        while pending and time.monotonic() < deadline:
            still = []
            for child, port in pending:
                if not child.alive:
                    return False
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/health/ready")
                    if response.status_code != 200:
                        still.append((child, port))
                except httpx.HTTPError:
                    still.append((child, port))
            pending = still
            if pending:
                await asyncio.sleep(0.2)
    return not pending


def check_ticks(
    engine: sa.Engine, start: float, end: float, figures: Figures, *, at_least: int
) -> list[str]:
    """Problems with the ticks in [start, end] (at least `at_least` of them); reports the
    figures."""
    created = tick_jobs(engine)
    per_tick = Counter(fire_at for fire_at, _ in created)
    window = range(math.ceil(start), math.floor(end) + 1)
    duplicates = {t: per_tick[t] for t in window if per_tick[t] > 1}
    missing = [t for t in window if per_tick[t] == 0]
    lags = [created_at - fire_at for fire_at, created_at in created]
    early = [lag for lag in lags if lag < 0]
    in_window = [lag for (fire_at, _), lag in zip(created, lags, strict=True) if fire_at in window]

    figures.add("ticks_checked", len(window))
    figures.add("tick_jobs_total", len(created))
    figures.add("duplicates", sum(count - 1 for count in duplicates.values()))
    figures.add("missing", len(missing))
    figures.add("created_before_fire_time", len(early))
    if in_window:
        figures.add("tick_lag_p50_s", percentile(in_window, 50))
        figures.add("tick_lag_p99_s", percentile(in_window, 99))
        figures.add("tick_lag_max_s", max(in_window))

    problems = []
    if len(window) < at_least:
        problems.append(f"only {len(window)} ticks checked")
    if duplicates:
        problems.append(f"duplicate ticks {stamps(duplicates)}")
    if missing:
        problems.append(f"missing ticks {stamps(missing)}")
    if early:
        problems.append(f"{len(early)} job(s) created before their fire time")
    return problems


def tick_jobs(engine: sa.Engine) -> list[tuple[int, float]]:
    """(fire time, created_at) of every job the recurring job created at a tick, in epoch
    seconds; the fire time comes from the job's first history entry."""
    first = (
        sa.select(HISTORY.c.job_id, sa.func.min(HISTORY.c.id).label("first_id"))
        .group_by(HISTORY.c.job_id)
        .subquery()
    )
    query = (
        sa.select(JOBS.c.created_at, HISTORY.c.reason)
        .join(first, first.c.job_id == JOBS.c.id)
        .join(HISTORY, HISTORY.c.id == first.c.first_id)
        .where(JOBS.c.recurring_id == RECURRING_ID)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    created = []
    for created_at, reason in rows:
        assert reason.startswith(TICK_PREFIX), reason
        fire_at = dt.datetime.strptime(reason.removeprefix(TICK_PREFIX), "%Y-%m-%dT%H:%M:%SZ")
        created_at_value: dt.datetime = created_at
        created.append(
            (int(fire_at.replace(tzinfo=dt.UTC).timestamp()), created_at_value.timestamp())
        )
    return created


def stamps(ticks: Iterable[int]) -> list[str]:
    return [dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S") for t in ticks][:20]
