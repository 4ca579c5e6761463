"""Invoices and subscriptions in SQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from uuid import UUID

import sqlalchemy as sa

from domain.invoices import Invoice, Subscription
from infrastructure.persistence.sql.metadata import (
    DecimalText,
    EmailAddress,
    UTCDateTime,
    metadata,
)
from infrastructure.persistence.sql.rows import upsert
from infrastructure.persistence.sql.session import SqlDatabase

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("customer_email", EmailAddress, nullable=False),
    sa.Column("amount", DecimalText(), nullable=False),
    sa.Column("issued_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("due_at", UTCDateTime(), nullable=False),
    sa.Column("paid", sa.Boolean(), nullable=False),
    sa.Column("reminder_sent_at", UTCDateTime()),
    sa.Column("subscription_id", sa.Uuid()),
    sa.Column("period", sa.Date()),
    sa.Index(None, "paid", "due_at"),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("customer_email", EmailAddress, nullable=False),
    sa.Column("monthly_fee", DecimalText(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
)


class SqlInvoiceRepository:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def add(self, invoice: Invoice) -> None:
        values = dataclasses.asdict(invoice)
        await self._database.run(lambda session: upsert(session, invoices, values))

    async def get(self, invoice_id: UUID) -> Invoice | None:
        found = await self._list(sa.select(invoices).where(invoices.c.id == invoice_id))
        return found[0] if found else None

    async def list_issued_between(self, start: dt.datetime, end: dt.datetime) -> list[Invoice]:
        issued = invoices.c.issued_at
        query = sa.select(invoices).where(issued >= start, issued < end)
        return await self._list(query.order_by(issued, invoices.c.id))

    async def list_unpaid(self) -> list[Invoice]:
        query = sa.select(invoices).where(invoices.c.paid == sa.false())
        return await self._list(query.order_by(invoices.c.due_at, invoices.c.id))

    async def _list(self, query: sa.Select[tuple[object, ...]]) -> list[Invoice]:
        rows = await self._database.run(lambda session: session.execute(query).all())
        return [Invoice(**row._mapping) for row in rows]


class SqlSubscriptionRepository:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def add(self, subscription: Subscription) -> None:
        values = dataclasses.asdict(subscription)
        await self._database.run(lambda session: upsert(session, subscriptions, values))

    async def list_active(self) -> list[Subscription]:
        query = sa.select(subscriptions).where(subscriptions.c.active == sa.true())
        rows = await self._database.run(
            lambda session: session.execute(query.order_by(subscriptions.c.id)).all()
        )
        return [Subscription(**row._mapping) for row in rows]
