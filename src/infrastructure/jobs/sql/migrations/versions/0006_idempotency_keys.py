"""Idempotency keys: a repeated call returns the job of the first, for the retention period.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from infrastructure.jobs.sql.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _names() -> tuple[str | None, str]:
    attributes = context.config.attributes
    return attributes.get("schema"), attributes.get("prefix", "")


def upgrade() -> None:
    schema, p = _names()
    op.create_table(
        p + "job_requests",
        sa.Column("idempotency_key", sa.Unicode(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name=f"pk_{p}job_requests"),
        schema=schema,
    )
    op.create_index(f"ix_{p}job_requests_at", p + "job_requests", ["at"], schema=schema)


def downgrade() -> None:
    schema, p = _names()
    op.drop_index(f"ix_{p}job_requests_at", table_name=p + "job_requests", schema=schema)
    op.drop_table(p + "job_requests", schema=schema)
