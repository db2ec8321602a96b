"""From raw ASOS and PM10 objects to the cleaned hourly feature table, and its parquet files."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from weather_assets.domain import kma_format
from weather_assets.domain.hours import partition_key
from weather_assets.domain.stations import all_stations

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
class Features:
    """Feature rows of some hours, the configured stations KMA did not report, and the lines skipped."""

    frame: pd.DataFrame
    missing_stations: dict[datetime, list[int]]
    skipped_lines: dict[datetime, list[str]]
    duplicate_lines: dict[datetime, int] = field(default_factory=dict)


def build(
    raw: Mapping[datetime, tuple[bytes, bytes]], stations: Sequence[int], before: bytes | None = None
) -> Features:
    """Feature rows of KST hours from their (ASOS, PM10) raw objects: one per hour and reported station.

    The hour's PM10 is `kma_format.hourly_pm10`, the mean of its valid 5-minute readings; a station
    without a dust sensor gets NaN. A station reported twice in an hour keeps one line (`resolve_duplicates`),
    and the lines dropped are counted per hour. `before` is the raw ASOS object of the hour before the first,
    when there is one: the first hour's precipitation needs its day total (`precipitation`). Raises
    `KMAFormatError`, naming the hour, when an hour has no readable line.
    """
    asos_rows: list[tuple[object, ...]] = []
    pm10_rows: list[tuple[object, ...]] = []
    skipped: dict[datetime, list[str]] = {}
    for hour, (asos, pm10) in raw.items():
        try:
            parsed, readings = kma_format.parse_asos(asos), kma_format.parse_pm10(pm10)
        except kma_format.KMAFormatError as error:
            raise kma_format.KMAFormatError(f"hour {partition_key(hour)}: {error}") from None
        lines = [f"raw/asos line {n}: {why}" for n, why in parsed.skipped]
        lines += [f"raw/pm10 line {n}: {why}" for n, why in readings.skipped]
        if lines:
            skipped[hour] = lines
        asos_rows += (row for row in parsed.rows if row[1] == hour)
        pm10_rows += readings.rows
    frame = pd.DataFrame(asos_rows, columns=list(kma_format.ASOS_ROW))
    frame, duplicates = resolve_duplicates(frame[frame["station_id"].isin(stations)])
    earlier = _earlier_rows(before, stations)
    frame = frame.assign(precipitation=precipitation(frame, earlier))
    pm10 = kma_format.hourly_pm10(pd.DataFrame(pm10_rows, columns=list(kma_format.PM10_ROW)))
    frame = frame.merge(pm10, how="left", on=["observed_at", "station_id"])
    known = all_stations()
    frame = frame.assign(
        station_name=frame["station_id"].map(lambda s: known[s].station_name),
        region=frame["station_id"].map(lambda s: known[s].region),
    )
    frame = frame.sort_values(["observed_at", "station_id"])[list(COLUMNS)].astype(DTYPES).reset_index(drop=True)
    reported = frame.groupby("observed_at")["station_id"].agg(set).to_dict()
    missing = {hour: sorted(set(stations) - reported.get(hour, set())) for hour in raw}
    return Features(frame, {hour: ids for hour, ids in missing.items() if ids}, skipped, duplicates)


def _earlier_rows(before: bytes | None, stations: Sequence[int]) -> pd.DataFrame:
    """The rows of the hour before the first, for its day total; none when that hour was never ingested."""
    if before is None:
        return pd.DataFrame(columns=list(kma_format.ASOS_ROW))
    try:
        rows = kma_format.parse_asos(before).frame
    except kma_format.KMAFormatError:
        return pd.DataFrame(columns=list(kma_format.ASOS_ROW))
    return resolve_duplicates(rows[rows["station_id"].isin(stations)])[0]


def precipitation(rows: pd.DataFrame, earlier: pd.DataFrame) -> pd.Series:
    """The precipitation of each station-hour, in mm, meaning the same hour in every season.

    KMA's help text for kma_sfctm2.php: RN (field 16) "강수량 (mm) : 여름철에는 1시간강수량, 겨울철에는 3시간강수량"
    (summer: the last hour; winter: the last three hours), so RN alone is not an hour's amount, and the help text
    does not say when summer starts; RN_DAY (17) "위 관측시간까지의 일강수량" (the day's amount up to the
    observation time); IR (45) "강수자료 유무 (Code 1819) .. 3(무강수), 4(결측)". Hence:

    - IR 3 (no precipitation): 0.0. IR 4 (missing): NaN.
    - Otherwise the hour's amount is RN_DAY minus the previous hour's RN_DAY (the day starts after 00:00, so at
      01:00 it is RN_DAY itself; the 00:00 observation closes the previous day). RN_DAY's missing code on a
      line that reports no precipitation is 0.0 so far; with IR 1 or 2 (precipitation reported) it is NaN.
    - No usable figure (the previous hour not ingested, or missing; a day total that went down): NaN.
    RN stays in `raw/` for replay; it is not used, since its period changes with a season KMA does not date.
    """
    day_so_far = _day_total(rows)
    key = ["station_id", "observed_at"]
    frames = [rows[key].assign(total=day_so_far)]
    if len(earlier):
        frames.append(earlier[key].assign(total=_day_total(earlier)))
    known = pd.concat(frames).drop_duplicates(key, keep="first").set_index(key)["total"]
    previous_hour = pd.MultiIndex.from_arrays([rows["station_id"], rows["observed_at"] - pd.Timedelta(hours=1)])
    base = pd.Series(known.reindex(previous_hour).to_numpy(), index=rows.index, dtype="float64")
    base[rows["observed_at"].dt.hour == 1] = 0.0
    amount = (day_so_far - base).round(1)
    amount[amount < 0] = math.nan
    amount[rows["ir"] == kma_format.IR_NONE] = 0.0
    amount[rows["ir"] == kma_format.IR_MISSING] = math.nan
    return amount.astype("float64")


def _day_total(rows: pd.DataFrame) -> pd.Series:
    """RN_DAY with its missing code read by IR: 0.0 when no precipitation is reported, NaN otherwise."""
    reported = rows["ir"].isin(kma_format.IR_REPORTED) | (rows["ir"] == kma_format.IR_MISSING)
    total = rows["rn_day"].astype("float64")
    return total.where(total.notna() | reported, 0.0).where(rows["ir"] != kma_format.IR_MISSING)


def resolve_duplicates(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[datetime, int]]:
    """One row per (hour, station): of a station's lines in one hour, the one with the most valid readings,
    then the later one in KMA's answer (a correction follows what it corrects). Returns the rows kept, in their
    order, and how many lines were dropped per hour."""
    measured = [column for column in kma_format.ASOS_COLUMNS.values() if column in rows.columns]
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


def from_parquet(data: bytes) -> pd.DataFrame:
    """A feature frame from one hour's parquet bytes."""
    return from_parquet_files([data])


def from_parquet_files(files: Iterable[bytes]) -> pd.DataFrame:
    """One feature frame from many hours' parquet bytes, in their order (empty, with the columns, for none).

    The hours join as Arrow tables and convert to pandas once: per hour, the conversion cost more than the read.
    """
    tables = [pq.read_table(pa.BufferReader(data)) for data in files]
    if not tables:
        return pd.DataFrame(columns=list(COLUMNS)).astype(DTYPES)
    return pa.concat_tables(tables, promote_options="default").to_pandas().astype(DTYPES)
