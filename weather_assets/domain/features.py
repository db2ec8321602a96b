"""From raw ASOS and PM10 objects to the cleaned hourly feature table, and its parquet files; and the same rows
from a parsed forecast, for forecast hours."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from weather_assets.domain.hours import partition_key
from weather_assets.domain.stations import all_stations
from weather_assets.kma import fields, wire
from weather_assets.kma.grid import to_grid

MEASUREMENTS = ("temperature", "humidity", "precipitation", "pm10", "wind_speed", "pressure")
FORECAST_MEASUREMENTS = ("temperature", "humidity", "precipitation", "wind_speed")  # what KMA's forecast gives
CARRIED_MEASUREMENTS = ("pm10", "pressure")  # what it lacks, carried from the latest observation
# `ir` is KMA's IR code of the hour (3 dry; 1, 2, 4 wet): how KMA reported its precipitation, kept beside it.
COLUMNS = ("station_id", "station_name", "region", "observed_at", *MEASUREMENTS, "ir")
DTYPES = {
    "station_id": "int64",
    "station_name": "string",
    "region": "string",
    "observed_at": "datetime64[ns]",
    **{name: "float64" for name in MEASUREMENTS},
    "ir": "float64",
}
_ADDED_COLUMNS = ("ir",)  # feature files written before these columns existed read them as missing


@dataclass
class Features:
    """Feature rows of some hours, the configured stations KMA did not report, and the lines skipped; per hour, the
    stations whose IR 3 met a rising RN_DAY and those whose precipitation is unknown, by reason (`precipitation`)."""

    frame: pd.DataFrame
    missing_stations: dict[datetime, list[int]]
    skipped_lines: dict[datetime, list[str]]
    duplicate_lines: dict[datetime, int] = field(default_factory=dict)
    precipitation_conflicts: dict[datetime, int] = field(default_factory=dict)
    precipitation_unknown: dict[datetime, dict[str, int]] = field(default_factory=dict)


class RawHourError(wire.KMAFormatError):
    """One hour's raw object of one kind (``asos`` or ``pm10``) that cannot be parsed; `hour` and `kind` name it."""

    def __init__(self, hour: datetime, kind: str, reason: str) -> None:
        super().__init__(f"hour {partition_key(hour)}, raw/{kind}: {reason}")
        self.hour, self.kind, self.reason = hour, kind, reason


def build(
    raw: Mapping[datetime, tuple[bytes, bytes]], stations: Sequence[int], before: Iterable[bytes] = ()
) -> Features:
    """Feature rows of KST hours from their (ASOS, PM10) raw objects: one per hour and reported station.

    The hour's PM10 is `wire.hourly_pm10`, the mean of its valid 5-minute readings; a station
    without a dust sensor gets NaN. A station reported twice in an hour keeps one line (`resolve_duplicates`),
    and the lines dropped are counted per hour. `before` holds raw ASOS objects of hours before
    the first: the first hour's precipitation needs the previous hour's day total (`precipitation`), so the hour before
    is enough. Stations whose IR 3 met a rising RN_DAY, and those whose precipitation is unknown, are counted per
    hour. Raises `RawHourError`, naming the hour and the raw object, when an hour has no readable line.
    """
    asos_rows: list[tuple[object, ...]] = []
    pm10_rows: list[tuple[object, ...]] = []
    skipped: dict[datetime, list[str]] = {}
    for hour, (asos, pm10) in raw.items():
        parsed, readings = _parsed(hour, "asos", asos), _parsed(hour, "pm10", pm10)
        lines = [f"raw/asos line {n}: {why}" for n, why in parsed.skipped]
        lines += [f"raw/pm10 line {n}: {why}" for n, why in readings.skipped]
        if lines:
            skipped[hour] = lines
        asos_rows += (row for row in parsed.rows if row[1] == hour)
        pm10_rows += readings.rows
    frame = pd.DataFrame(asos_rows, columns=list(fields.ASOS_ROW))
    frame, duplicates = resolve_duplicates(frame[frame["station_id"].isin(stations)])
    rain = precipitation(frame, _earlier_rows(before, stations))
    hours = frame["observed_at"]
    conflicted = hours[rain.conflict].value_counts()
    unknown = pd.crosstab(hours[rain.unknown.notna()], rain.unknown.dropna())
    frame = frame.assign(precipitation=rain.amount)
    pm10 = wire.hourly_pm10(pd.DataFrame(pm10_rows, columns=list(fields.PM10_ROW)))
    frame = frame.merge(pm10, how="left", on=["observed_at", "station_id"])
    known = all_stations()
    frame = frame.assign(
        station_name=frame["station_id"].map(lambda s: known[s].station_name),
        region=frame["station_id"].map(lambda s: known[s].region),
    )
    frame = frame.sort_values(["observed_at", "station_id"])[list(COLUMNS)].astype(DTYPES).reset_index(drop=True)
    reported = frame.groupby("observed_at")["station_id"].agg(set).to_dict()
    missing = {hour: sorted(set(stations) - reported.get(hour, set())) for hour in raw}
    return Features(
        frame,
        {hour: ids for hour, ids in missing.items() if ids},
        skipped,
        duplicates,
        {hour.to_pydatetime(): int(n) for hour, n in conflicted.items()},
        {hour.to_pydatetime(): {r: int(n) for r, n in counts.items() if n} for hour, counts in unknown.iterrows()},
    )


def _parsed(hour: datetime, kind: str, body: bytes) -> wire.Parsed:
    parse = wire.parse_asos if kind == "asos" else wire.parse_pm10
    try:
        return parse(body)
    except wire.KMAFormatError as error:
        raise RawHourError(hour, kind, str(error)) from None


def _earlier_rows(before: Iterable[bytes], stations: Sequence[int]) -> pd.DataFrame:
    """The rows of hours before the first, for its precipitation; an unreadable hour adds none."""
    rows: list[tuple[object, ...]] = []
    for body in before:
        try:
            rows += wire.parse_asos(body).rows
        except wire.KMAFormatError:
            continue
    frame = pd.DataFrame(rows, columns=list(fields.ASOS_ROW))
    return resolve_duplicates(frame[frame["station_id"].isin(stations)])[0]


class Rain(NamedTuple):
    """Each station-hour's precipitation (mm), whether its IR 3 met a rising RN_DAY, and why an amount is unknown."""

    amount: pd.Series
    conflict: pd.Series
    unknown: pd.Series  # one of UNKNOWN_REASONS where `amount` is NaN for a reason of the data, else NA


# Why an hour's precipitation is unknown (the materialization's `precipitation_unknown` counts them).
UNKNOWN_REASONS = ("previous_hour_unread", "day_total_fell", "wet_without_total")


def precipitation(rows: pd.DataFrame, earlier: pd.DataFrame) -> Rain:
    """The precipitation of each station-hour, in mm, meaning the same hour in every season.

    RN is the last hour's amount in summer and the last three hours' in winter (then written only at 00, 03, ...,
    21), so RN alone is not an hour's amount. RN_DAY is the day's running total, from 01:00 to the 00:00 line that
    closes the day, and real answers (docs/kma-data.md) show it valid on every wet hour whatever IR says. Hence:

    - The amount is the hour's day total minus the previous hour's (at 01:00, the day total itself). The day total
      is RN_DAY; its -9.0 means nothing fell yet today (0.0), except on a wet line (IR 1, 2 or 4): a wet hour
      without a total, unknown (`wet_without_total`).
    - IR is no veto: it only stands in where RN_DAY cannot answer. An IR 3 (dry) hour whose previous hour cannot be
      read is 0.0; any other such hour is unknown (`previous_hour_unread`). An IR 3 hour whose RN_DAY rose keeps
      RN_DAY's difference and is flagged (`conflict`) so the run can count it.
    - A day total that went down within the day gives no usable figure (`day_total_fell`).
    `earlier` holds lines of the hours before `rows` (at least the one before the first): only the previous hour's
    line is read. RN stays in `raw/` for replay.
    """
    key = ["station_id", "observed_at"]
    lines = pd.concat([rows[[*key, "rn_day", "ir"]], earlier[[*key, "rn_day", "ir"]]]) if len(earlier) else rows
    lines = lines.drop_duplicates(key, keep="first")
    totals = pd.Series(day_total(lines).to_numpy(), index=pd.MultiIndex.from_frame(lines[key]))
    previous_hour = pd.MultiIndex.from_arrays([rows["station_id"], rows["observed_at"] - pd.Timedelta(hours=1)])
    total = day_total(rows)
    base = pd.Series(totals.reindex(previous_hour).to_numpy(), index=rows.index, dtype="float64")
    first_hour = rows["observed_at"].dt.hour == 1
    base[first_hour] = 0.0
    rise = (total - base).round(1)
    dry = rows["ir"] == fields.IR_DRY
    unknown = pd.Series(pd.NA, index=rows.index, dtype="string")
    unknown[base.isna() & ~dry] = "previous_hour_unread"  # not read, or itself without a total
    unknown[total.isna()] = "wet_without_total"
    unknown[rise < 0] = "day_total_fell"
    amount = rise.mask(rise < 0).mask(base.isna() & dry, 0.0)  # IR 3 answers for the hour RN_DAY cannot
    return Rain(amount.astype("float64"), dry & (rise > 0), unknown)


def day_total(lines: pd.DataFrame) -> pd.Series:
    """Each line's day total so far: RN_DAY, its -9.0 (NaN here) being 0.0 (nothing yet today) except on a wet
    line (IR 1, 2, 4), where it is unknown."""
    rn_day = lines["rn_day"].astype("float64")
    return rn_day.mask(rn_day.isna() & ~lines["ir"].isin(fields.IR_WET), 0.0)


def resolve_duplicates(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[datetime, int]]:
    """One row per (hour, station): of a station's lines in one hour, the one with the most valid readings,
    then the later one in KMA's answer (a correction follows what it corrects). Returns the rows kept, in their
    order, and how many lines were dropped per hour."""
    measured = [column for column in fields.ASOS_COLUMNS.values() if column in rows.columns]
    ranked = rows.assign(_valid=rows[measured].notna().sum(axis=1), _order=range(len(rows)))
    ranked = ranked.sort_values(["observed_at", "station_id", "_valid", "_order"], kind="stable")
    kept = ranked.drop_duplicates(["observed_at", "station_id"], keep="last").sort_values("_order")
    dropped = ranked.groupby("observed_at").size() - kept.groupby("observed_at").size()
    counts = {hour.to_pydatetime(): int(n) for hour, n in dropped.items() if n}
    return kept.drop(columns=["_valid", "_order"]), counts


def hour_files(frame: pd.DataFrame) -> dict[datetime, bytes]:
    """One parquet file per hour of a feature frame (sorted by hour, as `build` returns it).

    The whole frame converts to Arrow once and each hour is a slice of it, so an hour's bytes are the
    same whether it was built alone or inside a month-long backfill.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    files: dict[datetime, bytes] = {}
    offset = 0
    for hour, rows in frame.groupby("observed_at", sort=True).size().items():
        buffer = io.BytesIO()
        pq.write_table(table.slice(offset, rows), buffer)
        files[hour.to_pydatetime()] = buffer.getvalue()
        offset += rows
    return files


def from_forecast(forecast: pd.DataFrame, carried: pd.DataFrame, station_ids: Sequence[int]) -> pd.DataFrame:
    """Feature rows of forecast hours, per station, read like observations by the comfort rule and the model.

    `forecast` is KMA's parsed forecast (`kma.forecast.parse_forecast`); a station takes the forecast of its grid
    point (`grid.to_grid`); ``observed_at`` is the forecast hour, ``lead_hours`` the hours from the issue to it.
    Temperature, humidity, precipitation and wind speed are the forecast's. The forecast has no PM10 and no
    pressure, so these are carried: the station's row of `carried` (one per station, its latest observed ``pm10``
    and ``pressure``) is held for every forecast hour (persistence, the usual forecast of slow quantities without a
    model of their own); NaN when the station has no such row or value, which the comfort rule and the model read as
    a missing reading.
    ``forecast_inputs`` and ``carried_inputs`` name, comma-separated, the measurements of the row that came
    from the forecast and from the carried observation (present values only).
    """
    if carried["station_id"].duplicated().any():
        raise ValueError("carried must hold one row per station (its latest observed pm10 and pressure)")
    known = all_stations()
    unknown = sorted(set(station_ids) - set(known))
    if unknown:
        raise ValueError(f"stations {unknown} are not in weather_assets/domain/data/stations.csv")
    places = pd.DataFrame(
        [
            (s, known[s].station_name, known[s].region, *to_grid(known[s].latitude, known[s].longitude))
            for s in station_ids
        ],
        columns=["station_id", "station_name", "region", "nx", "ny"],
    )
    frame = places.merge(forecast, on=["nx", "ny"]).merge(
        carried[["station_id", *CARRIED_MEASUREMENTS]], on="station_id", how="left"
    )
    frame = frame.assign(
        observed_at=frame["forecast_at"],
        lead_hours=(frame["forecast_at"] - frame["issued_at"]) // pd.Timedelta(hours=1),
        forecast_inputs=_present(frame, FORECAST_MEASUREMENTS),
        carried_inputs=_present(frame, CARRIED_MEASUREMENTS),
    )
    columns = ["station_id", "station_name", "region", "observed_at", "issued_at", "lead_hours", *MEASUREMENTS]
    types = {"station_id": "int64", "station_name": "string", "region": "string", "lead_hours": "int64"}
    types |= {"observed_at": "datetime64[ns]", "issued_at": "datetime64[ns]"} | {m: "float64" for m in MEASUREMENTS}
    types |= {"forecast_inputs": "string", "carried_inputs": "string"}
    frame = frame[[*columns, "forecast_inputs", "carried_inputs"]].astype(types)
    return frame.sort_values(["issued_at", "observed_at", "station_id"]).reset_index(drop=True)


def _present(frame: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """Per row, the comma-separated names among `names` whose value is there."""
    present = frame[list(names)].notna().to_numpy() if len(frame) else []
    return [",".join(n for n, there in zip(names, row, strict=True) if there) for row in present]


class FeatureFileError(ValueError):
    """Bytes that are not an hour's feature file: not parquet, cut short, or without the feature columns."""


_REQUIRED = [column for column in COLUMNS if column not in _ADDED_COLUMNS]


def from_parquet(data: bytes) -> pd.DataFrame:
    """A feature frame from one hour's parquet bytes."""
    return from_parquet_files([data])


def from_parquet_files(files: Iterable[bytes]) -> pd.DataFrame:
    """One feature frame from many hours' parquet bytes, in their order (empty, with the columns, for none)."""
    return from_tables([read_table(data) for data in files])


def read_table(data: bytes) -> pa.Table:
    """One hour's parquet bytes as an Arrow table; `FeatureFileError` says why they are not a feature file."""
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as error:
        raise FeatureFileError(f"{type(error).__name__}: {error}") from None
    absent = [column for column in _REQUIRED if column not in table.column_names]
    if absent:
        raise FeatureFileError(f"no column {', '.join(absent)}")
    return table


def from_tables(tables: Sequence[pa.Table]) -> pd.DataFrame:
    """One feature frame from hours' tables (`read_table`), in their order (empty, with the columns, for none).

    The hours join as Arrow tables and convert to pandas once: per hour, the conversion cost more than the read.
    """
    if not tables:
        return pd.DataFrame(columns=list(COLUMNS)).astype(DTYPES)
    frame = pa.concat_tables(tables, promote_options="default").to_pandas()
    return frame.assign(**{c: math.nan for c in _ADDED_COLUMNS if c not in frame.columns}).astype(DTYPES)
