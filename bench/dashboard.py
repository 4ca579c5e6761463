"""Dashboard speed on PostgreSQL with a large store: overview, jobs list, job detail and the
explanation, each answered 50 times (server time, p50/p95/max in ms), and the live feed's
SQL statements per round with 1 and with 50 open pages.

    .venv/bin/python bench/dashboard.py [--finished 1000000] [--pending 10000] [--requests 50]

It creates a database of its own on BENCH_DASHBOARD_PG (default: the local server, user
postgres), fills it with SQL (`INSERT ... SELECT generate_series`, copies of one real job and
its history), then calls the app in-process (httpx's ASGI transport, no network), and drops
the database at the end. Target (issue 11): p95 <= 150 ms for each page.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from domain.maintenance import HeartbeatJobs  # noqa: E402
from host.app import create_app  # noqa: E402
from host.settings import (  # noqa: E402
    ApiKey,
    AuthSettings,
    DatabaseSettings,
    JobsSettings,
    Scope,
    Settings,
)
from infrastructure.jobs.sql import migrate  # noqa: E402
from infrastructure.jobs.sql.backend import SqlBackend  # noqa: E402
from infrastructure.jobs.sql.database import create_engine  # noqa: E402

SERVER = os.environ.get(
    "BENCH_DASHBOARD_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
KEY = f"bench-{uuid.uuid4().hex}"
DAYS = 7



def sql_database(container: object) -> sa.Engine:
    """The SQLAlchemy engine of the service's SQL backend."""
    backend = container.backend()  # type: ignore[attr-defined]
    assert isinstance(backend, SqlBackend)
    return backend.database

def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    options = parser.parse_args()
    with database() as url:
        asyncio.run(run(url, options.finished, options.pending, options.requests))


class database:
    """A fresh database on the server, dropped on exit."""

    def __enter__(self) -> str:
        self.name = f"bench_dashboard_{uuid.uuid4().hex[:8]}"
        self.admin = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {self.name}"))
        url = sa.make_url(SERVER).set(database=self.name).render_as_string(hide_password=False)
        return url

    def __exit__(self, *exc: object) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
        self.admin.dispose()


def settings(url: str) -> Settings:
    key = ApiKey(name="bench", sha256=hashlib.sha256(KEY.encode()).hexdigest(), scope=Scope.ADMIN)
    return Settings(
        db=DatabaseSettings(url=url),
        jobs=JobsSettings(sample_every_minute=False),
        auth=AuthSettings(api_keys=[key]),
    )


async def run(url: str, finished: int, pending: int, requests: int) -> None:
    engine = create_engine(url)
    migrate.upgrade(engine)
    app = create_app(settings(url), roles=frozenset())
    async with app.router.lifespan_context(app):
        jobs = app.state.container.jobs()
        template = await jobs.enqueue(HeartbeatJobs.beat)
        started = time.perf_counter()
        await asyncio.to_thread(fill, engine, template, finished, pending)
        out(
            f"filled {finished:,} finished and {pending:,} pending jobs "
            f"in {time.perf_counter() - started:.0f} s"
        )
        await measure_pages(app, engine, requests, finished)
        await measure_counts(app)
        await measure_feed(app, engine)
    engine.dispose()


def fill(engine: sa.Engine, template: uuid.UUID, finished: int, pending: int) -> None:
    """Copies of the template job: `finished` succeeded over the last days (with their three
    history rows), `pending` enqueued; then VACUUM ANALYZE, as autovacuum would."""
    copy = """
        INSERT INTO jobs
        SELECT gen_random_uuid(), handler, queue, :state, payload,
               now() - make_interval(secs => g * :spread),
               now() - make_interval(secs => g * :spread),
               run_at, attempt, retry, timeout_seconds, NULL, NULL, parent_id, continue_on,
               batch_id, recurring_id, NULL, NULL, NULL, :progress, result, error_type,
               error_message, error_traceback, trace_context
        FROM jobs AS t, generate_series(1, :n) AS g WHERE t.id = :template
    """
    history = """
        INSERT INTO job_history (job_id, state, at, reason)
        SELECT j.id, s.state, j.state_at - make_interval(secs => s.back), s.state
        FROM jobs AS j,
             (VALUES ('enqueued', 2), ('processing', 1), ('succeeded', 0)) AS s(state, back)
        WHERE j.state = 'succeeded'
    """
    with engine.begin() as conn:
        spread = DAYS * 86400 / max(finished, 1)
        conn.execute(
            sa.text(copy),
            {
                "state": "succeeded",
                "n": finished,
                "spread": spread,
                "progress": 100,
                "template": template,
            },
        )
        conn.execute(sa.text(history))
        conn.execute(
            sa.text(copy),
            {
                "state": "enqueued",
                "n": pending,
                "spread": 0.01,
                "progress": 0,
                "template": template,
            },
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


async def measure_pages(app: object, engine: sa.Engine, requests: int, finished: int) -> None:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1234))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        signed = await client.post("/jobs/login", data={"api_key": KEY})
        assert signed.status_code == 303, signed.text
        with engine.connect() as conn:
            done = conn.scalar(
                sa.text(
                    "SELECT id FROM jobs WHERE state = 'succeeded' "
                    "ORDER BY state_at DESC OFFSET :middle LIMIT 1"
                ),
                {"middle": finished // 2},
            )
            waiting = conn.scalar(
                sa.text(
                    "SELECT id FROM jobs WHERE state = 'enqueued' ORDER BY state_at DESC LIMIT 1"
                )
            )
        pages = {
            "overview": "/jobs",
            "jobs list (succeeded, page 1)": "/jobs/list?state=succeeded",
            "jobs list (text filter)": "/jobs/list?state=enqueued&text=zzz-none",
            "job detail (succeeded)": f"/jobs/job/{done}",
            "job detail (enqueued)": f"/jobs/job/{waiting}",
            "explanation (enqueued, JSON)": f"/api/jobs/{waiting}/explanation",
        }
        out(
            f"\n{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
            f"   (n={requests}, target p95 <= 150)"
        )
        for name, path in pages.items():
            headers = {"X-API-Key": KEY} if path.startswith("/api") else {}
            times = await timed(client, path, headers, requests)
            p50, p95 = (
                statistics.median(times),
                statistics.quantiles(times, n=20, method="inclusive")[18],
            )
            out(f"{name:34} {p50:8.1f} {p95:8.1f} {max(times):8.1f}")


async def timed(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], count: int
) -> list[float]:
    """Milliseconds per request, `count` requests after a warm-up one."""
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return times


async def measure_counts(app: object) -> None:
    """The read the dashboard caches: counts by state and the last hour per minute."""
    admin = app.state.container.admin()  # type: ignore[attr-defined]
    times = []
    for _ in range(10):
        started = time.perf_counter()
        await admin.stats()
        times.append((time.perf_counter() - started) * 1000)
    out(
        f"{'counts by state, uncached (n=10)':34} {statistics.median(times):8.1f}"
        f" {'':>8} {max(times):8.1f}"
    )


async def measure_feed(app: object, engine: sa.Engine) -> None:
    """SELECT statements per feed round, once every page's first events are out, with 1 and
    with 50 open pages (half overviews, half job pages on 25 distinct jobs)."""
    dashboard = app.state.dashboard  # type: ignore[attr-defined]
    feed = dashboard.feed
    with engine.connect() as conn:
        ids = [
            str(i)
            for i in conn.scalars(sa.text("SELECT id FROM jobs WHERE state = 'enqueued' LIMIT 25"))
        ]
    out(f"\n{'open pages':>10} {'rounds':>7} {'SELECTs per round':>18}")
    for pages in (1, 50):
        jobs = [uuid.UUID(i) for i in ids][: (pages - 1) // 2 + (pages > 1)]
        watched: list[uuid.UUID | None] = [None, *jobs]
        targets = [watched[i % len(watched)] for i in range(pages)]
        async with streams(dashboard, targets):
            rounds, statements = await count_rounds(feed, sql_database(app.state.container), 10)
        out(f"{pages:>10} {rounds:>7} {statements / rounds:>18.1f}")


@asynccontextmanager
async def streams(dashboard: object, targets: list[uuid.UUID | None]) -> AsyncIterator[None]:
    from host.dashboard import pages

    async def consume(job_id: uuid.UUID | None) -> None:
        render = (
            (lambda s: pages._job_events(dashboard, job_id, s))
            if job_id
            else (lambda s: pages._overview(dashboard, s))
        )  # type: ignore[arg-type]
        async for _ in dashboard.feed.stream(job_id, render):  # type: ignore[attr-defined]
            pass

    tasks = [asyncio.create_task(consume(t)) for t in targets]
    await asyncio.sleep(0.5)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def count_rounds(feed: object, engine: sa.Engine, rounds: int) -> tuple[int, int]:
    seen = 0
    lock = threading.Lock()

    def count(*args: object) -> None:
        nonlocal seen
        if str(args[2]).lstrip().upper().startswith("SELECT"):
            with lock:
                seen += 1

    warm = feed.reads  # type: ignore[attr-defined]
    # The first rounds read each watched job in full; count the rounds after them.
    while feed.reads - warm < 3:  # type: ignore[attr-defined]  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    sa.event.listen(engine, "before_cursor_execute", count)
    start = feed.reads  # type: ignore[attr-defined]
    while feed.reads - start < rounds:  # type: ignore[attr-defined]  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    sa.event.remove(engine, "before_cursor_execute", count)
    return feed.reads - start, seen  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
