"""What the reliability tests share: test timings, worker settings, bounded waits and reads of
the job tables."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import sqlalchemy as sa

from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.dramatiq.outbox import OutboxStore
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from infrastructure.jobs.sql.tables import build_metadata
from tests.reliability.handlers import build_registry

LEASE = 4.0
HEARTBEAT = 1.0
WATCHDOG = 1.0
POLL = 0.1
SERVER_TIMEOUT = 6.0
BROKER_URL = "RELIABILITY_BROKER_URL"
"""Set (with `RELIABILITY_QUEUE_PREFIX`), worker processes run on the dramatiq backend."""

TABLES = build_metadata()
JOBS = TABLES.tables["jobs"]
HISTORY = TABLES.tables["job_history"]
SERVERS = TABLES.tables["servers"]


def worker_env(url: str, **overrides: object) -> dict[str, str]:
    """Environment of `worker_process` with the test timings; keys are lower-case suffixes
    (`concurrency=10` sets RELIABILITY_CONCURRENCY)."""
    settings: dict[str, object] = {
        "db_url": url,
        "queues": "default",
        "concurrency": 4,
        "lease": LEASE,
        "heartbeat": HEARTBEAT,
        "poll": POLL,
        "grace": 4.0,
        "watchdog": WATCHDOG,
        "server_timeout": SERVER_TIMEOUT,
        "parent_pid": os.getpid(),
        **overrides,
    }
    return {f"RELIABILITY_{key.upper()}": str(value) for key, value in settings.items()}


def seed_from_environment() -> int:
    """`RELIABILITY_SEED` if set (to replay a run's random choices), else a new random seed."""
    given = os.environ.get("RELIABILITY_SEED")
    return int(given) if given else random.randrange(1_000_000)


def job_service(engine: sa.Engine) -> tuple[EngineJobService, SQLAlchemyJobStore]:
    """A client with the witness handlers on the test's engine (writing the outbox when the
    workers are on the dramatiq backend: `RELIABILITY_BROKER_URL` set)."""
    store = OutboxStore(engine) if BROKER_URL in os.environ else SQLAlchemyJobStore(engine)
    return EngineJobService(store, build_registry(), SystemClock()), store


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.1
) -> bool:
    """Poll `condition` until it holds (True) or `within` seconds pass (False)."""
    deadline = time.monotonic() + within
    while True:
        if await condition():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


def in_thread(read: Callable[[], object]) -> Callable[[], Awaitable[bool]]:
    """A blocking predicate run in a thread (so the event loop's other tasks go on)."""

    async def condition() -> bool:
        return bool(await asyncio.to_thread(read))

    return condition


def job_states(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as connection:
        query = sa.select(JOBS.c.state, sa.func.count()).group_by(JOBS.c.state)
        return Counter({str(state): int(count) for state, count in connection.execute(query)})


def server_ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.scalars(sa.select(SERVERS.c.id)))


def processing_on(engine: sa.Engine, server_id: str) -> int:
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(
            JOBS.c.state == "processing", JOBS.c.server_id == server_id
        )
        return int(connection.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of a job's history."""

    state: str
    reason: str
    at: float
    data: dict[str, object]


def histories(engine: sa.Engine) -> dict[str, list[Entry]]:
    """Every job's history, oldest first, by job id (as a string)."""
    result: defaultdict[str, list[Entry]] = defaultdict(list)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                HISTORY.c.job_id, HISTORY.c.state, HISTORY.c.reason, HISTORY.c.at, HISTORY.c.data
            ).order_by(HISTORY.c.id)
        ).all()
    for job_id, state, reason, at, data in rows:
        at_value: dt.datetime = at
        result[str(uuid.UUID(str(job_id)))].append(
            Entry(state, reason, at_value.timestamp(), json.loads(data) if data else {})
        )
    return dict(result)


def job_rows(engine: sa.Engine) -> dict[str, sa.RowMapping]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(JOBS)).mappings().all()
    return {str(row["id"]): row for row in rows}


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0..100) of `values` (not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
