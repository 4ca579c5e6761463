"""Every business table, for Alembic: importing a feature's module declares its tables."""

from infrastructure.persistence.sql import invoices, notifications, reports, users
from infrastructure.persistence.sql.metadata import metadata

FEATURES = (invoices, notifications, reports, users)

__all__ = ["FEATURES", "metadata"]
