"""The service's jobs: which handlers may run (the allow-list) with their defaults, how the
container builds them, the use cases, and which recurring jobs the service declares. Your
own handlers and use cases are registered here (docs/new-service.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers

from application.jobs import Cron, JobService, RetryPolicy
from application.unit_of_work import UnitOfWork
from application.use_cases import GreetSomeone
from domain.clock import Clock
from domain.greetings import GreetingJobs
from domain.maintenance import HeartbeatJobs, TempFileJobs, TempFileSettings
from host.registrar import RecurringDeclaration, recurring
from host.settings import Settings
from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.persistence.memory import InMemoryGreetingLog

MINUTE = dt.timedelta(minutes=1)


class Adapters(containers.DeclarativeContainer):
    """The domain ports and their adapters."""

    temp_directory = providers.Dependency(instance_of=Path)
    clock: providers.Dependency[Clock] = providers.Dependency()
    """The container's one clock."""
    persistence = providers.Dependency(instance_of=str)
    """`sql` or `memory`: where the repositories keep their rows."""
    database: providers.Dependency[Any] = providers.Dependency()
    """The SQL business database (None with the memory repositories)."""
    greetings = providers.Singleton(InMemoryGreetingLog)
    email = providers.Singleton(LoggingEmailSender)
    """The email port the features are given (logs instead of sending: put your provider's)."""
    temp_files = providers.Factory(TempFileSettings, directory=temp_directory)


def handler_factories(a: Any) -> list[providers.Factory[Any]]:
    """One factory per handler class; the executor adds `context` to those that take one."""
    return [
        providers.Factory(GreetingJobs, a.greetings, a.clock),
        providers.Factory(TempFileJobs, a.temp_files, a.clock),
        providers.Factory(HeartbeatJobs, a.clock),
    ]


class UseCases(containers.DeclarativeContainer):
    """The commands the service accepts, each with the job port and the adapters it needs."""

    jobs: providers.Dependency[JobService] = providers.Dependency()
    unit_of_work: providers.Dependency[UnitOfWork] = providers.Dependency()
    """Business rows and the jobs they enqueue, committed together (unused here)."""
    adapters = providers.DependenciesContainer()

    greet_someone = providers.Factory(GreetSomeone, jobs)


def register_handlers(registry: HandlerRegistry) -> None:
    """The allow-list: only these handlers can be enqueued or run."""
    once, three = RetryPolicy.none(), RetryPolicy(attempts=3)
    registry.register(GreetingJobs.send, retry=three)
    registry.register(GreetingJobs.count_daily, queue="low", retry=three)
    registry.register(TempFileJobs.cleanup, queue="low", retry=once, timeout=10 * MINUTE)
    registry.register(HeartbeatJobs.beat, queue="low", retry=once, timeout=MINUTE)


def recurring_declarations(settings: Settings) -> list[RecurringDeclaration]:
    """The recurring jobs every replica upserts at start-up."""
    zone = settings.business_timezone
    declared = [
        recurring("daily-greetings", Cron.daily(6, timezone=zone), GreetingJobs.count_daily),
        recurring(
            "temp-cleanup", Cron.hourly(timezone=zone), TempFileJobs.cleanup, older_than_hours=24
        ),
    ]
    if settings.sample_every_minute:
        declared.append(recurring("sample-heartbeat", Cron.minutely(), HeartbeatJobs.beat))
    return declared
