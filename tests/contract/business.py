"""The business repositories and unit of work of each persistence adapter, on empty tables:
in memory, and in SQL on the session's database of each kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from domain.invoices import InvoiceRepository, SubscriptionRepository
from domain.notifications import NotificationRepository
from domain.reports import ReportRepository
from domain.users import PasswordResetRepository, UserRepository
from infrastructure.persistence import memory
from infrastructure.persistence.sql import invoices, notifications, reports, users
from infrastructure.persistence.sql.session import SqlDatabase
from infrastructure.persistence.sql.tables import metadata
from tests.databases import empty_tables

PERSISTENCE = ["memory", "sqlite", "postgresql", "mariadb", "mariadb-odbc"]
"""The adapters every repository contract runs on."""


@dataclass(frozen=True)
class Repositories:
    users: UserRepository
    resets: PasswordResetRepository
    invoices: InvoiceRepository
    subscriptions: SubscriptionRepository
    reports: ReportRepository
    notifications: NotificationRepository
    database: SqlDatabase | None = None
    """The SQL database behind them; None in memory."""


def in_memory() -> Repositories:
    return Repositories(
        users=memory.InMemoryUserRepository(),
        resets=memory.InMemoryPasswordResetRepository(),
        invoices=memory.InMemoryInvoiceRepository(),
        subscriptions=memory.InMemorySubscriptionRepository(),
        reports=memory.InMemoryReportRepository(),
        notifications=memory.InMemoryNotificationRepository(),
    )


def in_sql(database: SqlDatabase) -> Repositories:
    return Repositories(
        users=users.SqlUserRepository(database),
        resets=users.SqlPasswordResetRepository(database),
        invoices=invoices.SqlInvoiceRepository(database),
        subscriptions=invoices.SqlSubscriptionRepository(database),
        reports=reports.SqlReportRepository(database),
        notifications=notifications.SqlNotificationRepository(database),
        database=database,
    )


def sql_engine(request: pytest.FixtureRequest, kind: str) -> sa.Engine:
    """The session's migrated database of `kind`, its business tables emptied."""
    engine: sa.Engine = request.getfixturevalue(f"{kind.replace('-', '_')}_engine")
    empty_tables(engine, metadata)
    return engine


def repositories_for(request: pytest.FixtureRequest, kind: str) -> Repositories:
    if kind == "memory":
        return in_memory()
    return in_sql(SqlDatabase(sql_engine(request, kind)))


RepositoriesFixture = Callable[[], Iterator[Repositories]]
