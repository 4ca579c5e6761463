"""The process commands: `serve`, `worker`, `scheduler` and `migrate`."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer
import uvicorn
from fastapi import FastAPI

from host.cli.runner import fail, load_settings, open_backend
from host.container import Container, create_container
from host.runtime import JobRuntime
from host.settings import Settings
from host.tracing import configure_tracing
from infrastructure.jobs.backend import BackendError, Role
from infrastructure.persistence.sql.lifecycle import PersistenceError

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

    config = server_config(create_app(settings), settings, host=host, port=port)
    uvicorn.Server(config).run()


def server_config(
    app: FastAPI, settings: Settings, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """How `serve` runs `app`: the address, the proxies trusted for `X-Forwarded-*`
    (whose client address authentication judges), the graceful shutdown."""
    return uvicorn.Config(
        app,
        host=host or settings.http.host,
        port=settings.http.port if port is None else port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.http.forwarded_allow_ips,
        timeout_graceful_shutdown=int(settings.jobs.shutdown_grace_seconds) + 5,
    )


def worker() -> None:
    """Run a worker (and the watchdog) without the HTTP API, until SIGTERM or Ctrl+C."""
    _run_headless(load_settings(), frozenset({Role.WORKER}))


def scheduler() -> None:
    """Run the scheduler (and the watchdog) without the HTTP API, until SIGTERM or Ctrl+C."""
    _run_headless(load_settings(), frozenset({Role.SCHEDULER}))


def migrate() -> None:
    """Upgrade the job store's schema and the business tables to the latest revision, then
    exit.

    Safe to run from several processes at once: one migrates, the others wait and find
    the schema current.
    """
    container = create_container(load_settings())
    backend = open_backend(container)

    async def migrated() -> str:
        persistence = container.persistence()
        try:
            return f"{await backend.migrate()}; {await persistence.migrate()}"
        finally:
            await backend.close()
            await persistence.close()

    try:
        typer.echo(asyncio.run(migrated()))
    except (BackendError, PersistenceError) as exc:
        fail(str(exc), 1)


def _run_headless(settings: Settings, roles: frozenset[Role]) -> None:
    container = create_container(settings)
    open_backend(container)  # refused here if other processes would not see its jobs
    configure_tracing(settings)
    asyncio.run(_until_signalled(container, roles))


async def _until_signalled(container: Container, roles: frozenset[Role]) -> None:
    runtime = JobRuntime(container, roles)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runtime.start()
    await stop.wait()
    logger.info("stopping", extra={"action": "stopping"})
    await runtime.stop()
