"""Orders.

Revision ID: b0002
Revises: b0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infrastructure.persistence.sql.metadata import DecimalText, EmailAddress, UTCDateTime

revision = "b0002"
down_revision = "b0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("customer_email", EmailAddress, nullable=False),
        sa.Column("total", DecimalText(), nullable=False),
        sa.Column("placed_at", UTCDateTime(), nullable=False),
        sa.Column("cancelled_at", UTCDateTime()),
        sa.Column("confirmed_at", UTCDateTime()),
        sa.Column("review_requested_at", UTCDateTime()),
    )
    op.create_index("ix_orders_placed_at", "orders", ["placed_at"])


def downgrade() -> None:
    op.drop_table("orders")
