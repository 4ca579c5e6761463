"""The dependency-injector container: the one place the object graph is built."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from dependency_injector import containers, providers

import host.catalog as catalog
from application.use_cases import (
    ForgotPassword,
    RegisterUser,
    RequestReport,
    ScheduleInvoiceReminder,
    SendBulkNotification,
)
from host.registrar import RecurringJobRegistrar
from host.settings import Settings
from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.engine.admin import EngineJobAdmin
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.execution import Executor
from infrastructure.jobs.engine.handlers import HandlerRegistry
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.engine.watchdog import Watchdog, WatchdogSettings
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.memory.store import InMemoryJobStore
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.store import SQLAlchemyJobStore

T = TypeVar("T")


class ProviderHandlerFactory:
    """Builds handler instances through the container's factories, one per execution."""

    def __init__(self, factories: Sequence[providers.Factory[Any]]) -> None:
        self._by_class = {factory.cls: factory for factory in factories}

    def __call__(self, cls: type[T], /, **context: Any) -> T:
        factory = self._by_class.get(cls)
        instance = factory(**context) if factory is not None else cls(**context)
        assert isinstance(instance, cls)
        return instance


def database_engine(settings: Settings) -> Iterator[sa.Engine]:
    engine = create_engine(settings.db.url)
    yield engine
    engine.dispose()


def server_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def build_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    catalog.register_handlers(registry)
    return registry


def worker_settings(settings: Settings) -> WorkerSettings:
    jobs = settings.jobs
    return WorkerSettings(
        queues=tuple(jobs.queues),
        concurrency=jobs.concurrency,
        lease=dt.timedelta(seconds=jobs.lease_seconds),
        heartbeat_interval=jobs.heartbeat_seconds,
        poll_interval=jobs.poll_seconds,
        min_poll_interval=jobs.min_poll_seconds,
        grace=dt.timedelta(seconds=jobs.shutdown_grace_seconds),
    )


def watchdog_settings(settings: Settings) -> WatchdogSettings:
    jobs = settings.jobs
    return WatchdogSettings(
        interval=jobs.watchdog_seconds,
        server_timeout=dt.timedelta(seconds=jobs.server_timeout_seconds),
        retention=dt.timedelta(days=jobs.retention_days),
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    db_engine = providers.Resource(database_engine, settings)
    job_store = providers.Selector(
        providers.Callable(lambda s: s.jobs.backend, settings),
        memory=providers.Singleton(InMemoryJobStore),
        sql=providers.Singleton(
            SQLAlchemyJobStore,
            db_engine,
            schema=providers.Callable(lambda s: s.db.schema_name, settings),
            prefix=providers.Callable(lambda s: s.db.table_prefix, settings),
        ),
    )
    handler_registry = providers.Singleton(build_registry)

    # Domain adapters and the handlers built from them, one instance per execution.
    adapters = providers.Container(
        catalog.Adapters, temp_directory=providers.Callable(lambda s: s.temp_directory, settings)
    )
    # The factories themselves (`.provider`), not instances: one instance per execution.
    handler_factories = providers.List(
        *(factory.provider for factory in catalog.handler_factories(adapters))
    )
    handler_factory = providers.Singleton(ProviderHandlerFactory, handler_factories)

    jobs = providers.Singleton(
        EngineJobService,
        job_store,
        handler_registry,
        clock,
        payload_limit=providers.Callable(lambda s: s.jobs.payload_limit_bytes, settings),
    )
    admin = providers.Singleton(EngineJobAdmin, job_store, handler_registry, jobs, clock)
    executor = providers.Singleton(
        Executor,
        handler_registry,
        handler_factory,
        threads=providers.Callable(lambda s: s.jobs.concurrency, settings),
    )
    worker = providers.Factory(
        Worker,
        job_store,
        executor,
        clock,
        server_id=providers.Callable(server_id),
        settings=providers.Callable(worker_settings, settings),
    )
    scheduler = providers.Factory(
        Scheduler,
        job_store,
        clock,
        poll_interval=providers.Callable(lambda s: s.jobs.scheduler_poll_seconds, settings),
    )
    watchdog = providers.Factory(
        Watchdog, job_store, clock, providers.Callable(watchdog_settings, settings)
    )
    register_user = providers.Factory(RegisterUser, jobs, adapters.users, adapters.clock)
    forgot_password = providers.Factory(
        ForgotPassword, jobs, adapters.users, adapters.resets, adapters.clock
    )
    request_report = providers.Factory(RequestReport, jobs, adapters.reports, adapters.clock)
    send_bulk_notification = providers.Factory(SendBulkNotification, jobs)
    schedule_invoice_reminder = providers.Factory(
        ScheduleInvoiceReminder, jobs, adapters.invoices, adapters.clock
    )

    registrar = providers.Factory(
        RecurringJobRegistrar,
        jobs,
        providers.Callable(catalog.recurring_declarations, settings),
        prune=providers.Callable(lambda s: s.jobs.remove_undeclared_recurring, settings),
    )


def create_container(settings: Settings | None = None) -> Container:
    container = Container(settings=settings or Settings())
    return container
