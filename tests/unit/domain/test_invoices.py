from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.invoices import (
    PAYMENT_TERMS,
    Invoice,
    InvoiceJobs,
    InvoiceNotFound,
    Subscription,
    monthly_invoice_id,
)
from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.clock import FakeClock
from infrastructure.persistence.memory import (
    InMemoryInvoiceRepository,
    InMemorySubscriptionRepository,
)
from tests.unit.domain.fakes import RecordingContext


@pytest.fixture
def jobs(invoices, subscriptions, email, clock, context) -> InvoiceJobs:
    return InvoiceJobs(invoices, subscriptions, email, clock, context)


@pytest.fixture
async def invoice(invoices: InMemoryInvoiceRepository, clock: FakeClock) -> Invoice:
    stored = Invoice(
        id=uuid4(),
        customer_email="billing@acme.test",
        amount=Decimal("120.50"),
        issued_at=clock.now(),
        due_at=clock.now() + dt.timedelta(days=3),
    )
    await invoices.add(stored)
    return stored


def test_an_invoice_needs_an_aware_due_date(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="due_at must be timezone-aware"):
        Invoice(
            id=uuid4(),
            customer_email="a@b.c",
            amount=Decimal(1),
            issued_at=clock.now(),
            due_at=dt.datetime(2026, 4, 1),
        )


def test_an_invoice_amount_is_positive(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="positive"):
        Invoice(
            id=uuid4(),
            customer_email="a@b.c",
            amount=Decimal(0),
            issued_at=clock.now(),
            due_at=clock.now(),
        )


def test_the_reminder_is_due_a_day_before_the_invoice(invoice: Invoice) -> None:
    assert invoice.reminder_due_at == invoice.due_at - dt.timedelta(hours=24)


async def test_reminder_is_sent_once_for_an_unpaid_invoice(
    jobs: InvoiceJobs, invoice: Invoice, email: LoggingEmailSender
) -> None:
    assert await jobs.send_reminder(invoice.id) is True
    assert await jobs.send_reminder(invoice.id) is False

    [message] = email.sent
    assert message.to == "billing@acme.test"
    assert "120.50" in message.body


async def test_reminder_does_nothing_when_the_invoice_is_paid(
    jobs: InvoiceJobs,
    invoice: Invoice,
    invoices: InMemoryInvoiceRepository,
    email: LoggingEmailSender,
    context: RecordingContext,
) -> None:
    await invoices.add(invoice.mark_paid())

    assert await jobs.send_reminder(invoice.id) is False
    assert email.sent == []
    assert context.log_lines == [f"invoice {invoice.id} needs no reminder"]


async def test_reminder_for_an_unknown_invoice_fails(jobs: InvoiceJobs) -> None:
    with pytest.raises(InvoiceNotFound):
        await jobs.send_reminder(uuid4())


async def subscribe(
    subscriptions: InMemorySubscriptionRepository, who: str, fee: str, *, active: bool = True
) -> Subscription:
    subscription = Subscription(
        id=uuid4(), customer_email=who, monthly_fee=Decimal(fee), active=active
    )
    await subscriptions.add(subscription)
    return subscription


async def test_monthly_run_invoices_every_active_subscription(
    jobs: InvoiceJobs,
    subscriptions: InMemorySubscriptionRepository,
    invoices: InMemoryInvoiceRepository,
    clock: FakeClock,
    context: RecordingContext,
) -> None:
    # Given two active subscriptions and a cancelled one
    acme = await subscribe(subscriptions, "acme@example.com", "49.00")
    globex = await subscribe(subscriptions, "globex@example.com", "99.90")
    await subscribe(subscriptions, "gone@example.com", "10.00", active=False)

    # When the monthly run happens
    issued = await jobs.generate_monthly()

    # Then each active subscription has this month's invoice, due after the payment terms
    assert issued == 2
    march = dt.date(2026, 3, 1)
    for subscription in (acme, globex):
        invoice = await invoices.get(monthly_invoice_id(subscription.id, march))
        assert invoice is not None
        assert invoice.customer_email == subscription.customer_email
        assert invoice.amount == subscription.monthly_fee
        assert invoice.due_at == clock.now() + PAYMENT_TERMS
        assert not invoice.paid
    assert len(await invoices.list_unpaid()) == 2
    assert context.progress[-1] == 100
    assert context.log_lines == ["issued 2 invoice(s) for 2026-03"]


async def test_monthly_run_twice_in_a_month_issues_nothing_more(
    jobs: InvoiceJobs,
    subscriptions: InMemorySubscriptionRepository,
    invoices: InMemoryInvoiceRepository,
    clock: FakeClock,
) -> None:
    await subscribe(subscriptions, "acme@example.com", "49.00")
    await jobs.generate_monthly()
    clock.advance(dt.timedelta(days=1))

    assert await jobs.generate_monthly() == 0
    assert len(await invoices.list_unpaid()) == 1


async def test_monthly_run_for_a_given_period(
    jobs: InvoiceJobs,
    subscriptions: InMemorySubscriptionRepository,
    invoices: InMemoryInvoiceRepository,
) -> None:
    acme = await subscribe(subscriptions, "acme@example.com", "49.00")

    assert await jobs.generate_monthly(dt.date(2026, 1, 15)) == 1

    invoice = await invoices.get(monthly_invoice_id(acme.id, dt.date(2026, 1, 1)))
    assert invoice is not None and invoice.period == dt.date(2026, 1, 1)
