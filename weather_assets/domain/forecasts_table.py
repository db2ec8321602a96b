"""The `weather_forecasts` table: comfort forecast per station and forecast hour, for each forecast issue.

Unique on ``(forecast_datetime, station_id, issued_at)``: every issue keeps its own forecast of an hour, so the
forecast skill can compare each lead time with what was observed, and writing an issue again updates its rows.
``forecast_inputs`` and ``carried_inputs`` name the model inputs that came from KMA's forecast and those carried
from the station's latest observation (PM10 and pressure: the short-term forecast has neither).
"""

from __future__ import annotations

import sqlalchemy as sa

from weather_assets.domain.features import MEASUREMENTS
from weather_assets.domain.predictions_table import ID, NUMBER, TIME, TableSpec

TABLE = "weather_forecasts"
KEY = ("forecast_datetime", "station_id", "issued_at")
OUTPUT_COLUMNS = (
    "forecast_datetime", "station_id", "issued_at", "lead_hours", "region", "comfort_score", *MEASUREMENTS,
    "forecast_inputs", "carried_inputs", "model_name",
)  # fmt: skip


def forecasts_table(name: str = TABLE, metadata: sa.MetaData | None = None) -> sa.Table:
    """The table definition under `name`."""
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
        sa.UniqueConstraint(*KEY, name="uk_forecast"),
        sa.Index(f"ix_{name}_issued_at", "issued_at"),
        sa.Index(f"ix_{name}_station_forecast", "station_id", "forecast_datetime"),
        sa.Index(f"ix_{name}_updated_at", "updated_at"),  # the read API's MAX(updated_at), every second
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )


FORECASTS = TableSpec(
    TABLE, KEY, "issued_at", OUTPUT_COLUMNS,
    ("forecast_datetime", "station_id", "issued_at", "lead_hours", "comfort_score", "model_name"), forecasts_table,
)  # fmt: skip
