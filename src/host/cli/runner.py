"""Running a command: its settings, and an async body against the job store, with the port's
errors turned into a one-line message and an exit code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import sqlalchemy as sa
import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from application.jobs import (
    InvalidArguments,
    InvalidQuery,
    InvalidSchedule,
    JobsError,
    PayloadTooLarge,
)
from host.cli.output import print_error
from host.container import Container, create_container
from host.logging import configure_logging
from host.settings import Settings
from infrastructure.jobs.engine.store import JobStore
from infrastructure.jobs.sql import migrate as migrations

T = TypeVar("T")

_BAD_INPUT = (InvalidArguments, PayloadTooLarge, InvalidSchedule, InvalidQuery)


def fail(message: str, code: int) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


def load_settings(**overrides: object) -> Settings:
    """The settings of the environment, with `overrides` of `db`; configures logging."""
    settings = _read_settings()
    if overrides:
        db = settings.db.model_copy(update=overrides)
        settings = settings.model_copy(update={"db": db})
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _read_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = (
            f"APP_{'__'.join(map(str, error['loc'])).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        fail(f"invalid settings: {'; '.join(problems)}", 2)
    except SettingsError as exc:
        fail(f"invalid settings: {exc}", 2)


def refuse_memory_backend(settings: Settings) -> None:
    if settings.jobs.backend == "memory":
        fail(
            "the memory backend keeps jobs inside one process, so this process would never "
            "see them; set APP_JOBS__BACKEND=sql (or run everything in one `serve`).",
            2,
        )


def run(body: Callable[[Container], Awaitable[T]]) -> T:
    """Run `body` against the job store of the settings, and turn the port's errors into a
    one-line message and an exit code (1 not found or refused, 2 bad input)."""
    settings = load_settings()
    refuse_memory_backend(settings)
    try:
        return asyncio.run(_with_container(settings, body))
    except JobsError as exc:
        fail(str(exc), 2 if isinstance(exc, _BAD_INPUT) else 1)


async def _with_container(settings: Settings, body: Callable[[Container], Awaitable[T]]) -> T:
    container = create_container(settings)
    try:
        store = _open_store(container)
        try:
            await _require_schema(container, settings)
            return await body(container)
        finally:
            await store.close()
    finally:
        await shutdown_resources(container)


def _open_store(container: Container) -> JobStore:
    try:
        store: JobStore = container.job_store()
    except (sa.exc.SQLAlchemyError, ImportError, OSError) as exc:  # bad URL, driver, folder
        fail(f"cannot use the database of APP_DB__URL: {exc}", 1)
    return store


async def _require_schema(container: Container, settings: Settings) -> None:
    db = settings.db
    try:
        current = await asyncio.to_thread(
            migrations.is_at_head,
            container.db_engine(),
            schema=db.schema_name,
            prefix=db.table_prefix,
        )
    except sa.exc.SQLAlchemyError as exc:
        reason = str(exc).splitlines()[0]
        fail(f"cannot read the database's schema: {exc.__class__.__name__}: {reason}", 1)
    if not current:
        fail("the database schema is not at the latest revision; run `jobs-service migrate`", 1)


async def shutdown_resources(container: Container) -> None:
    result = container.shutdown_resources()
    if result is not None:
        await result
