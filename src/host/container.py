"""The dependency-injector container: the one place the object graph is built."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, TypeVar

from dependency_injector import containers, providers

import host.catalog as catalog
from application.jobs import JobAdmin, JobService
from domain.clock import Clock
from host import checks
from host.feature import Feature
from host.registrar import RecurringDeclaration, RecurringJobRegistrar
from host.settings import Settings
from infrastructure.jobs.backend import (
    BackendContext,
    DatabaseConfig,
    JobBackend,
    create_backend,
)
from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.engine.execution import HandlerFactory
from infrastructure.jobs.engine.middleware import JobMiddleware
from infrastructure.jobs.engine.watchdog import WatchdogSettings
from infrastructure.jobs.engine.worker import WorkerSettings
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.sync_port import LoopThreadJobService
from infrastructure.jobs.telemetry import LoggingMiddleware, MetricsMiddleware, TracingMiddleware
from infrastructure.persistence.memory_tables import InMemoryUnitOfWork
from infrastructure.persistence.sql.lifecycle import MemoryPersistence, SqlPersistence
from infrastructure.persistence.sql.session import SqlUnitOfWork

T = TypeVar("T")


class ProviderHandlerFactory:
    """Builds handler instances through the container's factories, one per execution."""

    def __init__(self, factories: Sequence[providers.Factory[Any]]) -> None:
        self._by_class = {factory.cls: factory for factory in factories}

    @property
    def classes(self) -> set[type]:
        """The handler classes it can build (start-up checks compare them to the registry)."""
        return set(self._by_class)

    def __call__(self, cls: type[T], /, **context: Any) -> T:
        # A class without a factory is built with no dependencies (test probes); the start-up
        # checks refuse the service's own handlers without one.
        factory = self._by_class.get(cls)
        instance = factory(**context) if factory is not None else cls(**context)
        assert isinstance(instance, cls)
        return instance


def build_registry(settings: Settings, features: Sequence[Feature] = ()) -> HandlerRegistry:
    registry = HandlerRegistry(default_retry=settings.jobs.retry.policy())
    catalog.register_handlers(registry)
    for feature in features:
        feature.register_handlers(registry)
    return registry


def recurring_declarations(
    settings: Settings, features: Sequence[Feature] = ()
) -> list[RecurringDeclaration]:
    """The catalog's recurring jobs and every feature's."""
    declared = catalog.recurring_declarations(settings)
    return declared + [d for feature in features for d in feature.recurring(settings)]


def backend_context(
    settings: Settings,
    registry: HandlerRegistry,
    handler_factory: HandlerFactory,
    clock: Clock,
    middleware: Sequence[JobMiddleware],
) -> BackendContext:
    jobs, db = settings.jobs, settings.db
    return BackendContext(
        registry=registry,
        handler_factory=handler_factory,
        clock=clock,
        middleware=middleware,
        database=DatabaseConfig(
            url=db.url,
            schema=db.schema_name,
            table_prefix=db.table_prefix,
            migrate_on_start=db.migrate_on_start,
            migration_lock_timeout=db.migration_lock_timeout_seconds,
        ),
        worker=WorkerSettings(
            queues=tuple(jobs.queues),
            queue_weights=dict(jobs.queue_weights),
            concurrency=jobs.concurrency,
            lease=dt.timedelta(seconds=jobs.lease_seconds),
            heartbeat_interval=jobs.heartbeat_seconds,
            poll_interval=jobs.poll_seconds,
            min_poll_interval=jobs.min_poll_seconds,
            grace=dt.timedelta(seconds=jobs.shutdown_grace_seconds),
        ),
        watchdog=WatchdogSettings(
            interval=jobs.watchdog_seconds,
            server_timeout=dt.timedelta(seconds=jobs.server_timeout_seconds),
            retention=dt.timedelta(days=jobs.retention_days),
            failed_retention=dt.timedelta(days=jobs.failed_retention_days),
            tick_retention=dt.timedelta(hours=jobs.tick_retention_hours),
        ),
        scheduler_poll_seconds=jobs.scheduler_poll_seconds,
        payload_limit=jobs.payload_limit_bytes,
        options=jobs.options,
    )


def job_backend(settings: Settings, context: BackendContext) -> JobBackend:
    """The configured backend; whoever runs it (the runtime, a CLI command) closes it."""
    return create_backend(settings.jobs.backend, context)


def sql_persistence(settings: Settings) -> SqlPersistence:
    """The business database; whoever runs it (the runtime, a CLI command) closes it."""
    db = settings.db
    return SqlPersistence(
        db.url,
        migrate_on_start=db.migrate_on_start,
        lock_timeout=db.migration_lock_timeout_seconds,
    )


def jobs_of(backend: JobBackend) -> JobService:
    return backend.jobs


def admin_of(backend: JobBackend) -> JobAdmin:
    return backend.admin


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    features: providers.Provider[Sequence[Feature]] = providers.Object(())
    """The features' declarations (`host.features.FEATURES`, set by `create_container`)."""
    handler_registry = providers.Singleton(build_registry, settings, features)

    persistence_kind = providers.Callable(lambda s: s.db.persistence, settings)
    persistence = providers.Selector(
        persistence_kind,
        sql=providers.Singleton(sql_persistence, settings),
        memory=providers.Singleton(MemoryPersistence),
    )

    # Domain adapters and the handlers built from them, one instance per execution.
    adapters = providers.Container(
        catalog.Adapters,
        clock=clock,
        temp_directory=providers.Callable(lambda s: s.temp_directory, settings),
        persistence=persistence_kind,
        database=providers.Callable(lambda p: p.database, persistence),
    )
    # The factories themselves (`.provider`), not instances: one instance per execution.
    handler_factories = providers.List(
        *(factory.provider for factory in catalog.handler_factories(adapters))
    )
    handler_factory = providers.Singleton(ProviderHandlerFactory, handler_factories)

    # Job middleware, run in this order: ours (logs, traces, metrics), then add your own,
    # e.g. `providers.Singleton(AuditMiddleware, adapters.audit_log)`.
    middleware = providers.List(
        providers.Singleton(LoggingMiddleware),
        providers.Singleton(TracingMiddleware),
        providers.Singleton(MetricsMiddleware),
    )

    # Thread-safe: the synchronous port may first ask for it from a thread of a sync framework.
    backend = providers.ThreadSafeSingleton(
        job_backend,
        settings,
        providers.Singleton(
            backend_context, settings, handler_registry, handler_factory, clock, middleware
        ),
    )
    jobs = providers.Callable(jobs_of, backend)
    # The port for synchronous callers (Django or Flask views, scripts): the same backend's
    # port, run on a loop thread of its own.
    sync_jobs = providers.ThreadSafeSingleton(LoopThreadJobService, jobs)
    admin = providers.Callable(admin_of, backend)
    # Business transactions: repository calls and `tx.jobs` commit or roll back together.
    unit_of_work = providers.Selector(
        persistence_kind,
        sql=providers.Singleton(SqlUnitOfWork, adapters.database, jobs),
        memory=providers.Singleton(InMemoryUnitOfWork, jobs),
    )

    # The use cases, declared with the handlers in the catalog.
    use_cases = providers.Container(
        catalog.UseCases, jobs=jobs, unit_of_work=unit_of_work, adapters=adapters
    )

    registrar = providers.Factory(
        RecurringJobRegistrar,
        jobs,
        providers.Callable(recurring_declarations, settings, features),
        prune=providers.Callable(lambda s: s.jobs.remove_undeclared_recurring, settings),
    )


def create_container(
    settings: Settings | None = None, features: Sequence[Feature] | None = None
) -> Container:
    """The container with every feature (`host.features.FEATURES` unless given), its wiring
    checked (`host.checks`).

    Raises:
        StartupCheckFailed: a handler without a factory, or a recurring job naming an
            unregistered handler.
    """
    if features is None:
        # Imported here: feature modules import the API, which imports this module.
        from host.features import FEATURES

        features = FEATURES
    container = Container(settings=settings or Settings())
    install_features(container, features)
    check_wiring(container)
    return container


def install_features(container: Container, features: Sequence[Feature]) -> None:
    """Give each feature's container the core ports, make it `container.<name>`, and let
    the handler factory build its handlers."""
    container.features.override(providers.Object(tuple(features)))
    core = providers.DependenciesContainer(
        settings=container.settings,
        clock=container.clock,
        email=container.adapters.email,
        persistence=container.persistence_kind,
        database=container.adapters.database,
        jobs=container.jobs,
        unit_of_work=container.unit_of_work,
    )
    for feature in features:
        provided: Any = providers.Container(feature.container, core=core)
        setattr(container, feature.name, provided)
        container.handler_factories.add_args(
            *(factory.provider for factory in provided.handlers.args)
        )


def check_wiring(container: Container) -> None:
    """Raises StartupCheckFailed as `create_container` does."""
    registry = container.handler_registry()
    checks.check_handlers_have_factories(registry, container.handler_factory().classes)
    declarations = recurring_declarations(container.settings(), container.features())
    checks.check_recurring_handlers_registered(registry, declarations)
