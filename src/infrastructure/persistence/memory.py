"""Repositories kept in process memory, the test adapters of the repository ports, and their
unit of work.

Each method runs without awaiting, so it is atomic on the event loop. Inside a transaction of
`InMemoryUnitOfWork` every write is journalled and undone if the transaction rolls back; other
tasks see the writes at once (there is no isolation: these are test adapters).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Generic, TypeVar
from uuid import UUID

from application.jobs import JobService
from application.unit_of_work import Transaction
from domain.invoices import Invoice, Subscription
from domain.notifications import Notification
from domain.reports import Report
from domain.users import PasswordReset, User

V = TypeVar("V")

Undo = Callable[[], None]
_journal: ContextVar[list[Undo] | None] = ContextVar("memory_journal", default=None)


class MemoryTable(Generic[V]):
    """Rows by id; writes inside a transaction can be undone."""

    def __init__(self) -> None:
        self._rows: dict[UUID, V] = {}

    def put(self, row_id: UUID, row: V) -> None:
        journal = _journal.get()
        if journal is not None:
            journal.append(self._restorer(row_id))
        self._rows[row_id] = row

    def get(self, row_id: UUID) -> V | None:
        return self._rows.get(row_id)

    def __iter__(self) -> Iterator[V]:
        return iter(list(self._rows.values()))

    def _restorer(self, row_id: UUID) -> Undo:
        if row_id in self._rows:
            previous = self._rows[row_id]

            def restore() -> None:
                self._rows[row_id] = previous
        else:

            def restore() -> None:
                self._rows.pop(row_id, None)

        return restore


class MemoryTransaction:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    @property
    def jobs(self) -> JobService:
        return self._jobs


class InMemoryUnitOfWork:
    """Transactions over the in-memory repositories: a rollback undoes their writes.

    Jobs do not join: `tx.jobs` is the job port itself, so jobs are created at once and a
    rollback leaves them (the memory job backend has no transaction to share).
    """

    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Transaction]:
        if _journal.get() is not None:
            raise RuntimeError("a business transaction is already open in this task")
        journal: list[Undo] = []
        token = _journal.set(journal)
        try:
            yield MemoryTransaction(self._jobs)
        except BaseException:
            for undo in reversed(journal):
                undo()
            raise
        finally:
            _journal.reset(token)


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
