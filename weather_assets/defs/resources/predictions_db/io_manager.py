"""The predictions IO manager: a materialization of `weather_predictions` (or `weather_forecasts`) is one
transaction of batched upserts.

SQLite by default (embedded), MySQL 8 or MariaDB in production. An hour written twice, by a rerun, a
backfill, the schedule and the sensor at once, is still one row per station. Nothing is deleted: rows of a
partition that a new output lacks stay. This package is the only place that writes the table; this module
holds the configuration and the Dagster contexts, `client` the connection, `frames` the rows.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from pydantic import Field, PrivateAttr, field_validator

from weather_assets.defs.partitions import kst_window
from weather_assets.defs.resources.predictions_db import frames
from weather_assets.defs.resources.predictions_db.client import DatabaseWriteError, SQLClient, create_engine, describe
from weather_assets.domain.forecasts_table import FORECASTS
from weather_assets.domain.hours import partition_key
from weather_assets.domain.predictions_table import PREDICTIONS, TableSpec, identifier
from weather_assets.environment import DATA_DIR, Env, database_url, parse_database_url


class PredictionsIOManager(dg.ConfigurableIOManager):
    """Stores a DataFrame of predictions for a partition or a range of partitions by upserting its rows.

    One transaction per materialization, batched statements, transient errors (deadlock, lock wait
    timeout, lost connection) retried a bounded number of times with backoff. Each asset's table is created from
    its `TableSpec` (`weather_assets.domain.predictions_table`, `forecasts_table`) when it is missing.
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

    def client(self, spec: TableSpec = PREDICTIONS) -> SQLClient:
        """A table's client, created once per IO manager instance; the tables share one engine (one pool)."""
        if spec.name not in self._clients:
            names = {PREDICTIONS.name: self.table, FORECASTS.name: self.forecasts_table}
            engine = next(iter(self._clients.values())).engine if self._clients else create_engine(self._url())
            table = spec.table(names[spec.name])
            self._clients[spec.name] = SQLClient(engine, table, self.max_attempts, self.backoff_seconds)
        return self._clients[spec.name]

    def _url(self) -> sa.URL:
        """The configured URL, refused without being shown when malformed; else the embedded SQLite file."""
        return parse_database_url(self.url, Env.DB_URL) if self.url else sa.make_url(database_url(self.data_dir))

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        spec = _spec(context)
        frame = frames.checked(spec, obj, _window(context))
        client = self.client(spec)
        upsert = frames.Upsert.of(spec, client.table, frame, self.batch_size)
        client.ensure_table()
        rows = len(upsert.records)
        inserted = client.transaction(upsert.run, f"write {rows} rows") if rows else 0
        first_key, last_key = _keys(context, spec, frame)
        context.add_output_metadata(
            {
                "rows_inserted": inserted,
                "rows_updated": rows - inserted,
                "dagster/row_count": rows,
                "partition_range": f"{first_key} .. {last_key}",
                "table": client.where,
                "preview": dg.MetadataValue.md(frame.head(12).to_markdown(index=False)),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """Refused: the tables are not loaded as inputs. A reader depends on the asset (``deps=``) and reads the
        range it needs with `rows` (the prediction checks, the forecast skill, the main command), so no run loads
        a whole table by accident."""
        asset = context.asset_key.to_user_string() if context.has_asset_key else "a table"
        raise dg.Failure(
            f"{asset} is not loaded as an input: depend on it with deps= and read the hours needed with the "
            "predictions_io_manager resource's rows(start, end)",
            allow_retries=False,
        )

    def rows(
        self, start: datetime | None = None, end: datetime | None = None, spec: TableSpec = PREDICTIONS
    ) -> pd.DataFrame:
        """A table's rows with ``start <= time column < end`` (naive KST; None: unbounded), in key order: the
        prediction hour for predictions, the issue time for forecasts."""
        client = self.client(spec)
        return client.transaction(
            lambda connection: frames.read(spec, connection, client.table, start, end), f"read {spec.name}"
        )

    def check_writable(self) -> None:
        """Proves that predictions can be written: the table exists (or is created: SQLite creates its file), and
        an upsert of a probe row is allowed; the probe is rolled back. Raises `DatabaseWriteError` naming the
        table, or what is wrong with the URL (never the URL itself: it may hold a password)."""
        try:
            client = self.client()
        except (ValueError, sa.exc.ArgumentError) as error:  # malformed, another backend, a driver not installed
            raise DatabaseWriteError(str(error)) from None
        except OSError as error:  # the SQLite file's folder cannot be created
            raise DatabaseWriteError(f"cannot create the SQLite database's folder: {error.strerror}") from None
        try:
            client.ensure_table()
        except sa.exc.DBAPIError as error:
            raise DatabaseWriteError(f"cannot reach {client.where}: {describe(error)}") from None
        client.transaction(
            lambda connection: frames.upsert_probe(PREDICTIONS, connection, client.table),
            "write a probe row (rolled back)",
        )


def _window(context: dg.OutputContext) -> tuple[datetime, datetime] | None:
    return kst_window(context.asset_partitions_time_window) if context.has_asset_partitions else None


def _spec(context: dg.OutputContext | dg.InputContext) -> TableSpec:
    """The table of the asset being stored or loaded: `weather_forecasts` has its own, every other the predictions'."""
    forecasts = context.has_asset_key and context.asset_key.to_user_string() == FORECASTS.name
    return FORECASTS if forecasts else PREDICTIONS


def _keys(context: dg.OutputContext, spec: TableSpec, frame: pd.DataFrame) -> tuple[str, str]:
    """The first and last partition written, for the metadata; from the frame when the output is unpartitioned."""
    if context.has_asset_partitions:
        key_range = context.asset_partition_key_range
        return key_range.start, key_range.end
    times = frame[spec.time_column]
    return (partition_key(times.min()), partition_key(times.max())) if len(frame) else ("-", "-")
