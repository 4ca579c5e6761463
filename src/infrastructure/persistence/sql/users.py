"""Users and password resets in SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from domain.users import PasswordReset, User
from infrastructure.persistence.sql.metadata import EmailAddress, UTCDateTime, metadata
from infrastructure.persistence.sql.rows import upsert
from infrastructure.persistence.sql.session import SqlDatabase

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("email", EmailAddress, nullable=False),
    sa.Column("email_key", EmailAddress, nullable=False, index=True),
    sa.Column("name", sa.UnicodeText(), nullable=False),
    sa.Column("registered_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("welcomed_at", UTCDateTime()),
)
"""`email_key` is the address case-folded: lookups by address ignore case."""

password_resets = sa.Table(
    "password_resets",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("user_id", sa.Uuid(), nullable=False),
    sa.Column("token", sa.Unicode(200), nullable=False),
    sa.Column("requested_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime()),
)


class SqlUserRepository:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def add(self, user: User) -> None:
        values = _user_values(user)
        await self._database.run(lambda session: upsert(session, users, values))

    async def get(self, user_id: UUID) -> User | None:
        return await self._one(users.c.id == user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self._one(users.c.email_key == email.casefold())

    async def count_registered_between(self, start: dt.datetime, end: dt.datetime) -> int:
        query = sa.select(sa.func.count()).where(
            users.c.registered_at >= start, users.c.registered_at < end
        )
        return await self._database.run(lambda session: session.scalar(query) or 0)

    async def _one(self, condition: sa.ColumnElement[bool]) -> User | None:
        query = sa.select(users).where(condition).order_by(users.c.registered_at).limit(1)
        row = await self._database.run(lambda session: session.execute(query).first())
        return None if row is None else _user(row._mapping)


class SqlPasswordResetRepository:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def add(self, reset: PasswordReset) -> None:
        values = {
            "id": reset.id,
            "user_id": reset.user_id,
            "token": reset.token,
            "requested_at": reset.requested_at,
            "expires_at": reset.expires_at,
            "used_at": reset.used_at,
        }
        await self._database.run(lambda session: upsert(session, password_resets, values))

    async def get(self, reset_id: UUID) -> PasswordReset | None:
        query = sa.select(password_resets).where(password_resets.c.id == reset_id)
        row = await self._database.run(lambda session: session.execute(query).first())
        return None if row is None else PasswordReset(**row._mapping)


def _user_values(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "email_key": user.email.casefold(),
        "name": user.name,
        "registered_at": user.registered_at,
        "welcomed_at": user.welcomed_at,
    }


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        registered_at=row["registered_at"],
        welcomed_at=row["welcomed_at"],
    )
