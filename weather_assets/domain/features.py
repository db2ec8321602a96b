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

from weather_assets.domain import kma_fields, kma_format
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
    precipitation_conflicts: dict[datetime, int] = field(default_factory=dict)


def build(
    raw: Mapping[datetime, tuple[bytes, bytes]], stations: Sequence[int], before: Iterable[bytes] = ()
) -> Features:
    """Feature rows of KST hours from their (ASOS, PM10) raw objects: one per hour and reported station.

    The hour's PM10 is `kma_format.hourly_pm10`, the mean of its valid 5-minute readings; a station
    without a dust sensor gets NaN. A station reported twice in an hour keeps one line (`resolve_duplicates`),
    and the lines dropped are counted per hour. `before` holds the raw ASOS objects of the first hour's day before
    it (01:00 on), as far as ingested: the first hour's precipitation needs the day's total so far
    (`precipitation`). Hours where IR 3 met a rising RN_DAY are counted per hour. Raises `KMAFormatError`, naming
    the hour, when an hour has no readable line.
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
    frame = pd.DataFrame(asos_rows, columns=list(kma_fields.ASOS_ROW))
    frame, duplicates = resolve_duplicates(frame[frame["station_id"].isin(stations)])
    earlier = _earlier_rows(before, stations)
    rain, conflicts = precipitation(frame, earlier)
    conflicted = frame.loc[conflicts, "observed_at"].value_counts()
    frame = frame.assign(precipitation=rain)
    pm10 = kma_format.hourly_pm10(pd.DataFrame(pm10_rows, columns=list(kma_fields.PM10_ROW)))
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
    )


def _earlier_rows(before: Iterable[bytes], stations: Sequence[int]) -> pd.DataFrame:
    """The rows of the day's hours before the first, for its day total; an unreadable hour adds none."""
    rows: list[tuple[object, ...]] = []
    for body in before:
        try:
            rows += kma_format.parse_asos(body).rows
        except kma_format.KMAFormatError:
            continue
    frame = pd.DataFrame(rows, columns=list(kma_fields.ASOS_ROW))
    return resolve_duplicates(frame[frame["station_id"].isin(stations)])[0]


def precipitation(rows: pd.DataFrame, earlier: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The precipitation of each station-hour, in mm, meaning the same hour in every season, and whether the row's
    IR 3 conflicted with a rising RN_DAY.

    KMA's help text for kma_sfctm2.php: RN (field 16) "강수량 (mm) : 여름철에는 1시간강수량, 겨울철에는 3시간강수량"
    (summer: the last hour; winter: the last three hours), so RN alone is not an hour's amount, and the help text
    does not say when summer starts; RN_DAY (17) "위 관측시간까지의 일강수량" (the day's amount up to the
    observation time); IR (45) "강수자료 유무 (Code 1819) .. 3(무강수), 4(결측)". Hence:

    - The hour's amount is its day total minus the previous hour's (`_day_totals`). The day starts after 00:00: at
      01:00 the amount is the day total itself, and the 00:00 observation closes the previous day. That midnight
      rule is an assumption no real 23:00/00:00/01:00 sequence has confirmed yet; were KMA to reset RN_DAY at
      00:00, the 00:00 hour would get a day total that went down (no usable figure, NaN) instead of its rain.
    - IR 3 (no precipitation): 0.0, unless RN_DAY rose that hour: then the two disagree, RN_DAY's difference is
      taken (a measured amount outweighs a code) and the row is flagged so the run can count it.
    - IR 4 (missing): NaN. No usable figure (the previous hour not ingested, or its total unknown; a day total that
      went down): NaN.
    RN stays in `raw/` for replay; it is not used, since its period changes with a season KMA does not date.
    """
    key = ["station_id", "observed_at"]
    columns = [*key, "rn_day", "ir"]
    lines = pd.concat([rows[columns], earlier[columns]]) if len(earlier) else rows[columns]
    lines = lines.drop_duplicates(key, keep="first").sort_values(key, kind="stable")
    known = pd.Series(_day_totals(lines).to_numpy(), index=pd.MultiIndex.from_frame(lines[key]))
    previous_hour = pd.MultiIndex.from_arrays([rows["station_id"], rows["observed_at"] - pd.Timedelta(hours=1)])
    total = known.reindex(pd.MultiIndex.from_frame(rows[key])).to_numpy()
    base = pd.Series(known.reindex(previous_hour).to_numpy(), index=rows.index, dtype="float64")
    base[rows["observed_at"].dt.hour == 1] = 0.0
    rise = (total - base).round(1)
    rise[rise < 0] = math.nan
    dry = rows["ir"] == kma_fields.IR_NONE
    conflict = dry & (rise > 0)
    amount = rise.mask(dry & ~conflict, 0.0).mask(rows["ir"] == kma_fields.IR_MISSING)
    return amount.astype("float64"), conflict


def _day_totals(lines: pd.DataFrame) -> pd.Series:
    """Each line's day total so far (lines sorted by station, then hour), NaN where it cannot be known.

    RN_DAY as written, but not on an IR 4 line. A missing RN_DAY on an IR 3 line (no precipitation) carries the
    day's last known total forward through the hours that follow one another: 0.0 from the day's first hour
    (01:00), 4.0 after an hour that wrote 4.0. Any other missing RN_DAY (IR 1 or 2, an unknown code or `-`), or
    an IR 3 line whose hour before is unknown or was not ingested, is NaN: never a silent 0.0.
    """
    ir = lines["ir"]
    total = lines["rn_day"].astype("float64").mask(ir == kma_fields.IR_MISSING)
    carried = (ir == kma_fields.IR_NONE) & total.isna()
    first_hour = lines["observed_at"].dt.hour == 1
    follows = lines.groupby("station_id")["observed_at"].diff() == pd.Timedelta(hours=1)
    starts = ~carried | first_hour | ~follows  # each run of carried lines hangs on the line that starts it
    start_value = total.mask(carried & first_hour, 0.0)
    return start_value.groupby(starts.cumsum()).transform("first")


def resolve_duplicates(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[datetime, int]]:
    """One row per (hour, station): of a station's lines in one hour, the one with the most valid readings,
    then the later one in KMA's answer (a correction follows what it corrects). Returns the rows kept, in their
    order, and how many lines were dropped per hour."""
    measured = [column for column in kma_fields.ASOS_COLUMNS.values() if column in rows.columns]
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
