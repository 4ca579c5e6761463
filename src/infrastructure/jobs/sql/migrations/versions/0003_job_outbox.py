"""The outbox: a message per job that became enqueued, written in the same transaction, for a
relay to publish to a broker (the dramatiq adapter; other adapters leave it empty).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from infrastructure.jobs.sql.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _names() -> tuple[str | None, str]:
    attributes = context.config.attributes
    return attributes.get("schema"), attributes.get("prefix", "")


def upgrade() -> None:
    schema, p = _names()
    table = f"{p}job_outbox"
    op.create_table(
        table,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("queue", sa.Unicode(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint("job_id", name=f"uq_{table}_job_id"),
        schema=schema,
    )
    op.create_index(f"ix_{table}_sent_at_id", table, ["sent_at", "id"], schema=schema)


def downgrade() -> None:
    schema, p = _names()
    table = f"{p}job_outbox"
    op.drop_index(f"ix_{table}_sent_at_id", table_name=table, schema=schema)
    op.drop_table(table, schema=schema)
