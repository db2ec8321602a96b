"""The app's commute windows and how a window is judged from its hours' forecasts.

The API's `/predict/morning` and `/predict/evening` and the main command's forecast lines share these rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from weather_assets.domain.hours import current_hour

HOUR = timedelta(hours=1)
# The commute windows: KST hours [start, end). The frontend's titles name them.
WINDOWS = {"morning": (6, 9), "evening": (17, 21)}


def next_window(kind: str, now: datetime) -> list[datetime]:
    """The hours of the next `kind` commute window at the naive KST time `now`, earliest first.

    Today's window until it has ended, else tomorrow's. During the window, only its hours from the current one
    on: the hours behind are history, and the worst of them must not condemn the rest of the commute.
    """
    start, end = WINDOWS[kind]
    hour = current_hour(now)
    day = hour.replace(hour=0) + (timedelta(days=1) if hour.hour >= end else timedelta())
    first = max(day + start * HOUR, hour)
    return [first + n * HOUR for n in range((day + end * HOUR - first) // HOUR)]


def window_start(kind: str, hours: Sequence[datetime]) -> datetime:
    """The start (06:00 or 17:00) of the window whose hours `next_window` gave, also once it has begun."""
    return hours[0].replace(hour=WINDOWS[kind][0])


def newest_per_hour(rows: pd.DataFrame) -> pd.DataFrame:
    """Of forecast rows of several issues, each station's hour from the newest issue that forecasts it.

    A newer issue starts an hour after its base time, so the hour of its base time, and the hours before, come
    from an older issue rather than vanishing (the read API's store applies the same rule in SQL).
    """
    newest = rows.sort_values("issued_at").drop_duplicates(["station_id", "forecast_datetime"], keep="last")
    return newest.sort_values(["station_id", "forecast_datetime"]).reset_index(drop=True)


def worst_hour(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The hour that judges a window: the lowest comfort score, the earliest of equals. A commuter is out for the
    whole window, and a mean would hide a rainy hour."""
    return min(rows, key=lambda row: (row["comfort_score"], row["forecast_datetime"]))
