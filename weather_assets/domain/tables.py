"""The tables' shapes, defined once: the IO manager creates them from here and `sql/init.sql` matches them.

`weather_predictions`: one row per KST hour and station, unique on ``(prediction_datetime, station_id)``, so
that writing an hour again updates its rows instead of adding new ones.

`weather_forecasts`: the comfort forecast per station and forecast hour, for each forecast issue, unique on
``(forecast_datetime, station_id, issued_at)``: every issue keeps its own forecast of an hour, so the forecast
skill can compare each lead time with what was observed, and writing an issue again updates its rows.
``forecast_inputs`` and ``carried_inputs`` name the model inputs that came from KMA's forecast and those carried
from the station's latest observation (PM10 and pressure: the short-term forecast has neither).

In both, ``created_at`` is set when a row is first written and never changed by an upsert; ``updated_at`` is set
on every write. Both are UTC, to the microsecond.

Both carry the row's lineage (`LINEAGE`), nullable because rows written before it existed have none: the Dagster
run that wrote the row, the model's registry version and the MLflow run that trained it, and the lake object the
row was computed from with the SHA-256 of its bytes as read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from weather_assets.domain.features import MEASUREMENTS

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite auto-increments INTEGER PRIMARY KEY only
TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
NUMBER = sa.Double().with_variant(mysql.DOUBLE(), "mysql", "mariadb")
MYSQL_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def lineage_columns() -> tuple[sa.Column, ...]:
    """The lineage columns, nullable: a table created before them gains them in place, its rows keeping NULL."""
    return (
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("input_object", sa.String(255), nullable=True),
        sa.Column("input_sha256", sa.CHAR(64), nullable=True),
    )


# What each row's lineage holds; the IO manager stamps dagster_run_id, the asset gives the others.
LINEAGE = tuple(column.name for column in lineage_columns())
RUN_ID = "dagster_run_id"


@dataclass(frozen=True)
class TableSpec:
    """What the database needs to know of a table it upserts and reads: its columns, key and partition column."""

    name: str
    key: tuple[str, ...]
    time_column: str  # the naive KST time a partition's window selects
    columns: tuple[str, ...]  # what an asset hands the IO manager; id, created_at and updated_at are the IO manager's
    required: tuple[str, ...]  # columns that may not be empty
    define: Callable[[str, sa.MetaData | None], sa.Table]
    lineage: tuple[str, ...] = LINEAGE  # nullable columns a table created before them is migrated to have

    def table(self, name: str | None = None, metadata: sa.MetaData | None = None) -> sa.Table:
        """The table under `name` (default: the spec's own), checked: it ends up in SQL."""
        return self.define(identifier(name or self.name), metadata)

    @property
    def given(self) -> tuple[str, ...]:
        """What an asset may hand the IO manager: its columns and the lineage but the run id, which the IO manager
        stamps."""
        return self.columns + tuple(column for column in self.lineage if column != RUN_ID)

    @property
    def written(self) -> tuple[str, ...]:
        """Every column an upsert writes but created_at and updated_at."""
        return self.columns + self.lineage

    @property
    def updated(self) -> tuple[str, ...]:
        """What an upsert overwrites on a row that exists; created_at keeps the time the row was first written.
        Lineage is overwritten too, to NULL when a write has none: a row never names inputs it was not computed
        from."""
        return tuple(column for column in self.written if column not in self.key) + ("updated_at",)


def identifier(name: str, what: str = "table name") -> str:
    """`name` if it is a plain SQL identifier (letters, digits, underscore; 64 at most), else ValueError."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a plain SQL identifier (letters, digits and _, at most 64)")
    return name


def predictions_table(name: str = "weather_predictions", metadata: sa.MetaData | None = None) -> sa.Table:
    """The predictions table's definition, under `name` (checked: it ends up in SQL)."""
    name = identifier(name)
    return sa.Table(
        name,
        metadata or sa.MetaData(),
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("comfort_score", NUMBER, nullable=False),
        *(sa.Column(column, NUMBER, nullable=True) for column in MEASUREMENTS),
        sa.Column("prediction_datetime", TIME, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("region", sa.String(32), nullable=True),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(64), nullable=False),
        *lineage_columns(),
        sa.UniqueConstraint(*PREDICTIONS.key, name="uk_prediction"),
        # Index names carry the table's: SQLite's index names are per database, not per table.
        sa.Index(f"ix_{name}_prediction_datetime", "prediction_datetime"),
        sa.Index(f"ix_{name}_region", "region"),
        sa.Index(f"ix_{name}_updated_at", "updated_at"),  # the read API's MAX(updated_at), every second
        **MYSQL_OPTIONS,
    )


PREDICTIONS = TableSpec(
    name="weather_predictions",
    key=("prediction_datetime", "station_id"),
    time_column="prediction_datetime",
    columns=("prediction_datetime", "station_id", "region", "comfort_score", *MEASUREMENTS, "model_name"),
    required=("prediction_datetime", "station_id", "comfort_score", "model_name"),
    define=predictions_table,
)


def forecasts_table(name: str = "weather_forecasts", metadata: sa.MetaData | None = None) -> sa.Table:
    """The forecasts table's definition, under `name`."""
    return sa.Table(
        name,
        metadata or sa.MetaData(),
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("forecast_datetime", TIME, nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", TIME, nullable=False),
        sa.Column("lead_hours", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(32), nullable=True),
        sa.Column("comfort_score", NUMBER, nullable=False),
        *(sa.Column(column, NUMBER, nullable=True) for column in MEASUREMENTS),
        sa.Column("forecast_inputs", sa.String(128), nullable=False),
        sa.Column("carried_inputs", sa.String(128), nullable=False),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        *lineage_columns(),
        sa.UniqueConstraint(*FORECASTS.key, name="uk_forecast"),
        sa.Index(f"ix_{name}_issued_at", "issued_at"),
        sa.Index(f"ix_{name}_station_forecast", "station_id", "forecast_datetime"),
        sa.Index(f"ix_{name}_updated_at", "updated_at"),  # the read API's MAX(updated_at), every second
        **MYSQL_OPTIONS,
    )


FORECASTS = TableSpec(
    name="weather_forecasts",
    key=("forecast_datetime", "station_id", "issued_at"),
    time_column="issued_at",
    columns=(
        "forecast_datetime",
        "station_id",
        "issued_at",
        "lead_hours",
        "region",
        "comfort_score",
        *MEASUREMENTS,
        "forecast_inputs",
        "carried_inputs",
        "model_name",
    ),  # fmt: skip
    required=("forecast_datetime", "station_id", "issued_at", "lead_hours", "comfort_score", "model_name"),
    define=forecasts_table,
)
