"""KMA's real answers in `data/kma_real/` (facts; their source is in its README), and the shapes they show.

`shapes` and `shape_violations` read any parsed ASOS frame the same way, so the offline generator is held to what
KMA's real answers do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from weather_assets.kma import wire

FOLDER = Path(__file__).parent / "data" / "kma_real"
SUMMER_RAIN = FOLDER / "asos_sfctm3_stn108_202407_summer_rain_midnight.txt"
WINTER_SNOW = FOLDER / "asos_sfctm3_stn108_202411_winter_snow_midnight.txt"
EXCERPTS = (SUMMER_RAIN, WINTER_SNOW)
WINTER_MONTHS = (11, 12, 1, 2, 3)
_HOUR = timedelta(hours=1)


def parsed(path: Path) -> pd.DataFrame:
    """An excerpt's rows, parsed as the ingest assets parse an answer."""
    return wire.parse_asos(path.read_bytes()).frame


def hours(path: Path) -> list[datetime]:
    """The KST hours an excerpt holds, in order."""
    return sorted({hour for hour, _ in wire.split_block(path.read_bytes()).keys})


def kma_amounts(frame: pd.DataFrame) -> pd.Series:
    """Each hour's precipitation as KMA's own RN_DAY says it (its difference to the previous hour's, 01:00 the day
    total itself, -9.0 as 0.0), NaN where the previous hour is not in the frame: what the features must give."""
    rows = _in_order(frame)
    total = rows["rn_day"].fillna(0.0)
    previous = total.groupby(rows["station_id"]).shift().where(_follows(rows))
    return (total - previous.mask(rows["observed_at"].dt.hour == 1, 0.0)).round(1)


def shapes(frame: pd.DataFrame) -> set[str]:
    """The cases of KMA's precipitation fields a frame shows (see `shape_violations` for how each must look)."""
    rows = _in_order(frame)
    hour, winter = rows["observed_at"].dt.hour, rows["observed_at"].dt.month.isin(WINTER_MONTHS)
    wet = rows["ir"] != 3
    follows = _follows(rows)
    shown = {
        "dry hour (IR 3)": (~wet).any(),
        "wet hour at 09:00 or 21:00 (IR 1)": (wet & hour.isin((9, 21))).any(),
        "wet hour at another hour (IR 4)": (wet & ~hour.isin((9, 21))).any(),
        "trace (RN_DAY 0.0)": (rows["rn_day"] == 0.0).any(),
        "summer RN on a wet hour": (wet & ~winter & rows["rn"].notna()).any(),
        "winter RN at a 3-hourly hour": (winter & rows["rn"].notna()).any(),
        "winter wet hour between 3-hourly ones": (winter & wet & (hour % 3 != 0)).any(),
        "wet midnight (23:00, 00:00, 01:00 wet in a row)": (
            (hour == 1) & wet & _shifted(rows, wet, 1) & _shifted(rows, wet, 2) & follows
        ).any(),
        "day total kept on a later dry hour": (~wet & rows["rn_day"].gt(0)).any(),
    }
    return {name for name, seen in shown.items() if seen}


def shape_violations(frame: pd.DataFrame) -> list[str]:
    """Where a frame's RN, RN_DAY and IR differ from what KMA's real answers do, one line per kind (empty: none)."""
    rows = _in_order(frame)
    at, hour = rows["observed_at"], rows["observed_at"].dt.hour
    winter = at.dt.month.isin(WINTER_MONTHS)
    ir, rn, rn_day = rows["ir"], rows["rn"], rows["rn_day"]
    wet = ir != 3
    follows = _follows(rows) & (hour != 1)  # the previous hour, on the same KMA day (01:00 starts one)
    previous_total = rn_day.groupby(rows["station_id"]).shift().where(follows)
    previous_written = _shifted(rows, rn_day.notna(), 1) & follows
    three_back = rn_day.groupby(rows["station_id"]).shift(3)
    three_in_day = _follows(rows, 3) & hour.isin((0, 3, 6, 9, 12, 15, 18, 21)) & (hour != 3)
    checks = {
        "IR other than 1, 3 or 4": ~ir.isin((1, 3, 4)),
        "IR 1 on a wet hour other than 09:00 and 21:00": (ir == 1) & ~hour.isin((9, 21)),
        "IR 4 on a wet hour at 09:00 or 21:00": (ir == 4) & hour.isin((9, 21)),
        "RN_DAY rose on an IR 3 hour": ~wet & (rn_day.fillna(0) > previous_total.fillna(0)) & follows,
        "RN_DAY went down within a day": (rn_day < previous_total) | (rn_day.isna() & previous_written),
        "RN_DAY changed on a dry hour": ~wet & follows & (rn_day.fillna(-1) != previous_total.fillna(-1)),
        "RN_DAY not written on a wet hour": wet & rn_day.isna(),
        "RN_DAY written at 01:00 on a dry hour": (hour == 1) & ~wet & rn_day.notna(),
        "summer RN not written exactly on wet hours": ~winter & (rn.notna() != wet),
        "summer RN is not the RN_DAY difference": ~winter
        & wet
        & follows
        & ((rn - (rn_day - previous_total.fillna(0))).abs() > 0.05),
        "winter RN between 3-hourly hours": winter & rn.notna() & (hour % 3 != 0),
        "winter RN is not the last three hours' RN_DAY difference": winter
        & rn.notna()
        & (
            ((hour == 3) & ((rn - rn_day).abs() > 0.05))
            | (three_in_day & ((rn - (rn_day.fillna(0) - three_back.fillna(0))).abs() > 0.05))
        ),
    }
    return [f"{name}: {rows.loc[bad, 'observed_at'].iloc[0]}" for name, bad in checks.items() if bad.any()]


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["station_id", "observed_at"]).reset_index(drop=True)


def _follows(rows: pd.DataFrame, hours: int = 1) -> pd.Series:
    """Whether the row `hours` before a row is the same station's line `hours` hours earlier."""
    earlier = rows.groupby("station_id")["observed_at"].shift(hours)
    return (rows["observed_at"] - earlier) == hours * _HOUR


def _shifted(rows: pd.DataFrame, values: pd.Series, hours: int) -> pd.Series:
    return values.astype(float).groupby(rows["station_id"]).shift(hours).fillna(0.0).astype(bool)
