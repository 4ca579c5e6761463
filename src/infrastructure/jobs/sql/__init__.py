"""The SQL job store on SQLAlchemy 2: SQLite, PostgreSQL, MariaDB, SQL Server."""
