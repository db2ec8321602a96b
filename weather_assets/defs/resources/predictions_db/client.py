"""The connection side of the predictions table: an engine per backend and one transaction with bounded retries.

The role of a Dagster ``DbClient``: nothing here knows frames or Dagster contexts. Errors leave as
`DatabaseWriteError`, which names the server and table but never the password, and chains no driver
exception (its message can carry SQL and rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import dagster as dg
import sqlalchemy as sa

# MySQL error codes worth another attempt: lock wait timeout, deadlock, can't connect, server gone, lost
# connection, too many connections, and a server that is shutting down or starting.
TRANSIENT_CODES = frozenset({1205, 1213, 2003, 2006, 2013, 1040, 1053, 2002})
T = TypeVar("T")
# What an operator runs when the account may not ALTER the tables (docs/tables.md).
MIGRATION = "sql/migrations/001_lineage.sql"


class DatabaseWriteError(RuntimeError):
    """The predictions could not be written (or read); the message names the server, never the password."""


def create_engine(url: sa.URL) -> sa.Engine:
    """An engine for a SQLite or MySQL/MariaDB URL; create it once per process, it holds the pool."""
    if url.get_backend_name() == "sqlite":
        Path(url.database or ".").parent.mkdir(parents=True, exist_ok=True)
        return _sqlite_engine(url)
    if url.get_backend_name() in ("mysql", "mariadb"):
        return sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600, paramstyle="format")
    raise ValueError(f"WEATHER_DB_URL must be a mysql or sqlite URL, not {url.get_backend_name()}")


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    """SQLite for concurrent writers: WAL, a long busy timeout, and write locks taken at BEGIN."""
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@dataclass(frozen=True)
class SQLClient:
    """One table on one database: its place for messages, its creation, and transactions retried when transient."""

    engine: sa.Engine
    table: sa.Table
    max_attempts: int
    backoff_seconds: float
    present: set[str] = field(default_factory=set, compare=False)  # columns seen on the server: not asked again

    @property
    def where(self) -> str:
        """The table's place, for messages and metadata: backend, host, port, database and table, no password."""
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            return f"sqlite:{url.database} table {self.table.name}"
        return f"{url.get_backend_name()}://{url.host}:{url.port or 3306}/{url.database} table {self.table.name}"

    def ensure_table(self, lineage: Sequence[str] = ()) -> None:
        """Create the table when it is missing, else add the `lineage` columns it lacks (`migrate`); a concurrent
        creator may win the race: that is fine."""

        def create(connection: sa.Connection) -> bool:
            if sa.inspect(connection).has_table(self.table.name):
                return False
            self.table.create(connection, checkfirst=True)
            return True

        try:
            created = self.transaction(create, "create the table")
        except DatabaseWriteError:
            with self.engine.connect() as connection:
                if not sa.inspect(connection).has_table(self.table.name):
                    raise
            created = False
        if not created:
            self.migrate(lineage)

    def missing(self, columns: Sequence[str]) -> list[str] | None:
        """Which of `columns` the table on the server lacks; None while there is no table."""

        def lacking(connection: sa.Connection) -> list[str] | None:
            inspector = sa.inspect(connection)
            if not inspector.has_table(self.table.name):
                return None
            present = {column["name"] for column in inspector.get_columns(self.table.name)}
            return [column for column in columns if column not in present]

        return self.transaction(lacking, "read the table's columns")

    def migrate(self, columns: Sequence[str]) -> None:
        """Add those of `columns` (nullable) that the table lacks, in place: a table created by an earlier version
        keeps its rows, which read NULL there. One ALTER TABLE on MySQL and MariaDB (a nullable column added at the
        end is instant on MySQL 8 and MariaDB 10.11), one transaction on SQLite. A column that another process
        added meanwhile is fine; an account that may not ALTER gets a message naming the migration to run."""
        asked = [column for column in columns if column not in self.present]
        missing = self.missing(asked) if asked else []
        if missing is None:
            return  # no table yet: it is created whole
        self.present.update(column for column in asked if column not in missing)
        if not missing:
            return

        def add(connection: sa.Connection) -> None:
            for statement in add_columns(self.table, missing, connection.dialect):
                connection.exec_driver_sql(statement)

        try:
            self.transaction(add, f"add the columns {', '.join(missing)}")
        except DatabaseWriteError as error:
            still = self.missing(missing)
            if still:
                raise DatabaseWriteError(
                    f"{self.where} lacks the columns {', '.join(still)} and they could not be added ({error}); "
                    f"run {MIGRATION} as an account that may ALTER the table (docs/tables.md)"
                ) from None
            # else another writer added them meanwhile
        else:
            dg.get_dagster_logger().info(f"{self.where}: added the nullable columns {', '.join(missing)}")
        self.present.update(missing)

    def transaction(self, work: Callable[[sa.Connection], T], what: str) -> T:
        """Run `work` in one transaction; retry the whole of it on a transient error, up to `max_attempts`."""
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self.engine.begin() as connection:
                    return work(connection)
            except sa.exc.DBAPIError as error:
                problem = describe(error)
                if not _transient(error):
                    break
            if attempt < self.max_attempts:
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                dg.get_dagster_logger().warning(
                    f"{what} on {self.where}: {problem}; attempt {attempt}, retry in {delay:g}s"
                )
                time.sleep(delay)
        # Raised outside the except block: the driver's exception, with its SQL and rows, is not chained.
        raise DatabaseWriteError(f"could not {what} on {self.where} (nothing was written): {problem}")


def add_columns(table: sa.Table, names: Sequence[str], dialect: sa.Dialect) -> list[str]:
    """The statements that add `table`'s columns `names`: one ALTER TABLE on MySQL and MariaDB (atomic), one per
    column on SQLite (its ALTER TABLE adds one)."""
    quoted = dialect.identifier_preparer.format_table(table)
    added = [f"ADD COLUMN {sa.schema.CreateColumn(table.c[name]).compile(dialect=dialect)}" for name in names]
    if dialect.name == "sqlite":
        return [f"ALTER TABLE {quoted} {clause}" for clause in added]
    return [f"ALTER TABLE {quoted} {', '.join(added)}"]


def describe(error: sa.exc.DBAPIError) -> str:
    """The driver's error without the statement and parameters SQLAlchemy adds to its own message."""
    return f"{type(error.orig).__name__} {error.orig}"


def _transient(error: sa.exc.DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    args = getattr(error.orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in TRANSIENT_CODES:
        return True
    return "database is locked" in str(error.orig)  # SQLite past its busy timeout
