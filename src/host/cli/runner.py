"""Running a command: its settings, and an async body against the job store, with the port's
errors turned into a one-line message and an exit code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

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
from infrastructure.jobs.backend import BackendError, JobBackend

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


def open_backend(container: Container) -> JobBackend:
    """The configured backend, refused when other processes would not see its jobs."""
    settings: Settings = container.settings()
    try:
        backend: JobBackend = container.backend()
    except BackendError as exc:
        fail(str(exc), 1)
    if not backend.shared:
        fail(
            f"the {settings.jobs.backend} backend keeps jobs inside one process, so this "
            "process would never see them; set APP_JOBS__BACKEND=sql (or run everything in "
            "one `serve`).",
            2,
        )
    return backend


def run(body: Callable[[Container], Awaitable[T]]) -> T:
    """Run `body` against the job backend of the settings, and turn the port's errors into a
    one-line message and an exit code (1 not found or refused, 2 bad input)."""
    settings = load_settings()
    try:
        return asyncio.run(_with_container(settings, body))
    except JobsError as exc:
        fail(str(exc), 2 if isinstance(exc, _BAD_INPUT) else 1)


async def _with_container(settings: Settings, body: Callable[[Container], Awaitable[T]]) -> T:
    backend = open_backend(container := create_container(settings))
    try:
        if (problem := await backend.problem()) is not None:
            fail(problem, 1)
        return await body(container)
    finally:
        await backend.close()
