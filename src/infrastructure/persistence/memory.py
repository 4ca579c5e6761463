"""Repositories of the sample business kept in process memory: the test adapters of the
repository ports, over the journalled tables of `memory_tables` (a rollback undoes them).
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from domain.invoices import Invoice, Subscription
from domain.notifications import Notification
from domain.reports import Report
from domain.users import PasswordReset, User
from infrastructure.persistence.memory_tables import MemoryTable


class InMemoryUserRepository:
    def __init__(self) -> None:
        self._users: MemoryTable[User] = MemoryTable()

    async def add(self, user: User) -> None:
        self._users.put(user.id, user)

    async def get(self, user_id: UUID) -> User | None:
        return self._users.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        wanted = email.casefold()
        return next((u for u in self._users if u.email.casefold() == wanted), None)

    async def count_registered_between(self, start: dt.datetime, end: dt.datetime) -> int:
        return sum(1 for user in self._users if start <= user.registered_at < end)


class InMemoryPasswordResetRepository:
    def __init__(self) -> None:
        self._resets: MemoryTable[PasswordReset] = MemoryTable()

    async def add(self, reset: PasswordReset) -> None:
        self._resets.put(reset.id, reset)

    async def get(self, reset_id: UUID) -> PasswordReset | None:
        return self._resets.get(reset_id)


class InMemoryInvoiceRepository:
    def __init__(self) -> None:
        self._invoices: MemoryTable[Invoice] = MemoryTable()

    async def add(self, invoice: Invoice) -> None:
        self._invoices.put(invoice.id, invoice)

    async def get(self, invoice_id: UUID) -> Invoice | None:
        return self._invoices.get(invoice_id)

    async def list_issued_between(self, start: dt.datetime, end: dt.datetime) -> list[Invoice]:
        issued = [i for i in self._invoices if start <= i.issued_at < end]
        return sorted(issued, key=lambda invoice: (invoice.issued_at, str(invoice.id)))

    async def list_unpaid(self) -> list[Invoice]:
        unpaid = [invoice for invoice in self._invoices if not invoice.paid]
        return sorted(unpaid, key=lambda invoice: (invoice.due_at, str(invoice.id)))


class InMemorySubscriptionRepository:
    def __init__(self) -> None:
        self._subscriptions: MemoryTable[Subscription] = MemoryTable()

    async def add(self, subscription: Subscription) -> None:
        self._subscriptions.put(subscription.id, subscription)

    async def list_active(self) -> list[Subscription]:
        active = [s for s in self._subscriptions if s.active]
        return sorted(active, key=lambda subscription: str(subscription.id))


class InMemoryReportRepository:
    def __init__(self) -> None:
        self._reports: MemoryTable[Report] = MemoryTable()

    async def add(self, report: Report) -> None:
        self._reports.put(report.id, report)

    async def get(self, report_id: UUID) -> Report | None:
        return self._reports.get(report_id)


class InMemoryNotificationRepository:
    def __init__(self) -> None:
        self._notifications: MemoryTable[Notification] = MemoryTable()

    async def add(self, notification: Notification) -> None:
        self._notifications.put(notification.id, notification)

    async def list_for_user(self, user_id: UUID) -> list[Notification]:
        mine = [n for n in self._notifications if n.user_id == user_id]
        return sorted(mine, key=lambda notification: notification.created_at)

    async def count_for_bulk(self, bulk_id: UUID) -> int:
        return sum(1 for n in self._notifications if n.bulk_id == bulk_id)
