"""Indexes for retention: the tick ledger by fire time, batches by creation time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = [
    ("recurring_ticks", ("fire_at",)),  # ledger rows past their retention
    ("batches", ("created_at",)),  # batches past their retention
]


def _names() -> tuple[str | None, str]:
    attributes = context.config.attributes
    return attributes.get("schema"), attributes.get("prefix", "")


def _index_name(prefix: str, table: str, columns: tuple[str, ...]) -> str:
    return f"ix_{prefix}{table}_{'_'.join(columns)}"


def upgrade() -> None:
    schema, p = _names()
    for table, columns in INDEXES:
        op.create_index(_index_name(p, table, columns), p + table, list(columns), schema=schema)


def downgrade() -> None:
    schema, p = _names()
    for table, columns in reversed(INDEXES):
        op.drop_index(_index_name(p, table, columns), table_name=p + table, schema=schema)
