"""The business tables' metadata and the column types they share."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from infrastructure.jobs.sql.tables import NAMING_CONVENTION, UTCDateTime

__all__ = ["DecimalText", "EmailAddress", "UTCDateTime", "metadata"]

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
"""Every business table; Alembic's business migrations compare against it."""

EmailAddress = sa.Unicode(320)
"""The longest address SMTP allows."""


class DecimalText(sa.TypeDecorator[Decimal]):
    """An exact decimal, stored as its text on every database (SQLite has no exact numeric
    type, and amounts must not be rounded)."""

    impl = sa.String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)
