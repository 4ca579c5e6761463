"""A worker process for the reliability tests: a Worker and a Watchdog on the SQL store, with
the witness handlers, until SIGTERM (or SIGINT); then a graceful stop and exit code 0.

Run as `python tests/reliability/worker_process.py` (or `-m tests.reliability.worker_process`)
with `PYTHONPATH=<repo>/src:<repo>` and these environment variables:

    RELIABILITY_DB_URL          SQLAlchemy URL of the job database (required)
    RELIABILITY_WITNESS_URL     where witness rows are written, default RELIABILITY_DB_URL
                                (the same database by another way: one the test does not
                                disturb, so its measuring instrument never fails)
    RELIABILITY_QUEUES          comma-separated queues, default "default"
    RELIABILITY_CONCURRENCY     jobs at once, default 4
    RELIABILITY_LEASE           lease seconds, default 4
    RELIABILITY_HEARTBEAT       heartbeat seconds, default 1
    RELIABILITY_POLL            poll seconds, default 0.1
    RELIABILITY_GRACE           shutdown grace seconds, default 4
    RELIABILITY_WATCHDOG        watchdog interval seconds, default 1
    RELIABILITY_SERVER_TIMEOUT  dead-server timeout seconds, default 6
    RELIABILITY_PARENT_PID      stop (as on SIGTERM) once this process is no longer the parent,
                                so a test runner that dies leaves no worker behind
    RELIABILITY_BROKER_URL      if set, run on the dramatiq backend with this broker (the worker
                                then takes its jobs from the broker and runs a relay too)
    RELIABILITY_QUEUE_PREFIX    its queue-name prefix on the broker
    RELIABILITY_REDELIVER       its REDELIVER_SECONDS, default 5

The server id is `server_id_of(pid)`, so the test knows it from the process id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import sys
from dataclasses import dataclass

from infrastructure.jobs.backend import BackendContext, DatabaseConfig
from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.dramatiq.backend import DramatiqBackend
from infrastructure.jobs.engine.execution import Executor
from infrastructure.jobs.engine.watchdog import Watchdog, WatchdogSettings
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.reliability.handlers import WitnessBook, build_registry

logger = logging.getLogger("reliability.worker")


def server_id_of(pid: int) -> str:
    return f"reliability-{pid}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    url: str
    witness_url: str
    queues: tuple[str, ...]
    concurrency: int
    lease: float
    heartbeat: float
    poll: float
    grace: float
    watchdog: float
    server_timeout: float
    parent_pid: int | None

    @classmethod
    def from_environment(cls) -> Config:
        env = os.environ
        return cls(
            url=env["RELIABILITY_DB_URL"],
            witness_url=env.get("RELIABILITY_WITNESS_URL", env["RELIABILITY_DB_URL"]),
            queues=tuple(q for q in env.get("RELIABILITY_QUEUES", "default").split(",") if q),
            concurrency=int(env.get("RELIABILITY_CONCURRENCY", "4")),
            lease=float(env.get("RELIABILITY_LEASE", "4")),
            heartbeat=float(env.get("RELIABILITY_HEARTBEAT", "1")),
            poll=float(env.get("RELIABILITY_POLL", "0.1")),
            grace=float(env.get("RELIABILITY_GRACE", "4")),
            watchdog=float(env.get("RELIABILITY_WATCHDOG", "1")),
            server_timeout=float(env.get("RELIABILITY_SERVER_TIMEOUT", "6")),
            parent_pid=int(env["RELIABILITY_PARENT_PID"])
            if "RELIABILITY_PARENT_PID" in env
            else None,
        )


def worker_settings(config: Config) -> WorkerSettings:
    return WorkerSettings(
        queues=config.queues,
        concurrency=config.concurrency,
        lease=dt.timedelta(seconds=config.lease),
        heartbeat_interval=config.heartbeat,
        poll_interval=config.poll,
        grace=dt.timedelta(seconds=config.grace),
    )


def watchdog_settings(config: Config) -> WatchdogSettings:
    return WatchdogSettings(
        interval=config.watchdog, server_timeout=dt.timedelta(seconds=config.server_timeout)
    )


async def serve(config: Config) -> None:
    if "RELIABILITY_BROKER_URL" in os.environ:
        await serve_on_dramatiq(config)
        return
    server_id = server_id_of(os.getpid())
    engine = create_engine(config.url)
    store = SQLAlchemyJobStore(engine)
    book = WitnessBook(config.witness_url, server_id=server_id, threads=config.concurrency)
    executor = Executor(build_registry(), book.factory, threads=config.concurrency)
    clock = SystemClock()
    worker = Worker(store, executor, clock, server_id=server_id, settings=worker_settings(config))
    watchdog = Watchdog(store, clock, watchdog_settings(config))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    logger.info("worker %s started on %s", server_id, engine.url.get_backend_name())
    orphaned = asyncio.create_task(_stop_when_orphaned(config.parent_pid, stopping))
    try:
        await asyncio.gather(worker.run(stopping), watchdog.run(stopping))
    finally:
        orphaned.cancel()
        logger.info("worker %s stopping", server_id)
        await store.close()
        executor.shutdown()
        book.close()
        engine.dispose()
    logger.info("worker %s stopped", server_id)


async def serve_on_dramatiq(config: Config) -> None:
    """The same worker and watchdog on the dramatiq backend, with its relay."""
    server_id = server_id_of(os.getpid())
    book = WitnessBook(config.url, server_id=server_id, threads=config.concurrency)
    backend = DramatiqBackend(
        BackendContext(
            registry=build_registry(),
            handler_factory=book.factory,
            clock=SystemClock(),
            database=DatabaseConfig(url=config.url),
            worker=worker_settings(config),
            watchdog=watchdog_settings(config),
            options={
                "BROKER_URL": os.environ["RELIABILITY_BROKER_URL"],
                "QUEUE_PREFIX": os.environ.get("RELIABILITY_QUEUE_PREFIX", ""),
                "REDELIVER_SECONDS": os.environ.get("RELIABILITY_REDELIVER", "5"),
            },
        )
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    logger.info("worker %s started on dramatiq", server_id)
    orphaned = asyncio.create_task(_stop_when_orphaned(config.parent_pid, stopping))
    loops = [backend.relay.run, backend.watchdog().run, backend.worker(server_id=server_id).run]
    try:
        await asyncio.gather(*(run(stopping) for run in loops))
    finally:
        orphaned.cancel()
        logger.info("worker %s stopping", server_id)
        await backend.close()
        book.close()
    logger.info("worker %s stopped", server_id)


async def _stop_when_orphaned(parent_pid: int | None, stopping: asyncio.Event) -> None:
    while parent_pid is not None and not stopping.is_set():
        if os.getppid() != parent_pid:
            logger.warning("parent %d is gone: stopping", parent_pid)
            stopping.set()
        await asyncio.sleep(1.0)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(Config.from_environment()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
