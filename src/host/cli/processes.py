"""The process commands: `serve`, `worker`, `scheduler` and `migrate`."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer
import uvicorn

from host.cli.runner import fail, load_settings, refuse_memory_backend, shutdown_resources
from host.container import create_container
from host.runtime import JobRuntime, Role
from host.settings import Settings
from host.tracing import configure_tracing
from infrastructure.jobs.sql import migrate as migrations
from infrastructure.jobs.sql.database import create_engine

logger = logging.getLogger(__name__)


def serve(
    host: str | None = typer.Option(None, help="Address to listen on (default: APP_HTTP__HOST)."),
    port: int | None = typer.Option(None, help="Port to listen on (default: APP_HTTP__PORT)."),
    migrate: bool | None = typer.Option(
        None,
        "--migrate/--no-migrate",
        help="Upgrade the schema at start (default: APP_DB__MIGRATE_ON_START, true).",
    ),
) -> None:
    """Run the HTTP API with an embedded worker, scheduler and watchdog (a whole service)."""
    settings = load_settings(**({} if migrate is None else {"migrate_on_start": migrate}))
    from host.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host or settings.http.host,
        port=port or settings.http.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.jobs.shutdown_grace_seconds) + 5,
    )


def worker() -> None:
    """Run a worker (and the watchdog) without the HTTP API, until SIGTERM or Ctrl+C."""
    _run_headless(load_settings(), frozenset({Role.WORKER}))


def scheduler() -> None:
    """Run the scheduler (and the watchdog) without the HTTP API, until SIGTERM or Ctrl+C."""
    _run_headless(load_settings(), frozenset({Role.SCHEDULER}))


def migrate() -> None:
    """Upgrade the job store's schema to the latest revision, then exit.

    Safe to run from several processes at once: one migrates, the others wait and find
    the schema current.
    """
    db = load_settings().db
    engine = create_engine(db.url)
    try:
        migrations.upgrade(
            engine,
            schema=db.schema_name,
            prefix=db.table_prefix,
            timeout=db.migration_lock_timeout_seconds,
        )
    except migrations.MigrationLockTimeout as exc:
        fail(str(exc), 1)
    finally:
        engine.dispose()
    typer.echo(f"schema at revision {migrations.head_revision()}")


def _run_headless(settings: Settings, roles: frozenset[Role]) -> None:
    refuse_memory_backend(settings)
    configure_tracing(settings)
    asyncio.run(_until_signalled(settings, roles))


async def _until_signalled(settings: Settings, roles: frozenset[Role]) -> None:
    container = create_container(settings)
    runtime = JobRuntime(container, roles)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runtime.start()
    await stop.wait()
    logger.info("stopping", extra={"action": "stopping"})
    await runtime.stop()
    await shutdown_resources(container)
