"""Jobs may have a deadline: not started by then, they are deleted as expired.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from infrastructure.jobs.sql.tables import UTCDateTime, partial

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _names() -> tuple[str | None, str]:
    attributes = context.config.attributes
    return attributes.get("schema"), attributes.get("prefix", "")


def upgrade() -> None:
    schema, p = _names()
    op.add_column(p + "jobs", sa.Column("expires_at", UTCDateTime()), schema=schema)
    op.create_index(
        f"ix_{p}jobs_expires_at",
        p + "jobs",
        ["expires_at"],
        schema=schema,
        **partial("expires_at IS NOT NULL"),
    )


def downgrade() -> None:
    schema, p = _names()
    op.drop_index(f"ix_{p}jobs_expires_at", table_name=p + "jobs", schema=schema)
    op.drop_column(p + "jobs", "expires_at", schema=schema)
