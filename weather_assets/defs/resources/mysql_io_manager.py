"""The MySQL IO manager: a materialization of `weather_predictions` is one transaction of batched upserts.

``INSERT ... ON DUPLICATE KEY UPDATE`` on MySQL and MariaDB, ``INSERT ... ON CONFLICT DO UPDATE`` on SQLite
(the embedded default), keyed on ``(prediction_datetime, station_id)``: an hour written twice, by a rerun, a
backfill, the schedule and the sensor at once, is still one row per station. Nothing is deleted: rows of a
partition that a new output lacks stay. This module is the only place that writes the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import dagster as dg
import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import Field, PrivateAttr, field_validator
from sqlalchemy.dialects import mysql, sqlite

from weather_assets.defs.partitions import kst_window
from weather_assets.domain.hours import partition_key
from weather_assets.domain.predictions_table import KEY, OUTPUT_COLUMNS, TABLE, identifier, predictions_table

# MySQL error codes worth another attempt: lock wait timeout, deadlock, can't connect, server gone, lost
# connection, too many connections, and a server that is shutting down or starting.
TRANSIENT_CODES = frozenset({1205, 1213, 2003, 2006, 2013, 1040, 1053, 2002})
_UPDATED = tuple(column for column in OUTPUT_COLUMNS if column not in KEY) + ("updated_at",)
T = TypeVar("T")


class DatabaseWriteError(RuntimeError):
    """The predictions could not be written (or read); the message names the server, never the password."""


class MySQLIOManager(dg.ConfigurableIOManager):
    """Stores a DataFrame of predictions for a partition or a range of partitions by upserting its rows.

    One transaction per materialization, batched statements, transient errors (deadlock, lock wait
    timeout, lost connection) retried a bounded number of times with backoff. The table is created from
    `weather_assets.domain.predictions_table` when it is missing. `load_input` returns the rows of the partition
    or range asked for.
    """

    url: str | None = Field(
        default=None, description="SQLAlchemy URL (WEATHER_DB_URL); unset: SQLite in <data_dir>/weather.db."
    )
    data_dir: str = Field(default=".weather", description="Root of local state (WEATHER_DATA_DIR).")
    table: str = Field(default=TABLE, description="Table name: letters, digits and _ only.")
    batch_size: int = Field(default=5000, description="Rows per statement.")
    max_attempts: int = Field(default=5, description="Attempts of a transaction that hits a transient error.")
    backoff_seconds: float = Field(default=0.5, description="First retry delay; doubles on each attempt.")
    _engine: sa.Engine | None = PrivateAttr(default=None)

    @field_validator("table")
    @classmethod
    def _plain_identifier(cls, name: str) -> str:
        """Refuse a hostile or mistyped table name before any SQL is built from it."""
        return identifier(name)

    def engine(self) -> sa.Engine:
        """The engine, created once per IO manager instance (one pool per process)."""
        if self._engine is None:
            url = sa.make_url(self.url or f"sqlite:///{(Path(self.data_dir) / 'weather.db').resolve()}")
            if url.get_backend_name() == "sqlite":
                Path(url.database or ".").parent.mkdir(parents=True, exist_ok=True)
                self._engine = _sqlite_engine(url)
            elif url.get_backend_name() in ("mysql", "mariadb"):
                self._engine = sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600, paramstyle="format")
            else:
                raise ValueError(f"WEATHER_DB_URL must be a mysql or sqlite URL, not {url.get_backend_name()}")
        return self._engine

    def where(self) -> str:
        """The table's place, for messages and metadata: backend, host, port, database and table, no password."""
        url = self.engine().url
        if url.get_backend_name() == "sqlite":
            return f"sqlite:{url.database} table {self.table}"
        return f"{url.get_backend_name()}://{url.host}:{url.port or 3306}/{url.database} table {self.table}"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        window = _window(context)
        frame = _checked(obj, window)
        table = predictions_table(self.table)
        now = datetime.now(UTC).replace(tzinfo=None)
        records = _records(frame.assign(created_at=now, updated_at=now))
        self._ensure_table(table)

        def write(connection: sa.Connection) -> int:
            statement = _upsert(table, connection.dialect.name)
            for start in range(0, len(records), self.batch_size):
                connection.execute(statement, records[start : start + self.batch_size])
            # A row this write inserted has created_at == now; one it updated kept its first created_at.
            first, last = frame["prediction_datetime"].min(), frame["prediction_datetime"].max()
            inserted = sa.select(sa.func.count()).where(
                table.c.created_at == now, table.c.prediction_datetime.between(first, last)
            )
            return int(connection.execute(inserted).scalar_one())

        inserted = self._transaction(write, f"write {len(records)} rows") if records else 0
        first_key, last_key = _keys(context, frame)
        context.add_output_metadata(
            {
                "rows_inserted": inserted,
                "rows_updated": len(records) - inserted,
                "dagster/row_count": len(records),
                "partition_range": f"{first_key} .. {last_key}",
                "table": self.where(),
                "preview": dg.MetadataValue.md(frame.head(12).to_markdown(index=False)),
            }
        )

    def check_writable(self) -> None:
        """Proves, writing nothing, that predictions can be written: the table exists (or is created), and an
        upsert of a probe row is allowed; the probe is rolled back. Raises `DatabaseWriteError` naming the table."""
        table = predictions_table(self.table)
        try:
            self._ensure_table(table)
        except sa.exc.DBAPIError as error:
            raise DatabaseWriteError(f"cannot reach {self.where()}: {_describe(error)}") from None
        now = datetime.now(UTC).replace(tzinfo=None)
        probe = {column: None for column in OUTPUT_COLUMNS} | {
            "prediction_datetime": datetime(1970, 1, 1),
            "station_id": 0,
            "comfort_score": 0.0,
            "model_name": "write-probe",
            "created_at": now,
            "updated_at": now,
        }

        def write_and_undo(connection: sa.Connection) -> None:
            savepoint = connection.begin_nested()
            connection.execute(_upsert(table, connection.dialect.name), [probe])
            savepoint.rollback()

        self._transaction(write_and_undo, "write a probe row (rolled back)")

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        if not context.has_asset_partitions:
            return self.rows()
        return self.rows(*kst_window(context.asset_partitions_time_window))

    def rows(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """The table's rows with ``start <= prediction_datetime < end`` (naive KST; None: unbounded), in key order."""
        table = predictions_table(self.table)
        query = sa.select(table).order_by(*(table.c[column] for column in KEY))
        if start is not None:
            query = query.where(table.c.prediction_datetime >= start)
        if end is not None:
            query = query.where(table.c.prediction_datetime < end)
        return self._transaction(lambda connection: pd.read_sql(query, connection), "read")

    def _ensure_table(self, table: sa.Table) -> None:
        """Create the table when it is missing (a concurrent creator may win the race: that is fine)."""

        def create(connection: sa.Connection) -> None:
            if not sa.inspect(connection).has_table(table.name):
                table.create(connection, checkfirst=True)

        try:
            self._transaction(create, "create the table")
        except DatabaseWriteError:
            with self.engine().connect() as connection:
                if not sa.inspect(connection).has_table(table.name):
                    raise

    def _transaction(self, work: Callable[[sa.Connection], T], what: str) -> T:
        """Run `work` in one transaction; retry the whole of it on a transient error, up to `max_attempts`."""
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self.engine().begin() as connection:
                    return work(connection)
            except sa.exc.DBAPIError as error:
                problem = _describe(error)
                if not _transient(error):
                    break
            if attempt < self.max_attempts:
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                dg.get_dagster_logger().warning(
                    f"{what} on {self.where()}: {problem}; attempt {attempt}, retry in {delay:g}s"
                )
                time.sleep(delay)
        # Raised outside the except block: the driver's exception, with its SQL and rows, is not chained.
        raise DatabaseWriteError(f"could not {what} on {self.where()} (nothing was written): {problem}")


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


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as plain Python values, NaN as None, built column by column (a 100,000-row write spends real time here)."""
    columns: dict[str, list[object]] = {}
    for name, values in frame.items():
        if pd.api.types.is_datetime64_any_dtype(values):
            columns[name] = list(values.array.to_pydatetime())
        elif pd.api.types.is_float_dtype(values):
            columns[name] = [None if value != value else value for value in values.tolist()]  # NaN != NaN
        else:
            columns[name] = [None if pd.isna(value) else value for value in values.tolist()]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _upsert(table: sa.Table, dialect: str) -> sa.Insert:
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(table)
        return statement.on_duplicate_key_update({column: statement.inserted[column] for column in _UPDATED})
    if dialect == "sqlite":
        statement = sqlite.insert(table)
        return statement.on_conflict_do_update(
            index_elements=list(KEY), set_={column: statement.excluded[column] for column in _UPDATED}
        )
    raise ValueError(f"no upsert for the {dialect} dialect")


def _transient(error: sa.exc.DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    args = getattr(error.orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in TRANSIENT_CODES:
        return True
    return "database is locked" in str(error.orig)  # SQLite past its busy timeout


def _describe(error: sa.exc.DBAPIError) -> str:
    return f"{type(error.orig).__name__} {error.orig}"


def _window(context: dg.OutputContext) -> tuple[datetime, datetime] | None:
    return kst_window(context.asset_partitions_time_window) if context.has_asset_partitions else None


def _keys(context: dg.OutputContext, frame: pd.DataFrame) -> tuple[str, str]:
    if context.has_asset_partitions:
        key_range = context.asset_partition_key_range
        return key_range.start, key_range.end
    hours = frame["prediction_datetime"]
    return (partition_key(hours.min()), partition_key(hours.max())) if len(frame) else ("-", "-")


def _checked(obj: object, window: tuple[datetime, datetime] | None) -> pd.DataFrame:
    """The output as the table takes it, or a ValueError that says what is wrong with it, before any SQL."""
    if not isinstance(obj, pd.DataFrame):
        raise TypeError(f"the MySQL IO manager stores pandas DataFrames, not {type(obj).__name__}")
    missing = [column for column in OUTPUT_COLUMNS if column not in obj.columns]
    extra = [column for column in obj.columns if column not in OUTPUT_COLUMNS]
    if missing or extra:
        raise ValueError(
            f"predictions must have exactly the columns {list(OUTPUT_COLUMNS)}; missing {missing}, extra {extra}"
        )
    frame = obj[list(OUTPUT_COLUMNS)].copy()
    frame["prediction_datetime"] = pd.to_datetime(frame["prediction_datetime"])
    required = ["prediction_datetime", "station_id", "comfort_score", "model_name"]
    empty = [column for column in required if frame[column].isna().any()]
    if empty:
        raise ValueError(f"predictions have missing values in required columns {empty}")
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            infinite = frame[np.isinf(frame[column].to_numpy())]
            if len(infinite):
                first = infinite.iloc[0]
                raise ValueError(
                    f"predictions have {len(infinite)} non-finite value(s) in column {column}, e.g. "
                    f"{first[column]} at ({first['prediction_datetime']}, station {first['station_id']}); "
                    "MySQL stores no infinity: nothing was written"
                )
    duplicated = frame[frame.duplicated(list(KEY), keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise ValueError(
            f"{len(duplicated)} predictions share (prediction_datetime, station_id) with another, e.g. "
            f"({first['prediction_datetime']}, {first['station_id']}): one row per station and hour"
        )
    if window is not None:
        outside = frame[(frame["prediction_datetime"] < window[0]) | (frame["prediction_datetime"] >= window[1])]
        if len(outside):
            raise ValueError(
                f"{len(outside)} predictions fall outside the partitions being written ({window[0]} .. {window[1]} "
                f"KST), e.g. {outside['prediction_datetime'].iloc[0]}"
            )
    return frame.sort_values(list(KEY)).reset_index(drop=True)
