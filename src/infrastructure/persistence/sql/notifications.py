"""Notifications in SQL."""

from __future__ import annotations

import dataclasses
from uuid import UUID

import sqlalchemy as sa

from domain.notifications import Notification
from infrastructure.persistence.sql.metadata import UTCDateTime, metadata
from infrastructure.persistence.sql.rows import upsert
from infrastructure.persistence.sql.session import SqlDatabase

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("user_id", sa.Uuid(), nullable=False),
    sa.Column("message", sa.UnicodeText(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("bulk_id", sa.Uuid()),
    sa.Index(None, "user_id", "created_at"),
    sa.Index(None, "bulk_id"),
)


class SqlNotificationRepository:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def add(self, notification: Notification) -> None:
        values = dataclasses.asdict(notification)
        await self._database.run(lambda session: upsert(session, notifications, values))

    async def list_for_user(self, user_id: UUID) -> list[Notification]:
        query = (
            sa.select(notifications)
            .where(notifications.c.user_id == user_id)
            .order_by(notifications.c.created_at, notifications.c.id)
        )
        rows = await self._database.run(lambda session: session.execute(query).all())
        return [Notification(**row._mapping) for row in rows]

    async def count_for_bulk(self, bulk_id: UUID) -> int:
        query = sa.select(sa.func.count()).where(notifications.c.bulk_id == bulk_id)
        return await self._database.run(lambda session: session.scalar(query) or 0)
