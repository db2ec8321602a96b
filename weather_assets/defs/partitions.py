"""Hourly partitions keyed by the KST observation hour: partition ``2026-11-26-09:00`` holds the 09:00 KST hour."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from weather_assets.domain.hours import KEY_FORMAT, KST, TIMEZONE, partition_key
from weather_assets.environment import PARTITIONS_START, partitions_start
from weather_assets.kma.forecast import BASE_HOURS


def hourly_partitions(start: str = PARTITIONS_START) -> dg.HourlyPartitionsDefinition:
    """Hours from `start` (``%Y-%m-%d-%H:%M``, KST) to the current hour included (``end_offset=1``).

    The current hour's partition exists as soon as its clock hour starts, so an hour can be materialized as
    soon as KMA has published it (about ten minutes past the hour).
    """
    return dg.HourlyPartitionsDefinition(start_date=start, timezone=TIMEZONE, fmt=KEY_FORMAT, end_offset=1)


# Partitions are the code location's shape, not run configuration: Dagster needs them when it loads the
# definitions, before any resource exists, so the start is read here, once, from WEATHER_PARTITIONS_START.
hourly = hourly_partitions(partitions_start())


def daily_partitions(start: str = PARTITIONS_START) -> dg.DailyPartitionsDefinition:
    """KST days (``%Y-%m-%d``) from the first whole day of the hourly partitions, the last finished day included.

    A day maps to its 24 hourly partitions (Dagster's time-window mapping), so it must not begin before them.
    """
    first = datetime.strptime(start, KEY_FORMAT)
    day = first if first == first.replace(hour=0, minute=0) else first.replace(hour=0, minute=0) + timedelta(days=1)
    return dg.DailyPartitionsDefinition(start_date=day, timezone=TIMEZONE)


daily = daily_partitions(partitions_start())


def base_times_cron(minute: int = 0) -> str:
    """A cron at `minute` past each forecast base time (02, 05, ..., 23): the issues' partitions and schedule."""
    return f"{minute} {','.join(str(hour) for hour in BASE_HOURS)} * * *"


def forecast_issue_partitions(start: str = PARTITIONS_START) -> dg.TimeWindowPartitionsDefinition:
    """KMA's short-term forecast issues (base times 02, 05, ..., 23 KST), keyed by the issue's KST time.

    ``end_offset=1``: the newest issue is a partition as soon as its base time passes; KMA serves it about ten
    minutes later.
    """
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=base_times_cron(), start=start, timezone=TIMEZONE, fmt=KEY_FORMAT, end_offset=1
    )


forecast_issues = forecast_issue_partitions(partitions_start())


def kst_window(window: dg.TimeWindow) -> tuple[datetime, datetime]:
    """A partition time window as naive KST (start included, end excluded), as the lake and the table hold hours."""
    return window.start.astimezone(KST).replace(tzinfo=None), window.end.astimezone(KST).replace(tzinfo=None)


def kst_hours(window: dg.TimeWindow) -> list[datetime]:
    """The naive KST hours of a partition time window (one hour, or a range in a single-run backfill)."""
    start, end = kst_window(window)
    return [start + timedelta(hours=i) for i in range(int((end - start) / timedelta(hours=1)))]


def range_tags(first: datetime, last: datetime) -> dict[str, str]:
    """Run tags that make one run materialize the hours first..last, as a single-run backfill does."""
    return {
        "dagster/asset_partition_range_start": partition_key(first),
        "dagster/asset_partition_range_end": partition_key(last),
    }
