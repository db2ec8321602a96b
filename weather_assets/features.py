"""From an hour's raw ASOS and PM10 objects to the cleaned feature table, and its parquet bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from weather_assets import kma_format
from weather_assets.stations import all_stations

MEASUREMENTS = ("temperature", "humidity", "precipitation", "pm10", "wind_speed", "pressure")
COLUMNS = ("station_id", "station_name", "region", "observed_at", *MEASUREMENTS)
DTYPES = {
    "station_id": "int64",
    "station_name": "string",
    "region": "string",
    "observed_at": "datetime64[ns]",
    **{name: "float64" for name in MEASUREMENTS},
}


@dataclass
class HourFeatures:
    """One hour's feature rows, the configured stations KMA did not report, and the malformed lines skipped."""

    frame: pd.DataFrame
    missing_stations: list[int]
    skipped_lines: list[str]


def build_hour(hour: datetime, asos: bytes, pm10: bytes, stations: Sequence[int]) -> HourFeatures:
    """Feature rows of one KST hour: one per configured station that KMA reported, sorted by station.

    The hour's PM10 is the mean of its valid 5-minute readings (see `kma_format.hourly_pm10`); a station
    without a dust sensor gets NaN. A station reported twice in the hour keeps its first line.
    """
    parsed = kma_format.parse_asos(asos)
    readings = kma_format.parse_pm10(pm10)
    skipped = [f"raw/asos line {n}: {why}" for n, why in parsed.skipped]
    skipped += [f"raw/pm10 line {n}: {why}" for n, why in readings.skipped]
    frame = parsed.frame
    frame = frame[(frame["observed_at"] == hour) & frame["station_id"].isin(stations)]
    frame = frame.drop_duplicates("station_id").sort_values("station_id")
    frame = frame.assign(pm10=frame["station_id"].map(kma_format.hourly_pm10(readings.frame, hour)))
    known = all_stations()
    frame = frame.assign(
        station_name=frame["station_id"].map(lambda s: known[s].station_name),
        region=frame["station_id"].map(lambda s: known[s].region),
    )
    missing = sorted(set(stations) - set(frame["station_id"]))
    return HourFeatures(frame[list(COLUMNS)].astype(DTYPES).reset_index(drop=True), missing, skipped)


def to_parquet(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of a feature frame; the same frame always gives the same bytes."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


def from_parquet(data: bytes) -> pd.DataFrame:
    """A feature frame from parquet bytes."""
    return pd.read_parquet(io.BytesIO(data), engine="pyarrow").astype(DTYPES)
