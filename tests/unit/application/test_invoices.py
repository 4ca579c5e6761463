from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import uuid4

import pytest

from application.jobs import JobState
from application.use_cases import ScheduleInvoiceReminder
from domain.invoices import Invoice, InvoiceNotFound
from tests.unit.application.conftest import Service


async def invoice_due_in(service: Service, delay: dt.timedelta) -> Invoice:
    now = service.clock.now()
    invoice = Invoice(
        id=uuid4(),
        customer_email="billing@acme.test",
        amount=Decimal("250.00"),
        issued_at=now,
        due_at=now + delay,
    )
    await service.adapters.invoices.add(invoice)
    return invoice


def schedule_reminder(service: Service) -> ScheduleInvoiceReminder:
    return ScheduleInvoiceReminder(service.uow, service.adapters.invoices, service.clock)


async def test_reminder_is_sent_24_hours_before_the_due_date(service: Service) -> None:
    invoice = await invoice_due_in(service, dt.timedelta(days=3))

    job_id = await schedule_reminder(service)(invoice.id)

    job = await service.job(job_id)
    remind_at = invoice.due_at - dt.timedelta(hours=24)
    assert (job.state, job.run_at) == (JobState.SCHEDULED, remind_at)

    service.clock.set(remind_at - dt.timedelta(seconds=1))
    await service.drain()
    assert service.adapters.email.sent == []

    service.clock.set(remind_at)
    await service.drain()
    [message] = service.adapters.email.sent
    assert (message.to, message.subject) == ("billing@acme.test", "Your invoice is due tomorrow")


async def test_reminder_does_nothing_if_the_invoice_was_paid_meanwhile(service: Service) -> None:
    invoice = await invoice_due_in(service, dt.timedelta(days=3))
    job_id = await schedule_reminder(service)(invoice.id)

    # Given the customer pays the next day
    service.clock.advance(dt.timedelta(days=1))
    await service.adapters.invoices.add(invoice.mark_paid())

    # When the reminder comes due, its job succeeds without sending anything
    service.clock.set(invoice.reminder_due_at)
    await service.drain()
    assert await service.state(job_id) is JobState.SUCCEEDED
    assert service.adapters.email.sent == []


async def test_reminder_of_an_invoice_due_within_a_day_is_enqueued_now(service: Service) -> None:
    invoice = await invoice_due_in(service, dt.timedelta(hours=2))

    job_id = await schedule_reminder(service)(invoice.id)

    assert await service.state(job_id) is JobState.ENQUEUED
    assert await service.worker.run_once() == 1
    assert len(service.adapters.email.sent) == 1


async def test_planning_a_reminder_twice_keeps_one_job(service: Service) -> None:
    invoice = await invoice_due_in(service, dt.timedelta(days=3))
    plan = schedule_reminder(service)

    assert await plan(invoice.id) == await plan(invoice.id)


async def test_reminder_of_an_unknown_invoice_is_refused(service: Service) -> None:
    with pytest.raises(InvoiceNotFound):
        await schedule_reminder(service)(uuid4())
