"""The business tables and SQL repositories (SQLAlchemy 2), on the service's database.

Each feature's module declares its tables on `metadata.metadata` and its repositories; the
business migrations (`migrations/`) create the tables, in their own Alembic chain beside the
job store's (see docs/persistence.md).
"""
