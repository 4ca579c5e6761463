"""Repositories kept in process memory: for development mode and tests, lost on restart.

Each method runs without awaiting, so it is atomic on the event loop.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from domain.invoices import Invoice, Subscription
from domain.notifications import Notification
from domain.reports import Report
from domain.users import PasswordReset, User


class InMemoryUserRepository:
    def __init__(self) -> None:
        self._users: dict[UUID, User] = {}

    async def add(self, user: User) -> None:
        self._users[user.id] = user

    async def get(self, user_id: UUID) -> User | None:
        return self._users.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        wanted = email.casefold()
        return next((u for u in self._users.values() if u.email.casefold() == wanted), None)

    async def count_registered_between(self, start: dt.datetime, end: dt.datetime) -> int:
        return sum(1 for user in self._users.values() if start <= user.registered_at < end)


class InMemoryPasswordResetRepository:
    def __init__(self) -> None:
        self._resets: dict[UUID, PasswordReset] = {}

    async def add(self, reset: PasswordReset) -> None:
        self._resets[reset.id] = reset

    async def get(self, reset_id: UUID) -> PasswordReset | None:
        return self._resets.get(reset_id)


class InMemoryInvoiceRepository:
    def __init__(self) -> None:
        self._invoices: dict[UUID, Invoice] = {}

    async def add(self, invoice: Invoice) -> None:
        self._invoices[invoice.id] = invoice

    async def get(self, invoice_id: UUID) -> Invoice | None:
        return self._invoices.get(invoice_id)

    async def list_issued_between(self, start: dt.datetime, end: dt.datetime) -> list[Invoice]:
        issued = [i for i in self._invoices.values() if start <= i.issued_at < end]
        return sorted(issued, key=lambda invoice: invoice.issued_at)

    async def list_unpaid(self) -> list[Invoice]:
        unpaid = [invoice for invoice in self._invoices.values() if not invoice.paid]
        return sorted(unpaid, key=lambda invoice: invoice.due_at)


class InMemorySubscriptionRepository:
    def __init__(self) -> None:
        self._subscriptions: dict[UUID, Subscription] = {}

    async def add(self, subscription: Subscription) -> None:
        self._subscriptions[subscription.id] = subscription

    async def list_active(self) -> list[Subscription]:
        active = [s for s in self._subscriptions.values() if s.active]
        return sorted(active, key=lambda subscription: str(subscription.id))


class InMemoryReportRepository:
    def __init__(self) -> None:
        self._reports: dict[UUID, Report] = {}

    async def add(self, report: Report) -> None:
        self._reports[report.id] = report

    async def get(self, report_id: UUID) -> Report | None:
        return self._reports.get(report_id)


class InMemoryNotificationRepository:
    def __init__(self) -> None:
        self._notifications: dict[UUID, Notification] = {}

    async def add(self, notification: Notification) -> None:
        self._notifications[notification.id] = notification

    async def list_for_user(self, user_id: UUID) -> list[Notification]:
        mine = [n for n in self._notifications.values() if n.user_id == user_id]
        return sorted(mine, key=lambda notification: notification.created_at)

    async def count_for_bulk(self, bulk_id: UUID) -> int:
        return sum(1 for n in self._notifications.values() if n.bulk_id == bulk_id)
