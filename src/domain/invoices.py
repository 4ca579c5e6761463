"""Invoices: monthly billing of subscriptions and reminders before they fall due."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from uuid import UUID, uuid5

from domain.clock import Clock, require_aware
from domain.errors import InvalidValue, NotFound
from domain.jobs import JobContext
from domain.users import EmailSender

PAYMENT_TERMS = dt.timedelta(days=14)
"""How long after it is issued a monthly invoice falls due."""

REMINDER_LEAD = dt.timedelta(hours=24)
"""How long before an invoice falls due its reminder is sent."""

_MONTHLY_INVOICE_NAMESPACE = UUID("3f1c8a52-5a9e-4d59-9a55-1f0b6e0c7d21")


class InvoiceNotFound(NotFound):
    type = "invoice-not-found"
    kind = "invoice"


@dataclass(frozen=True, slots=True, kw_only=True)
class Invoice:
    id: UUID
    customer_email: str
    amount: Decimal
    issued_at: dt.datetime
    due_at: dt.datetime
    paid: bool = False
    reminder_sent_at: dt.datetime | None = None
    subscription_id: UUID | None = None
    period: dt.date | None = None
    """The first day of the billed month, for monthly invoices."""

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise InvalidValue(f"an invoice amount must be positive, got {self.amount}")
        require_aware("issued_at", self.issued_at)
        require_aware("due_at", self.due_at)
        require_aware("reminder_sent_at", self.reminder_sent_at)

    @property
    def reminder_due_at(self) -> dt.datetime:
        return self.due_at - REMINDER_LEAD

    def needs_reminder(self) -> bool:
        return not self.paid and self.reminder_sent_at is None

    def reminded(self, at: dt.datetime) -> Invoice:
        return dataclasses.replace(self, reminder_sent_at=at)

    def mark_paid(self) -> Invoice:
        return dataclasses.replace(self, paid=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """A customer billed a fixed fee every month while the subscription is active."""

    id: UUID
    customer_email: str
    monthly_fee: Decimal
    active: bool = True


def monthly_invoice_id(subscription_id: UUID, period: dt.date) -> UUID:
    """The same id for the same subscription and month, so billing twice changes nothing."""
    return uuid5(_MONTHLY_INVOICE_NAMESPACE, f"{subscription_id}:{period.isoformat()}")


def month_of(instant: dt.datetime) -> dt.date:
    """The first day of the UTC month containing `instant`."""
    return instant.astimezone(dt.UTC).date().replace(day=1)


class InvoiceRepository(Protocol):
    """Issued invoices."""

    async def add(self, invoice: Invoice) -> None:
        """Store a new invoice, or replace the stored one with the same id."""

    async def get(self, invoice_id: UUID) -> Invoice | None:
        """The invoice with this id, or None."""

    async def list_issued_between(self, start: dt.datetime, end: dt.datetime) -> list[Invoice]:
        """Invoices issued in `[start, end)`, oldest first."""

    async def list_unpaid(self) -> list[Invoice]:
        """Every invoice not paid yet, by due date."""


class SubscriptionRepository(Protocol):
    """Customers' subscriptions."""

    async def add(self, subscription: Subscription) -> None:
        """Store a new subscription, or replace the stored one with the same id."""

    async def list_active(self) -> list[Subscription]:
        """Active subscriptions, in a stable order."""


class InvoiceJobs:
    """Billing work: the monthly run and the reminders."""

    def __init__(
        self,
        invoices: InvoiceRepository,
        subscriptions: SubscriptionRepository,
        email: EmailSender,
        clock: Clock,
        context: JobContext,
    ) -> None:
        self._invoices = invoices
        self._subscriptions = subscriptions
        self._email = email
        self._clock = clock
        self._context = context

    async def send_reminder(self, invoice_id: UUID) -> bool:
        """Remind the customer of an unpaid invoice, once. Returns False, sending nothing,
        when the invoice is paid or was already reminded.

        Raises:
            InvoiceNotFound: no invoice has this id.
        """
        invoice = await self._invoices.get(invoice_id)
        if invoice is None:
            raise InvoiceNotFound(invoice_id)
        if not invoice.needs_reminder():
            self._context.logger.info("invoice %s needs no reminder", invoice_id)
            return False
        await self._email.send(
            invoice.customer_email,
            "Your invoice is due tomorrow",
            f"Invoice {invoice.id} of {invoice.amount} is due on "
            f"{invoice.due_at:%Y-%m-%d %H:%M} UTC.",
        )
        await self._invoices.add(invoice.reminded(self._clock.now()))
        return True

    async def generate_monthly(self, period: dt.date | None = None) -> int:
        """Invoice every active subscription for `period` (the first of a month; by default
        the current month). Subscriptions already billed for it are skipped, so a rerun is
        harmless. Returns how many invoices were issued."""
        month = period.replace(day=1) if period else month_of(self._clock.now())
        subscriptions = await self._subscriptions.list_active()
        issued = 0
        for done, subscription in enumerate(subscriptions, start=1):
            issued += await self._bill(subscription, month)
            self._context.report_progress(100 * done / len(subscriptions))
        self._context.logger.info("issued %d invoice(s) for %s", issued, f"{month:%Y-%m}")
        return issued

    async def _bill(self, subscription: Subscription, month: dt.date) -> bool:
        invoice_id = monthly_invoice_id(subscription.id, month)
        if await self._invoices.get(invoice_id) is not None:
            return False
        now = self._clock.now()
        await self._invoices.add(
            Invoice(
                id=invoice_id,
                customer_email=subscription.customer_email,
                amount=subscription.monthly_fee,
                issued_at=now,
                due_at=now + PAYMENT_TERMS,
                subscription_id=subscription.id,
                period=month,
            )
        )
        return True
