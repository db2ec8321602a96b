"""The platform's database as a resource: `weather_predictions` and `weather_forecasts`, upserted and read by range.

SQLite by default (embedded), MySQL 8 or MariaDB in production. An hour written twice, by a rerun, a backfill, the
schedule and the sensor at once, is still one row per key. Nothing is deleted: rows of a partition that a new
output lacks stay. Readers (the prediction checks, the forecast skill, the main command) take this resource; the
IO manager is a thin layer on it, as dagster-duckdb's resource and IO manager are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from pydantic import Field, PrivateAttr, field_validator

from weather_assets.defs.resources.predictions_db import frames
from weather_assets.defs.resources.predictions_db.client import DatabaseWriteError, SQLClient, create_engine, describe
from weather_assets.domain.tables import FORECASTS, PREDICTIONS, TableSpec, identifier
from weather_assets.environment import DATA_DIR, Env, database_url, parse_database_url

# The tables the platform writes, by their (default) name: what an asset's definition metadata may name.
TABLES = {spec.name: spec for spec in (PREDICTIONS, FORECASTS)}


@dataclass(frozen=True)
class Upserted:
    """What one upsert stored: the table, its rows as checked and written, how many were new, and where (no
    password)."""

    spec: TableSpec
    frame: pd.DataFrame
    inserted: int
    where: str

    @property
    def updated(self) -> int:
        return len(self.frame) - self.inserted


class ComfortDatabase(dg.ConfigurableResource):
    """The predictions and forecasts tables on one database: one engine (one pool) shared by both tables, their
    creation from each `TableSpec` when missing, batched upserts in one transaction, reads by time range, and
    transient errors (deadlock, lock wait timeout, lost connection) retried a bounded number of times with backoff.
    """

    url: str | None = Field(
        default=None, description="SQLAlchemy URL (WEATHER_DB_URL); unset: SQLite in <data_dir>/weather.db."
    )
    data_dir: str = Field(default=DATA_DIR, description="Root of local state (WEATHER_DATA_DIR).")
    table: str = Field(default=PREDICTIONS.name, description="Predictions table name: letters, digits and _ only.")
    forecasts_table: str = Field(default=FORECASTS.name, description="Forecasts table name, likewise.")
    batch_size: int = Field(default=5000, description="Rows per statement.")
    max_attempts: int = Field(default=5, description="Attempts of a transaction that hits a transient error.")
    backoff_seconds: float = Field(default=0.5, description="First retry delay; doubles on each attempt.")
    _clients: dict[str, SQLClient] = PrivateAttr(default_factory=dict)

    @field_validator("table", "forecasts_table")
    @classmethod
    def _plain_identifier(cls, name: str) -> str:
        """Refuse a hostile or mistyped table name before any SQL is built from it."""
        return identifier(name)

    def client(self, table: TableSpec | str) -> SQLClient:
        """A table's client, created once per resource instance; the tables share one engine (one pool)."""
        spec = spec_of(table)
        if spec.name not in self._clients:
            names = {PREDICTIONS.name: self.table, FORECASTS.name: self.forecasts_table}
            engine = next(iter(self._clients.values())).engine if self._clients else create_engine(self._url())
            self._clients[spec.name] = SQLClient(
                engine, spec.table(names[spec.name]), self.max_attempts, self.backoff_seconds
            )
        return self._clients[spec.name]

    def _url(self) -> sa.URL:
        """The configured URL, refused without being shown when malformed; else the embedded SQLite file."""
        return parse_database_url(self.url, Env.DB_URL) if self.url else sa.make_url(database_url(self.data_dir))

    def rows(self, table: TableSpec | str, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """A table's rows with ``start <= time column < end`` (naive KST; None: unbounded), in key order: the
        prediction hour for predictions, the issue time for forecasts."""
        spec, client = spec_of(table), self.client(table)
        client.migrate(spec.lineage)  # a table created before its lineage columns gains them before it is read
        return client.transaction(
            lambda connection: frames.read(spec, connection, client.table, start, end), f"read {spec.name}"
        )

    def upsert(
        self,
        table: TableSpec | str,
        obj: object,
        window: tuple[datetime, datetime] | None = None,
        run_id: str | None = None,
    ) -> Upserted:
        """Check `obj` against the table (and the partitions' `window`) before any SQL, then upsert its rows in one
        transaction, each naming `run_id` (the Dagster run writing them), creating the table when it is missing and
        adding the lineage columns to one created before them."""
        spec = spec_of(table)
        frame = frames.checked(spec, obj, window, run_id)
        client = self.client(spec)
        upsert = frames.Upsert.of(spec, client.table, frame, self.batch_size)
        client.ensure_table(spec.lineage)
        rows = upsert.rows
        inserted = client.transaction(upsert.run, f"write {rows} rows") if rows else 0
        return Upserted(spec, frame, inserted, client.where)

    def check_writable(self) -> None:
        """Proves that predictions can be written: the table exists (or is created: SQLite creates its file), and
        an upsert of a probe row is allowed; the probe is rolled back. Raises `DatabaseWriteError` naming the
        table, or what is wrong with the URL (never the URL itself: it may hold a password)."""
        try:
            client = self.client(PREDICTIONS)
        except (ValueError, sa.exc.ArgumentError) as error:  # malformed, another backend, a driver not installed
            raise DatabaseWriteError(str(error)) from None
        except OSError as error:  # the SQLite file's folder cannot be created
            raise DatabaseWriteError(f"cannot create the SQLite database's folder: {error.strerror}") from None
        try:
            client.ensure_table(PREDICTIONS.lineage)
        except sa.exc.DBAPIError as error:
            raise DatabaseWriteError(f"cannot reach {client.where}: {describe(error)}") from None
        client.transaction(
            lambda connection: frames.upsert_probe(PREDICTIONS, connection, client.table),
            "write a probe row (rolled back)",
        )


def spec_of(table: TableSpec | str) -> TableSpec:
    """The spec of a table given as its spec or its name, or a ValueError naming the tables there are."""
    if isinstance(table, TableSpec):
        return table
    if table not in TABLES:
        raise ValueError(f"no table {table!r} in the comfort database; its tables are {', '.join(TABLES)}")
    return TABLES[table]
