"""Reports asked for by users: generated in the background, then emailed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID, uuid4

from application.jobs import JobId
from application.unit_of_work import UnitOfWork
from domain.clock import Clock
from domain.reports import Report, ReportJobs, ReportKind, ReportRepository


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRequested:
    report_id: UUID
    generate_job_id: JobId
    email_job_id: JobId


class RequestReport:
    """Generate an activity report of a period, then email it: a chain of two jobs, the
    email a continuation that runs once the generation succeeded. The report and both jobs are
    written in one transaction."""

    def __init__(self, uow: UnitOfWork, reports: ReportRepository, clock: Clock) -> None:
        self._uow = uow
        self._reports = reports
        self._clock = clock

    async def __call__(
        self, recipient: str, period_start: dt.datetime, period_end: dt.datetime
    ) -> ReportRequested:
        """Raises:
        ValueError: the period is empty or its bounds are naive datetimes.
        """
        report = Report(
            id=uuid4(),
            kind=ReportKind.ON_DEMAND,
            period_start=period_start,
            period_end=period_end,
            requested_at=self._clock.now(),
            recipient=recipient,
        )
        async with self._uow.begin() as tx:
            await self._reports.add(report)
            generate = await tx.jobs.enqueue(ReportJobs.generate, report.id)
            email = await tx.jobs.continue_with(generate, ReportJobs.email_report, report.id)
        return ReportRequested(report_id=report.id, generate_job_id=generate, email_job_id=email)
