"""Reminding customers of invoices before they fall due."""

from __future__ import annotations

from uuid import UUID

from application.jobs import JobId
from application.unit_of_work import UnitOfWork
from domain.clock import Clock
from domain.invoices import InvoiceJobs, InvoiceNotFound, InvoiceRepository


class ScheduleInvoiceReminder:
    """Plan the reminder of an invoice 24 hours before it falls due (at once if that moment
    has passed). Planning the same invoice again returns the job already planned."""

    def __init__(self, uow: UnitOfWork, invoices: InvoiceRepository, clock: Clock) -> None:
        self._uow = uow
        self._invoices = invoices
        self._clock = clock

    async def __call__(self, invoice_id: UUID) -> JobId:
        """Returns the reminder job's id.

        Raises:
            InvoiceNotFound: no invoice has this id.
        """
        async with self._uow.begin() as tx:
            invoice = await self._invoices.get(invoice_id)
            if invoice is None:
                raise InvoiceNotFound(invoice_id)
            jobs = tx.jobs.options(unique_key=f"invoice-reminder:{invoice.id}")
            remind_at = invoice.reminder_due_at
            if remind_at <= self._clock.now():
                return await jobs.enqueue(InvoiceJobs.send_reminder, invoice.id)
            return await jobs.schedule(remind_at, InvoiceJobs.send_reminder, invoice.id)
