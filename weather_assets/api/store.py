"""Reads of the predictions and forecasts tables on the event loop, through an asyncio driver (asyncmy, aiosqlite).

The configured URL keeps its blocking driver (``mysql+pymysql://...``); the store swaps in the asyncio one.
Reads autocommit, so a pooled connection needs no rollback on return; a connection the server dropped is
replaced and the read retried once, instead of a ping before every read. The API never creates a table (it
reads as a read-only account): a table the pipeline has not created yet has no rows.

An SQLite file is looked at about once a second (one stat): its pooled connections keep the file they opened, so
a file replaced under them (a backup restored, the platform reset) would be served until a restart. Replaced, the
connections are closed and reads open the new file; deleted, it has no rows and no read opens (so recreates) it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from weather_assets.domain.hours import kst_now
from weather_assets.domain.tables import FORECASTS, PREDICTIONS, forecasts_table

log = logging.getLogger("uvicorn.error.weather_api")
ASYNC_DRIVERS = {"mysql": "asyncmy", "mariadb": "asyncmy", "sqlite": "aiosqlite"}
FILE_CHECK_SECONDS = 1.0  # how stale an SQLite file's identity may be: a replaced file is read within this


def sqlite_file(url: str | sa.URL) -> Path | None:
    """The file an SQLite URL names; None for a database server or an in-memory database."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _identity(file: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino): a file put in place of another has a new one while the old one is open; None if absent."""
    try:
        status = file.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def async_url(url: str) -> sa.URL:
    """The same database through its asyncio driver, for the request path."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"the read API serves MySQL, MariaDB or SQLite databases, not {backend!r}")
    return parsed.set(drivername=f"{backend}+{ASYNC_DRIVERS[backend]}")


def reader_engine(url: str) -> AsyncEngine:
    sqlite = url.startswith("sqlite")
    return create_async_engine(
        async_url(url),
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        pool_recycle=3600,
        **({"connect_args": {"timeout": 30}} if sqlite else {"pool_size": 25, "max_overflow": 5}),
    )


def _selected(table: sa.Table, lacking: Collection[str]) -> list[sa.ColumnElement[Any]]:
    """The table's columns, those in `lacking` (lineage a table not yet migrated lacks) read as NULL."""
    return [sa.null().label(column.name) if column.name in lacking else column for column in table.c]


def _statements(table: sa.Table, lacking: Collection[str] = ()) -> dict[str, sa.Select]:
    """The API's reads, built once (again when the table's columns turn out to differ); values are bound per
    request (never formatted into SQL)."""
    c, columns = table.c, _selected(table, lacking)
    station = c.station_id == sa.bindparam("station_id")
    return {
        "at": sa.select(*columns).where(c.prediction_datetime == sa.bindparam("hour"), station),
        "latest": sa.select(*columns)
        .where(station, c.prediction_datetime <= sa.bindparam("hour"))
        .order_by(c.prediction_datetime.desc())
        .limit(sa.bindparam("count")),
        "history": sa.select(*columns)
        .where(station, c.prediction_datetime.between(sa.bindparam("first"), sa.bindparam("last")))
        .order_by(c.prediction_datetime),
        "newest": sa.select(sa.func.max(c.prediction_datetime)),
    }


def _forecast_statements(table: sa.Table, lacking: Collection[str] = ()) -> dict[str, sa.Select]:
    """A station's hours first..last, each from the newest issue that forecasts it: one statement (the newest
    issue per hour, joined back to its row), so a newer issue that starts after an hour never hides it."""
    c = table.c
    station = c.station_id == sa.bindparam("station_id")
    newest = (
        sa.select(c.forecast_datetime, sa.func.max(c.issued_at).label("issued_at"))
        .where(station, c.forecast_datetime.between(sa.bindparam("first"), sa.bindparam("last")))
        .group_by(c.forecast_datetime)
        .subquery("newest")
    )
    joined = table.join(
        newest, sa.and_(c.forecast_datetime == newest.c.forecast_datetime, c.issued_at == newest.c.issued_at)
    )
    columns = _selected(table, lacking)
    return {"issue": sa.select(*columns).select_from(joined).where(station).order_by(c.forecast_datetime)}


def _version_statement(table: sa.Table, time_column: str) -> sa.Select:
    """The table's newest write and newest hour (or issue): two index lookups, as scalar subqueries so that
    SQLite, which shortcuts only a lone MAX, reads each from its index."""
    newest = [sa.select(sa.func.max(table.c[column])).scalar_subquery() for column in ("updated_at", time_column)]
    return sa.select(*newest)


def _lacking(connection: sa.Connection, table: str, lineage: Collection[str]) -> set[str] | None:
    """The `lineage` columns `table` lacks, or None when there is no such table."""
    inspector = sa.inspect(connection)
    if not inspector.has_table(table):
        return None
    return set(lineage) - {column["name"] for column in inspector.get_columns(table)}


class Store:
    """The predictions and forecasts tables, read-only. Before its first materialization a table does not exist:
    no rows (whether it exists is asked again until it does). A table created before the lineage columns (the API
    deployed before the pipeline that adds them) is read with NULL lineage; whether it has them yet is asked again
    at most every `FILE_CHECK_SECONDS`, so the lineage is served soon after the pipeline's first write adds it."""

    def __init__(self, reader: AsyncEngine) -> None:
        self.reader = reader
        self.table = PREDICTIONS.table()
        self.forecasts = forecasts_table()
        self.statements = _statements(self.table) | _forecast_statements(self.forecasts)
        self.statements |= {
            f"version:{self.table.name}": _version_statement(self.table, "prediction_datetime"),
            f"version:{self.forecasts.name}": _version_statement(self.forecasts, "issued_at"),
        }
        self._tables = {name: self.table.name for name in self.statements}
        self._tables |= {name: self.forecasts.name for name in ("issue", f"version:{self.forecasts.name}")}
        self._existing: set[str] = set()
        self._without: dict[str, set[str]] = {}  # the lineage columns each table is read without (it lacks them)
        self._looked: dict[str, float] = {}  # when a table read without lineage was last looked at (monotonic)
        self.file = sqlite_file(reader.url)
        self._opened: tuple[int, int] | None = None  # the identity of the file the pool's connections read
        self._checked = -math.inf  # monotonic time of the last look at the file
        self.reopened_at: datetime | None = None  # KST time a replaced (or re-created) file was last reopened

    async def present(self) -> bool:
        """Whether the database is there to read: a server always is (it answers or errs); an SQLite file that
        is there is looked at again after `FILE_CHECK_SECONDS` (a missing one at every read: nothing is served
        meanwhile, and the pipeline's first write is read at once), and a new one is read from then on."""
        if self.file is None:
            return True
        now = time.monotonic()
        if self._opened is None or now - self._checked >= FILE_CHECK_SECONDS:
            first, self._checked = self._checked == -math.inf, now
            identity = _identity(self.file)
            if identity != self._opened:
                self._opened = identity  # before awaiting: concurrent reads neither look again nor dispose twice
                self._existing.clear()
                if not first:
                    self._reopen(identity is not None)
                await self.reader.dispose()  # the connections to the file that was there
        return self._opened is not None

    def _reopen(self, present: bool) -> None:
        if present:
            self.reopened_at = kst_now()
            log.warning("the SQLite file %s is a new file; reading it", self.file)
        else:
            log.error("the SQLite file %s was deleted; it has no rows until the pipeline writes one", self.file)

    async def ready(self, table: str = PREDICTIONS.name) -> bool:
        looked = self._looked.get(table)
        if table not in self._existing or (looked is not None and time.monotonic() - looked >= FILE_CHECK_SECONDS):
            spec = FORECASTS if table == self.forecasts.name else PREDICTIONS
            async with self.reader.connect() as connection:
                lacking = await connection.run_sync(lambda sync: _lacking(sync, table, spec.lineage))
            if lacking is not None:
                self._existing.add(table)
                self._read_without(table, lacking)
        return table in self._existing

    def _read_without(self, table: str, lacking: set[str]) -> None:
        """The table's reads rebuilt to read the lineage columns it lacks as NULL, or all columns once it has them."""
        if lacking != self._without.get(table, set()):
            if table == self.forecasts.name:
                self.statements |= _forecast_statements(self.forecasts, lacking)
            else:
                self.statements |= _statements(self.table, lacking)
            self._without[table] = lacking
        if lacking:
            self._looked[table] = time.monotonic()
        else:
            self._looked.pop(table, None)

    async def _rows(self, name: str, **values: Any) -> list[dict[str, Any]]:
        if not await self.present() or not await self.ready(self._tables[name]):
            return []
        try:
            return await self._execute(name, values)
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
            return await self._execute(name, values)

    async def _execute(self, name: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.reader.connect() as connection:
            return [dict(row) for row in (await connection.execute(self.statements[name], values)).mappings()]

    async def at(self, hour: datetime, station_id: int) -> dict[str, Any] | None:
        rows = await self._rows("at", hour=hour, station_id=station_id)
        return rows[0] if rows else None

    async def latest(self, station_id: int, hour: datetime, count: int = 1) -> list[dict[str, Any]]:
        """The station's newest `count` stored hours at or before `hour`, newest first."""
        return await self._rows("latest", station_id=station_id, hour=hour, count=count)

    async def history(self, station_id: int, first: datetime, last: datetime) -> list[dict[str, Any]]:
        return await self._rows("history", station_id=station_id, first=first, last=last)

    async def newest(self) -> datetime | None:
        rows = await self._rows("newest")
        return next(iter(rows[0].values())) if rows else None

    async def version(self, table: str) -> tuple[Any, ...]:
        """What changes when `table` is written: the file read (SQLite), the lineage columns read as NULL (fewer
        once a write has added them), its newest `updated_at` and its newest hour (forecasts: issue); Nones while
        the table does not exist."""
        rows = await self._rows(f"version:{table}")
        lacking = tuple(sorted(self._without.get(table, ())))
        return (self._opened, lacking, *(rows[0].values() if rows else (None, None)))

    async def forecast(self, station_id: int, first: datetime, last: datetime) -> list[dict[str, Any]]:
        """The station's forecast hours first..last, each from the newest issue that forecasts it, earliest first."""
        return await self._rows("issue", station_id=station_id, first=first, last=last)
