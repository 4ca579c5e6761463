"""The service's jobs: which handlers may run (the allow-list) with their defaults, how the
container builds them, and which recurring jobs the service declares."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers

from application.jobs import Cron, JobService, RetryPolicy
from application.unit_of_work import UnitOfWork
from application.use_cases import (
    ForgotPassword,
    RegisterUser,
    RequestReport,
    ScheduleInvoiceReminder,
    SendBulkNotification,
)
from domain.clock import Clock
from domain.invoices import InvoiceJobs
from domain.maintenance import HeartbeatJobs, TempFileJobs, TempFileSettings
from domain.notifications import NotificationJobs
from domain.reports import ReportJobs
from domain.users import EmailJobs
from host.feature import repository
from host.registrar import RecurringDeclaration, recurring
from host.settings import Settings
from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.persistence import memory
from infrastructure.persistence.sql import invoices as sql_invoices
from infrastructure.persistence.sql import notifications as sql_notifications
from infrastructure.persistence.sql import reports as sql_reports
from infrastructure.persistence.sql import users as sql_users

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
    users = repository(
        persistence, database, sql_users.SqlUserRepository, memory.InMemoryUserRepository
    )
    resets = repository(
        persistence,
        database,
        sql_users.SqlPasswordResetRepository,
        memory.InMemoryPasswordResetRepository,
    )
    invoices = repository(
        persistence, database, sql_invoices.SqlInvoiceRepository, memory.InMemoryInvoiceRepository
    )
    subscriptions = repository(
        persistence,
        database,
        sql_invoices.SqlSubscriptionRepository,
        memory.InMemorySubscriptionRepository,
    )
    reports = repository(
        persistence, database, sql_reports.SqlReportRepository, memory.InMemoryReportRepository
    )
    notifications = repository(
        persistence,
        database,
        sql_notifications.SqlNotificationRepository,
        memory.InMemoryNotificationRepository,
    )
    email = providers.Singleton(LoggingEmailSender)
    temp_files = providers.Factory(TempFileSettings, directory=temp_directory)


def handler_factories(a: Any) -> list[providers.Factory[Any]]:
    """One factory per handler class; the executor adds `context` to those that take one."""
    return [
        providers.Factory(EmailJobs, a.users, a.resets, a.email, a.clock),
        providers.Factory(InvoiceJobs, a.invoices, a.subscriptions, a.email, a.clock),
        providers.Factory(ReportJobs, a.reports, a.users, a.invoices, a.email, a.clock),
        providers.Factory(NotificationJobs, a.users, a.notifications, a.email, a.clock),
        providers.Factory(TempFileJobs, a.temp_files, a.clock),
        providers.Factory(HeartbeatJobs, a.clock),
    ]


class UseCases(containers.DeclarativeContainer):
    """The commands the service accepts, each with the unit of work (business rows and the
    jobs they enqueue, committed together) and the adapters it needs."""

    jobs: providers.Dependency[JobService] = providers.Dependency()
    unit_of_work: providers.Dependency[UnitOfWork] = providers.Dependency()
    adapters = providers.DependenciesContainer()

    register_user = providers.Factory(RegisterUser, unit_of_work, adapters.users, adapters.clock)
    forgot_password = providers.Factory(
        ForgotPassword, unit_of_work, adapters.users, adapters.resets, adapters.clock
    )
    request_report = providers.Factory(
        RequestReport, unit_of_work, adapters.reports, adapters.clock
    )
    send_bulk_notification = providers.Factory(SendBulkNotification, unit_of_work)
    schedule_invoice_reminder = providers.Factory(
        ScheduleInvoiceReminder, unit_of_work, adapters.invoices, adapters.clock
    )


def register_handlers(registry: HandlerRegistry) -> None:
    """The allow-list: only these handlers can be enqueued or run."""
    once, three, five = RetryPolicy.none(), RetryPolicy(attempts=3), RetryPolicy(attempts=5)
    registry.register(EmailJobs.send_welcome, queue="critical", retry=five)
    registry.register(EmailJobs.send_password_reset, queue="critical", retry=five)
    registry.register(EmailJobs.remind_password_reset, retry=three)
    registry.register(InvoiceJobs.send_reminder, retry=five)
    registry.register(InvoiceJobs.generate_monthly, retry=three, timeout=30 * MINUTE)
    registry.register(ReportJobs.generate, queue="low", retry=three, timeout=10 * MINUTE)
    registry.register(ReportJobs.email_report, queue="low", retry=five)
    registry.register(ReportJobs.generate_daily, queue="low", retry=three, timeout=30 * MINUTE)
    # Short retries: the bulk summary waits until every delivery has finished.
    registry.register(NotificationJobs.notify, retry=RetryPolicy(attempts=3, delays=(10, 60)))
    registry.register(NotificationJobs.send_bulk_summary, retry=five)
    registry.register(TempFileJobs.cleanup, queue="low", retry=once, timeout=10 * MINUTE)
    registry.register(HeartbeatJobs.beat, queue="low", retry=once, timeout=MINUTE)


def recurring_declarations(settings: Settings) -> list[RecurringDeclaration]:
    """The recurring jobs every replica upserts at start-up."""
    zone = settings.business_timezone
    declared = [
        recurring(
            "monthly-invoices", Cron.monthly(1, 6, timezone=zone), InvoiceJobs.generate_monthly
        ),
        recurring("daily-report", Cron.daily(2, timezone=zone), ReportJobs.generate_daily),
        recurring(
            "temp-cleanup", Cron.hourly(timezone=zone), TempFileJobs.cleanup, older_than_hours=24
        ),
    ]
    if settings.sample_every_minute:
        declared.append(recurring("sample-heartbeat", Cron.minutely(), HeartbeatJobs.beat))
    return declared
