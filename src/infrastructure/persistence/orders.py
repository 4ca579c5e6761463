"""Orders: the SQL table and repository, and the in-memory repository (the test adapter)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from uuid import UUID

import sqlalchemy as sa

from domain.orders import Order
from infrastructure.persistence.memory_tables import MemoryTable
from infrastructure.persistence.sql.metadata import DecimalText, EmailAddress, UTCDateTime, metadata
from infrastructure.persistence.sql.rows import upsert
from infrastructure.persistence.sql.session import SqlDatabase

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("customer_email", EmailAddress, nullable=False),
    sa.Column("total", DecimalText(), nullable=False),
    sa.Column("placed_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("cancelled_at", UTCDateTime()),
    sa.Column("confirmed_at", UTCDateTime()),
    sa.Column("review_requested_at", UTCDateTime()),
)


class SqlOrderRepository:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def add(self, order: Order) -> None:
        values = dataclasses.asdict(order)
        await self._database.run(lambda session: upsert(session, orders, values))

    async def get(self, order_id: UUID) -> Order | None:
        found = await self._list(sa.select(orders).where(orders.c.id == order_id))
        return found[0] if found else None

    async def list_placed_between(self, start: dt.datetime, end: dt.datetime) -> list[Order]:
        placed = orders.c.placed_at
        query = sa.select(orders).where(placed >= start, placed < end)
        return await self._list(query.order_by(placed, orders.c.id))

    async def _list(self, query: sa.Select[tuple[object, ...]]) -> list[Order]:
        rows = await self._database.run(lambda session: session.execute(query).all())
        return [Order(**row._mapping) for row in rows]


class InMemoryOrderRepository:
    def __init__(self) -> None:
        self._orders: MemoryTable[Order] = MemoryTable()

    async def add(self, order: Order) -> None:
        self._orders.put(order.id, order)

    async def get(self, order_id: UUID) -> Order | None:
        return self._orders.get(order_id)

    async def list_placed_between(self, start: dt.datetime, end: dt.datetime) -> list[Order]:
        placed = [order for order in self._orders if start <= order.placed_at < end]
        return sorted(placed, key=lambda order: (order.placed_at, str(order.id)))
