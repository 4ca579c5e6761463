"""Our SQL job engine in the peer harness (bench/peers/common.py), on SQLite, PostgreSQL or MariaDB.

Same scenarios, job body and JSON output as the peers (see bench/peers/README.md), so the
figures compare one to one:

* enqueue: `EngineJobService.enqueue(BenchJobs.noop, t_enq)`, one job and one transaction per
  call (INSERT job + INSERT history row, plus NOTIFY on PostgreSQL).
* bulk: `async with jobs.batch() as b: await b.enqueue(...)`, 1,000 jobs per batch, one
  transaction per batch. This is the engine's only multi-job path (a `batches` row is written
  too); the process scenario pre-fills the queue through it, as the harness does for every
  peer with a bulk API.
* process / latency: worker processes, each this script re-run with `--worker`: one
  `SQLAlchemyJobStore` + `Executor` + `Worker` running `worker.run(stopping)` until SIGTERM.

The job body is `common.mark(t_enq)` called from `BenchJobs.noop`, an async method of a
module-level handler class registered with `HandlerRegistry.register` (`BENCH_HANDLER=sync`
uses a sync method instead, which the executor runs in its thread pool).

Worker shape (environment variables):
    BENCH_WORKERS        worker processes (default 2)
    BENCH_CONCURRENCY    WorkerSettings.concurrency, jobs run at once per process (default 128)
    BENCH_POLL_INTERVAL  WorkerSettings.poll_interval in s (default 0.5, the service default);
                         SQLite and MariaDB workers poll, PostgreSQL ones are also woken by NOTIFY
    BENCH_HANDLER        async (default) or sync
    BENCH_PREFILL        batch (default): the process scenario pre-fills through jobs.batch(),
                         as the harness does for every peer with a bulk API; single: one
                         enqueue per job (and no bulk scenario), a diagnostic variant
Databases (all on 127.0.0.1 by default):
    --db sqlite      BENCH_SQLITE_URL   default sqlite:////tmp/bench-jobs/jobs.db
    --db postgresql  BENCH_JOBS_PG_URL  default BENCH_PG_DSN with the psycopg driver
                     (postgresql+psycopg://bench:bench@127.0.0.1:5432/bench)
    --db mariadb     BENCH_MARIADB_URL  default mysql+pymysql://root@127.0.0.1:3306/bench_jobs
                     (the database is created if missing)

The dramatiq backend (`--broker rabbitmq|redis`, optional): the same client and job on the same
database, but the client's enqueue also writes the outbox row (`OutboxStore`) and each worker
process is the backend's worker and relay (`DramatiqBackend`, queue prefix `bench.`): the
workers' relays publish the rows (woken by NOTIFY on PostgreSQL, else every second), the
workers consume the broker's messages and claim the jobs they name. Brokers on 127.0.0.1:
BENCH_AMQP_URL (RabbitMQ) and BENCH_REDIS_URL with database 3 (Redis). Result name
jobs-<db>-dramatiq-<broker>.

Two additions to the harness, made here at run time without changing its files:
* worker peak RSS: before the harness stops the workers of a run, VmHWM is read from
  /proc/<pid>/status of each; per process run it goes into raw["process"][i] and its median
  into median["process_worker_rss_mib"] of the result JSON;
* MariaDB server CPU: the harness counts PostgreSQL, Redis and RabbitMQ server CPU; the
  `mariadbd` process is counted too (key "mariadb" of the CPU figures).

Usage (with the project's virtualenv python; the script re-executes itself in
/work/main/.venv if that exists):
    python bench/bench_jobs.py --db postgresql [--broker redis] [--n 20000 --reps 3 --tag X]
Results: $BENCH_RESULTS_DIR/jobs-<db>[-<tag>].json; worker logs: /tmp/peers-jobs-<db>-<i>.log.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
PEERS_DIR = BENCH_DIR / "peers"
PROJECT_VENV = PROJECT_DIR / ".venv"


def _ensure_project_python() -> None:
    """Re-execute this script with the project's virtualenv python, if there is one."""
    venv_python = PROJECT_VENV / "bin" / "python"
    if venv_python.exists() and Path(sys.prefix).resolve() != PROJECT_VENV.resolve():
        os.execv(venv_python, [str(venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])


_ensure_project_python()
sys.path.insert(0, str(PEERS_DIR))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import common  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from infrastructure.jobs.backend import BackendContext, DatabaseConfig  # noqa: E402
from infrastructure.jobs.clock import SystemClock  # noqa: E402
from infrastructure.jobs.dramatiq.backend import DramatiqBackend  # noqa: E402
from infrastructure.jobs.dramatiq.broker import BrokerQueues, create_broker  # noqa: E402
from infrastructure.jobs.dramatiq.outbox import OutboxStore  # noqa: E402
from infrastructure.jobs.engine.client import EngineJobService  # noqa: E402
from infrastructure.jobs.engine.execution import Executor, construct  # noqa: E402
from infrastructure.jobs.engine.middleware import Middlewares  # noqa: E402
from infrastructure.jobs.engine.worker import Worker, WorkerSettings  # noqa: E402
from infrastructure.jobs.handlers import HandlerRegistry  # noqa: E402
from infrastructure.jobs.sql import migrate  # noqa: E402
from infrastructure.jobs.sql import store as sql_store  # noqa: E402
from infrastructure.jobs.sql.database import create_engine  # noqa: E402
from infrastructure.jobs.sql.store import SQLAlchemyJobStore  # noqa: E402
from infrastructure.jobs.telemetry import default_middleware  # noqa: E402

DATABASES = ("sqlite", "postgresql", "mariadb")
BROKERS = {"rabbitmq": common.AMQP_URL, "redis": common.redis_url(3)}
BROKER_QUEUE_PREFIX = "bench."
WORKERS = int(os.environ.get("BENCH_WORKERS", 2))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", 128))
POLL_INTERVAL = float(os.environ.get("BENCH_POLL_INTERVAL", 0.5))
HANDLER_KIND = os.environ.get("BENCH_HANDLER", "async")
PREFILL = os.environ.get("BENCH_PREFILL", "batch")
BULK_STEP = 1000
QUEUE = "default"


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- the job


class BenchJobs:
    """The benchmark's handlers: the harness's job body, nothing else."""

    async def noop(self, t_enq: float) -> None:
        common.mark(t_enq)

    def noop_sync(self, t_enq: float) -> None:
        common.mark(t_enq)


def shipped_middleware() -> Middlewares:
    """The service's own middleware, as the container registers it: logs, traces, metrics."""
    return Middlewares(default_middleware())


def build_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.register(BenchJobs.noop, queue=QUEUE)
    registry.register(BenchJobs.noop_sync, queue=QUEUE)
    return registry


def bench_handler() -> Callable[..., object]:
    if HANDLER_KIND not in ("async", "sync"):
        raise SystemExit(f"BENCH_HANDLER must be async or sync, not {HANDLER_KIND!r}")
    return BenchJobs.noop if HANDLER_KIND == "async" else BenchJobs.noop_sync


# --------------------------------------------------------------------------- databases


def database_url(db: str) -> str:
    if db == "sqlite":
        return os.environ.get("BENCH_SQLITE_URL", "sqlite:////tmp/bench-jobs/jobs.db")
    if db == "postgresql":
        default = sa.make_url(common.PG_DSN).set(drivername="postgresql+psycopg")
        return os.environ.get("BENCH_JOBS_PG_URL", default.render_as_string(hide_password=False))
    if db == "mariadb":
        return os.environ.get("BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/bench_jobs")
    raise ValueError(f"unknown database {db!r}")


def ensure_mariadb_database(url: sa.URL) -> None:
    """Create the MariaDB database of `url` if it does not exist."""
    server = sa.create_engine(url.set(database=""))
    try:
        with server.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{url.database}`")
    finally:
        server.dispose()


def empty_tables(engine: sa.Engine, store: SQLAlchemyJobStore) -> None:
    """Delete every row of the engine's tables (jobs, job_history, job_logs, batches,
    recurring_jobs, recurring_ticks, servers); VACUUM ANALYZE on PostgreSQL, as the
    PostgreSQL peers do after their TRUNCATE."""
    names = [table.name for table in store.metadata.sorted_tables]
    dialect = engine.dialect.name
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.exec_driver_sql(f"TRUNCATE {', '.join(names)}")
        elif dialect in ("mysql", "mariadb"):
            for name in names:
                conn.exec_driver_sql(f"TRUNCATE TABLE {name}")
        else:
            for name in names:
                conn.exec_driver_sql(f"DELETE FROM {name}")
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in ("jobs", "job_history"):
                conn.exec_driver_sql(f"VACUUM ANALYZE {name}")


# --------------------------------------------------------------------------- engine source


def engine_src_dir() -> Path:
    """The `src` folder the engine is imported from (a snapshot when run.sh made one)."""
    return Path(sql_store.__file__).resolve().parents[3]


def engine_source() -> dict[str, str]:
    """Which engine code runs: its folder, a hash of its packages (application and
    infrastructure) and the project's git state (BENCH_ENGINE_GIT when run.sh snapshot it)."""
    src = engine_src_dir()
    digest = hashlib.sha256()
    for package in ("application", "infrastructure"):
        for path in sorted((src / package).rglob("*.py")):
            digest.update(str(path.relative_to(src)).encode())
            digest.update(path.read_bytes())
    git = os.environ.get("BENCH_ENGINE_GIT") or git_state()
    return {"src": str(src), "sha256": digest.hexdigest()[:12], "git": git}


def git_state() -> str:
    """HEAD of the project and how many files under src/ differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + {len(changed)} uncommitted change(s) under src/" if changed else head


# --------------------------------------------------------------------------- measurements


def peak_rss_mib(pid: int) -> float | None:
    """A process's peak resident set size (VmHWM) in MiB, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class WorkerPeaks:
    """Peak RSS of each worker process of each harness run, in the order of the runs. The
    harness tags the worker logs of latency runs with "-lat", those of process runs not."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, list[float | None]]] = []

    def process_runs(self) -> list[list[float | None]]:
        return [peaks for tag, peaks in self.runs if not tag.endswith("-lat")]

    def latency_runs(self) -> list[list[float | None]]:
        return [peaks for tag, peaks in self.runs if tag.endswith("-lat")]


PEAKS = WorkerPeaks()


class MeasuredWorkers(common.Workers):
    """The harness's worker processes, with their peak RSS read just before they stop."""

    def __init__(
        self, cmds: list[list[str]], env: dict[str, str] | None = None, log_tag: str = "w"
    ) -> None:
        super().__init__(cmds, env, log_tag)
        self.log_tag = log_tag

    def stop(self, grace: float = 10.0) -> None:
        peaks = [peak_rss_mib(proc.pid) for proc in self.procs]
        PEAKS.runs.append((self.log_tag, peaks))
        shown = ", ".join("-" if p is None else f"{p:.1f}" for p in peaks)
        say(f"[harness] worker peak RSS (VmHWM) MiB: {shown}")
        super().stop(grace)


_harness_cpu_snapshot = common.cpu_snapshot
MARIADB_COMMS = ("mariadbd", "mysqld")


def cpu_snapshot_with_mariadb(sessions: set[int]) -> dict[str, int]:
    """The harness's CPU snapshot plus the MariaDB server's CPU ticks."""
    snapshot: dict[str, int] = _harness_cpu_snapshot(sessions)
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm, _session, used = common._proc_stat(entry)
        except (OSError, ValueError, IndexError):
            continue
        if comm in MARIADB_COMMS:
            ticks += used
    snapshot["mariadb"] = ticks
    return snapshot


common.Workers = MeasuredWorkers  # type: ignore[misc]
common.cpu_snapshot = cpu_snapshot_with_mariadb


# --------------------------------------------------------------------------- the adapter


class OurEngine(common.Adapter):
    """The harness adapter for our SQL job engine on one database."""

    def __init__(self, db: str, broker: str | None = None) -> None:
        self.db = db
        self.broker = broker
        self.name = f"jobs-{db}" if broker is None else f"jobs-{db}-dramatiq-{broker}"
        self.packages = ["jobs-service", "SQLAlchemy", "alembic", "psycopg", "PyMySQL", "pydantic"]
        self.url = sa.make_url(database_url(db))
        wakeup = "LISTEN/NOTIFY + poll" if db == "postgresql" else "poll"
        if broker is not None:
            self.packages += ["dramatiq", "pika" if broker == "rabbitmq" else "redis"]
            wakeup = f"dramatiq on {broker}, relay woken by {wakeup}"
        self.concurrency = (
            f"{WORKERS} worker processes x concurrency {CONCURRENCY} ({HANDLER_KIND} handler), "
            f"{wakeup} {POLL_INTERVAL:g} s"
        )
        # PostgreSQL: idle backends flush their statistics every 10 s (as for the PG peers)
        self.stats_flush_wait = 11.0 if db == "postgresql" else 0.0
        self.handler = bench_handler()
        self.source: dict[str, str] = {}
        self.source_changed = False
        if PREFILL not in ("batch", "single"):
            raise SystemExit(f"BENCH_PREFILL must be batch or single, not {PREFILL!r}")
        # the harness pre-fills the process scenario through the bulk API when there is one
        self.has_bulk = PREFILL == "batch"
        if not self.has_bulk:
            self.concurrency += "; pre-filled one enqueue per job"

    def add_args(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--db", choices=DATABASES, default="sqlite", help="job store database")
        parser.add_argument("--broker", choices=BROKERS, help="the dramatiq backend on this broker")

    def setup(self) -> None:
        if self.url.get_backend_name() in ("mysql", "mariadb"):
            ensure_mariadb_database(self.url)
        self.engine = create_engine(self.url)
        migrate.upgrade(self.engine)
        self.store = (
            SQLAlchemyJobStore(self.engine) if self.broker is None else OutboxStore(self.engine)
        )
        self.jobs = EngineJobService(
            self.store, build_registry(), SystemClock(), middleware=shipped_middleware()
        )
        self.loop = asyncio.new_event_loop()
        self.source = engine_source()
        address = self.url.render_as_string(hide_password=True)
        say(f"[{self.name}] store {address}; {self.concurrency}")
        say(f"[{self.name}] engine source {self.source}")

    def reset(self) -> None:
        empty_tables(self.engine, self.store)
        if self.broker is not None:
            broker = create_broker(BROKERS[self.broker])
            try:
                broker.flush(BrokerQueues(broker, prefix=BROKER_QUEUE_PREFIX).declare(QUEUE))
            finally:
                broker.close()

    def enqueue(self, t_enq: float) -> None:
        self.loop.run_until_complete(self.jobs.enqueue(self.handler, t_enq))

    def enqueue_bulk(self, n: int) -> None:
        async def create_batches() -> None:
            for start in range(0, n, BULK_STEP):
                async with self.jobs.batch() as batch:
                    for _ in range(min(BULK_STEP, n - start)):
                        await batch.enqueue(self.handler, 0.0)

        self.loop.run_until_complete(create_batches())

    def worker_cmds(self) -> list[list[str]]:
        script = str(Path(__file__).resolve())
        return [
            [sys.executable, script, "--worker", "--db", self.db, "--index", str(i)]
            + ([] if self.broker is None else ["--broker", self.broker])
            for i in range(WORKERS)
        ]

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()
        self.engine.dispose()
        now = engine_source()
        self.source_changed = now["sha256"] != self.source["sha256"]
        if self.source_changed:
            say(
                f"[{self.name}] WARNING: the engine source changed during the run "
                f"({self.source['sha256']} -> {now['sha256']}); the figures mix two versions"
            )


def complete_result(result: dict[str, Any], adapter: OurEngine) -> None:
    """Add the workers' peak RSS and the engine source to the result; rewrite its JSON file."""
    if not result:
        return
    result["engine_source"] = {**adapter.source, "changed_during_run": adapter.source_changed}
    process_runs = result.get("raw", {}).get("process", [])
    peaks = PEAKS.process_runs()[-len(process_runs) :] if process_runs else []
    per_run_max = []
    for run, workers in zip(process_runs, peaks, strict=True):
        known = [p for p in workers if p is not None]
        run["worker_peak_rss_mib"] = workers
        per_run_max.append(max(known) if known else None)
    if per_run_max:
        values = [p for p in per_run_max if p is not None]
        result["median"]["process_worker_rss_mib"] = statistics.median(values) if values else None
        say(f"[{result['peer']}] process scenario worker peak RSS MiB (max per run): {per_run_max}")
    latency = [max((p for p in run if p is not None), default=0.0) for run in PEAKS.latency_runs()]
    if latency:
        result["median"]["latency_worker_rss_mib"] = statistics.median(latency)
    path = Path(common.RESULTS_DIR) / f"{result['peer']}.json"
    path.write_text(json.dumps(result, indent=1))


def run_bench(db: str, broker: str | None, argv: list[str]) -> None:
    adapter = OurEngine(db, broker)
    result = common.run(adapter, argv)
    complete_result(result, adapter)


# --------------------------------------------------------------------------- worker process


async def run_worker(db: str, index: int) -> None:
    """One worker process: claim and run jobs until SIGTERM, then stop gracefully."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    engine = create_engine(database_url(db))
    store = SQLAlchemyJobStore(engine)
    executor = Executor(build_registry())
    settings = WorkerSettings(queues=(QUEUE,), concurrency=CONCURRENCY, poll_interval=POLL_INTERVAL)
    server_id = f"bench-{socket.gethostname()}-{os.getpid()}"
    worker = Worker(
        store,
        executor,
        SystemClock(),
        server_id=server_id,
        settings=settings,
        middleware=shipped_middleware(),
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    say(
        f"[worker {index}] {server_id} on {db}: concurrency {CONCURRENCY}, "
        f"poll {POLL_INTERVAL} s, engine from {engine_src_dir()}"
    )
    try:
        await worker.run(stopping)
    finally:
        await store.close()
        executor.shutdown()
        engine.dispose()
        say(f"[worker {index}] stopped; peak RSS {peak_rss_mib(os.getpid()) or 0:.1f} MiB")


async def run_dramatiq_worker(db: str, broker: str, index: int) -> None:
    """One worker process of the dramatiq backend: its relay and its worker, until SIGTERM."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    settings = WorkerSettings(queues=(QUEUE,), concurrency=CONCURRENCY, poll_interval=POLL_INTERVAL)
    backend = DramatiqBackend(
        BackendContext(
            registry=build_registry(),
            handler_factory=construct,
            clock=SystemClock(),
            database=DatabaseConfig(url=database_url(db), migrate_on_start=False),
            middleware=default_middleware(),
            worker=settings,
            options={"BROKER_URL": BROKERS[broker], "QUEUE_PREFIX": BROKER_QUEUE_PREFIX},
        )
    )
    server_id = f"bench-{socket.gethostname()}-{os.getpid()}"
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    say(f"[worker {index}] {server_id} on {db}, dramatiq on {broker}: concurrency {CONCURRENCY}")
    loops = [backend.relay.run, backend.worker(server_id=server_id).run]
    try:
        await asyncio.gather(*(run(stopping) for run in loops))
    finally:
        await backend.close()
        say(f"[worker {index}] stopped; peak RSS {peak_rss_mib(os.getpid()) or 0:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", choices=DATABASES, default="sqlite")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--broker", choices=BROKERS)
    ours, _ = parser.parse_known_args()
    if ours.worker and ours.broker is not None:
        asyncio.run(run_dramatiq_worker(ours.db, ours.broker, ours.index))
    elif ours.worker:
        asyncio.run(run_worker(ours.db, ours.index))
    else:
        run_bench(ours.db, ours.broker, sys.argv[1:])


if __name__ == "__main__":
    main()
