"""Activity reports: what happened in a period (new users, invoicing), generated in the
background and emailed to whoever asked."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol
from uuid import UUID, uuid5

from domain.clock import Clock, require_aware
from domain.errors import Conflict, InvalidValue, NotFound
from domain.invoices import Invoice, InvoiceRepository
from domain.users import EmailSender, UserRepository

_DAILY_REPORT_NAMESPACE = UUID("8b0d6f3e-2f44-4a0b-b7a5-4c1e9d2a6e10")


class ReportNotFound(NotFound):
    type = "report-not-found"
    kind = "report"


class ReportNotGenerated(Conflict):
    """The report's content does not exist yet (its generation has not run)."""

    type = "report-not-generated"

    def __init__(self, report_id: UUID) -> None:
        super().__init__(f"report {report_id} has not been generated yet")
        self.report_id = report_id


class ReportKind(StrEnum):
    DAILY = "daily"
    ON_DEMAND = "on_demand"


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """A report of `[period_start, period_end)`; `content` is None until generated."""

    id: UUID
    kind: ReportKind
    period_start: dt.datetime
    period_end: dt.datetime
    requested_at: dt.datetime
    recipient: str | None = None
    content: str | None = None
    generated_at: dt.datetime | None = None
    emailed_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        for name in ("period_start", "period_end", "requested_at", "generated_at", "emailed_at"):
            require_aware(name, getattr(self, name))
        if self.period_end <= self.period_start:
            raise InvalidValue("a report period must end after it starts")

    def generated(self, content: str, at: dt.datetime) -> Report:
        return dataclasses.replace(self, content=content, generated_at=at)

    def emailed(self, at: dt.datetime) -> Report:
        return dataclasses.replace(self, emailed_at=at)


def daily_report_id(day: dt.date) -> UUID:
    """One daily report per UTC day, whatever how often its job runs."""
    return uuid5(_DAILY_REPORT_NAMESPACE, day.isoformat())


class ReportRepository(Protocol):
    """Requested and generated reports."""

    async def add(self, report: Report) -> None:
        """Store a new report, or replace the stored one with the same id."""

    async def get(self, report_id: UUID) -> Report | None:
        """The report with this id, or None."""


class ReportJobs:
    """Generates reports from the users and invoices, and emails them."""

    def __init__(
        self,
        reports: ReportRepository,
        users: UserRepository,
        invoices: InvoiceRepository,
        email: EmailSender,
        clock: Clock,
    ) -> None:
        self._reports = reports
        self._users = users
        self._invoices = invoices
        self._email = email
        self._clock = clock

    async def generate(self, report_id: UUID) -> None:
        """Compute and store the report's content; an already generated report is kept.

        Raises:
            ReportNotFound: no report has this id.
        """
        report = await self._report(report_id)
        if report.content is None:
            await self._generate(report)

    async def email_report(self, report_id: UUID) -> bool:
        """Email a generated report to its recipient, once. Returns False when it was already
        emailed or has no recipient.

        Raises:
            ReportNotFound: no report has this id.
            ReportNotGenerated: its content is not there yet.
        """
        report = await self._report(report_id)
        if report.content is None:
            raise ReportNotGenerated(report_id)
        if report.recipient is None or report.emailed_at is not None:
            return False
        await self._email.send(report.recipient, _subject(report), report.content)
        await self._reports.add(report.emailed(self._clock.now()))
        return True

    async def generate_daily(self) -> UUID:
        """Generate the report of the previous UTC day, once; returns its id."""
        today = self._clock.now().astimezone(dt.UTC).date()
        day = today - dt.timedelta(days=1)
        report_id = daily_report_id(day)
        if await self._reports.get(report_id) is None:
            start = dt.datetime.combine(day, dt.time(), dt.UTC)
            report = Report(
                id=report_id,
                kind=ReportKind.DAILY,
                period_start=start,
                period_end=start + dt.timedelta(days=1),
                requested_at=self._clock.now(),
            )
            await self._generate(report)
        return report_id

    async def _generate(self, report: Report) -> None:
        content = await self._content(report.period_start, report.period_end)
        await self._reports.add(report.generated(content, self._clock.now()))

    async def _content(self, start: dt.datetime, end: dt.datetime) -> str:
        new_users = await self._users.count_registered_between(start, end)
        issued = await self._invoices.list_issued_between(start, end)
        unpaid = await self._invoices.list_unpaid()
        return "\n".join(
            [
                f"Activity from {start.isoformat()} to {end.isoformat()}",
                f"New users: {new_users}",
                f"Invoices issued: {len(issued)}, totalling {_total(issued)}",
                f"Invoices unpaid: {len(unpaid)}, totalling {_total(unpaid)}",
            ]
        )

    async def _report(self, report_id: UUID) -> Report:
        report = await self._reports.get(report_id)
        if report is None:
            raise ReportNotFound(report_id)
        return report


def _subject(report: Report) -> str:
    start, end = report.period_start, report.period_end
    return f"Activity report {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"


def _total(invoices: list[Invoice]) -> Decimal:
    return sum((invoice.amount for invoice in invoices), Decimal(0))
