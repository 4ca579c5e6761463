"""The sample domain's tables: users, password resets, invoices, subscriptions, reports and
notifications.

Revision ID: b0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infrastructure.persistence.sql.metadata import DecimalText, EmailAddress, UTCDateTime

revision = "b0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", EmailAddress, nullable=False),
        sa.Column("email_key", EmailAddress, nullable=False),
        sa.Column("name", sa.UnicodeText(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("welcomed_at", UTCDateTime()),
    )
    op.create_index("ix_users_email_key", "users", ["email_key"])
    op.create_index("ix_users_registered_at", "users", ["registered_at"])
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.Unicode(200), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime()),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("customer_email", EmailAddress, nullable=False),
        sa.Column("amount", DecimalText(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("paid", sa.Boolean(), nullable=False),
        sa.Column("reminder_sent_at", UTCDateTime()),
        sa.Column("subscription_id", sa.Uuid()),
        sa.Column("period", sa.Date()),
    )
    op.create_index("ix_invoices_issued_at", "invoices", ["issued_at"])
    op.create_index("ix_invoices_paid_due_at", "invoices", ["paid", "due_at"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("customer_email", EmailAddress, nullable=False),
        sa.Column("monthly_fee", DecimalText(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("period_end", UTCDateTime(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("recipient", EmailAddress),
        sa.Column("content", sa.UnicodeText()),
        sa.Column("generated_at", UTCDateTime()),
        sa.Column("emailed_at", UTCDateTime()),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("message", sa.UnicodeText(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("bulk_id", sa.Uuid()),
    )
    op.create_index(
        "ix_notifications_user_id_created_at", "notifications", ["user_id", "created_at"]
    )
    op.create_index("ix_notifications_bulk_id", "notifications", ["bulk_id"])


def downgrade() -> None:
    for table in (
        "notifications",
        "reports",
        "subscriptions",
        "invoices",
        "password_resets",
        "users",
    ):
        op.drop_table(table)
