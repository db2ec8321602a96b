"""Hours as the platform names them: naive KST datetimes, and their ``%Y-%m-%d-%H:%M`` keys.

KMA reports in KST, the lake and the table hold naive KST hours, and the hourly partitions are keyed by the KST
observation hour, so this module is the one place that knows the time zone and the key format.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

TIMEZONE = "Asia/Seoul"
KST = ZoneInfo(TIMEZONE)
KEY_FORMAT = "%Y-%m-%d-%H:%M"


def kst_now() -> datetime:
    """The current KST time, naive, as the lake and the table hold times."""
    return datetime.now(KST).replace(tzinfo=None)


def current_hour(now: datetime | None = None) -> datetime:
    """The KST hour that holds `now` (default: the clock), naive: the newest partition at that moment.

    `now` may be aware (any zone: converted to KST) or naive (taken as KST already).
    """
    moment = kst_now() if now is None else now
    if moment.tzinfo is not None:
        moment = moment.astimezone(KST).replace(tzinfo=None)
    return moment.replace(minute=0, second=0, microsecond=0)


def partition_key(hour: datetime) -> str:
    """The partition key of a naive KST hour (``2026-11-26-09:00``)."""
    return hour.strftime(KEY_FORMAT)
