"""The service's jobs: which handlers may run (the allow-list) with their defaults, how the
container builds them, and which recurring jobs the service declares."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers

from application.jobs import Cron, JobService, RetryPolicy
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
from host.registrar import RecurringDeclaration, recurring
from host.settings import Settings
from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.persistence.memory import (
    InMemoryInvoiceRepository,
    InMemoryNotificationRepository,
    InMemoryPasswordResetRepository,
    InMemoryReportRepository,
    InMemorySubscriptionRepository,
    InMemoryUserRepository,
)

MINUTE = dt.timedelta(minutes=1)


class Adapters(containers.DeclarativeContainer):
    """The domain ports and their adapters (in memory in this template)."""

    temp_directory = providers.Dependency(instance_of=Path)
    clock: providers.Dependency[Clock] = providers.Dependency()
    """The container's one clock."""
    users = providers.Singleton(InMemoryUserRepository)
    resets = providers.Singleton(InMemoryPasswordResetRepository)
    invoices = providers.Singleton(InMemoryInvoiceRepository)
    subscriptions = providers.Singleton(InMemorySubscriptionRepository)
    reports = providers.Singleton(InMemoryReportRepository)
    notifications = providers.Singleton(InMemoryNotificationRepository)
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
    """The commands the service accepts, each with the job port and the adapters it needs."""

    jobs: providers.Dependency[JobService] = providers.Dependency()
    adapters = providers.DependenciesContainer()

    register_user = providers.Factory(RegisterUser, jobs, adapters.users, adapters.clock)
    forgot_password = providers.Factory(
        ForgotPassword, jobs, adapters.users, adapters.resets, adapters.clock
    )
    request_report = providers.Factory(RequestReport, jobs, adapters.reports, adapters.clock)
    send_bulk_notification = providers.Factory(SendBulkNotification, jobs)
    schedule_invoice_reminder = providers.Factory(
        ScheduleInvoiceReminder, jobs, adapters.invoices, adapters.clock
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
