"""Reports in SQL."""

from __future__ import annotations

import dataclasses
from uuid import UUID

import sqlalchemy as sa

from domain.reports import Report, ReportKind
from infrastructure.persistence.sql.metadata import EmailAddress, UTCDateTime, metadata
from infrastructure.persistence.sql.rows import upsert
from infrastructure.persistence.sql.session import SqlDatabase

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("period_start", UTCDateTime(), nullable=False),
    sa.Column("period_end", UTCDateTime(), nullable=False),
    sa.Column("requested_at", UTCDateTime(), nullable=False),
    sa.Column("recipient", EmailAddress),
    sa.Column("content", sa.UnicodeText()),
    sa.Column("generated_at", UTCDateTime()),
    sa.Column("emailed_at", UTCDateTime()),
)


class SqlReportRepository:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def add(self, report: Report) -> None:
        values = {**dataclasses.asdict(report), "kind": report.kind.value}
        await self._database.run(lambda session: upsert(session, reports, values))

    async def get(self, report_id: UUID) -> Report | None:
        query = sa.select(reports).where(reports.c.id == report_id)
        row = await self._database.run(lambda session: session.execute(query).first())
        if row is None:
            return None
        values = dict(row._mapping)
        return Report(**{**values, "kind": ReportKind(values["kind"])})
