"""Render the schema migrations as SQL, without a database (Alembic's offline `--sql` mode), for
a DBA to review or run by hand:

    python -m infrastructure.jobs.sql.render_sql mssql > jobs-schema.sql
    python -m infrastructure.jobs.sql.render_sql mssql --schema jobs --prefix app_
    python -m infrastructure.jobs.sql.render_sql "$APP_DB__URL"

The first argument is a database (`mssql`, `postgresql`, `mariadb`, `mysql`, `sqlite`) or a
SQLAlchemy URL (only its dialect is used; nothing connects). `--schema` defaults to the
service's default for that database (`jobs` on SQL Server, none elsewhere), like
`APP_DB__SCHEMA_NAME` unset. The script creates the schema (SQL Server), the tables, their
indexes and the `alembic_version` table stamped at head, so `jobs-service migrate` later finds
the schema current.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import command

from infrastructure.jobs.sql.database import default_schema
from infrastructure.jobs.sql.migrate import alembic_config

DIALECT_URLS = {
    "mssql": "mssql+pyodbc://",
    "postgresql": "postgresql+psycopg://",
    "mariadb": "mysql+pymysql://",
    "mysql": "mysql+pymysql://",
    "sqlite": "sqlite://",
}
"""A URL of each database's driver, for the dialect only."""


def render(
    database: str, *, schema: str | None = None, prefix: str = "", revision: str = "head"
) -> str:
    """The SQL that upgrades an empty database of `database` (a name in `DIALECT_URLS` or a
    SQLAlchemy URL) to `revision`; `schema` defaults to `default_schema` of the URL."""
    url = DIALECT_URLS.get(database.lower(), database)
    sa.make_url(url)  # a bad URL fails here, clearly
    config = alembic_config(url=url, schema=schema or default_schema(url), prefix=prefix)
    config.output_buffer = io.StringIO()
    command.upgrade(config, revision, sql=True)
    return config.output_buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infrastructure.jobs.sql.render_sql",
        description="Print the job store's schema migrations as SQL (nothing connects).",
    )
    parser.add_argument("database", help=f"one of {', '.join(DIALECT_URLS)}, or a SQLAlchemy URL")
    parser.add_argument(
        "--schema",
        default=None,
        help="schema of the tables (default: jobs on SQL Server, none elsewhere)",
    )
    parser.add_argument("--prefix", default="", help="prefix of the tables' names")
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.database, schema=args.schema, prefix=args.prefix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
