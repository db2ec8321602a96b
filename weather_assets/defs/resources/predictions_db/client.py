"""The connection side of the predictions table: an engine per backend and one transaction with bounded retries.

The role of a Dagster ``DbClient``: nothing here knows frames or Dagster contexts. Errors leave as
`DatabaseWriteError`, which names the server and table but never the password, and chains no driver
exception (its message can carry SQL and rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import dagster as dg
import sqlalchemy as sa

# MySQL error codes worth another attempt: lock wait timeout, deadlock, can't connect, server gone, lost
# connection, too many connections, and a server that is shutting down or starting.
TRANSIENT_CODES = frozenset({1205, 1213, 2003, 2006, 2013, 1040, 1053, 2002})
T = TypeVar("T")


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

    @property
    def where(self) -> str:
        """The table's place, for messages and metadata: backend, host, port, database and table, no password."""
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            return f"sqlite:{url.database} table {self.table.name}"
        return f"{url.get_backend_name()}://{url.host}:{url.port or 3306}/{url.database} table {self.table.name}"

    def ensure_table(self) -> None:
        """Create the table when it is missing (a concurrent creator may win the race: that is fine)."""

        def create(connection: sa.Connection) -> None:
            if not sa.inspect(connection).has_table(self.table.name):
                self.table.create(connection, checkfirst=True)

        try:
            self.transaction(create, "create the table")
        except DatabaseWriteError:
            with self.engine.connect() as connection:
                if not sa.inspect(connection).has_table(self.table.name):
                    raise

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
