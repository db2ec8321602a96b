"""KMA's short-term forecast (단기예보, ``getVilageFcst``): its issue times and its answers.

Facts from KMA's VilageFcstInfoService_2.0 guide (Open API 활용가이드, 2024-11-28 edition, as public clients
copy it): eight issues a day at 02, 05, ..., 23 KST (minute 00), each served from about ten minutes later, with
values per 5 km grid point (`grid.to_grid`). Since 2024-11-28 an issue reaches the fifth day counting its own:
hourly to the end of 모레 (two days after the issue's day) for the 02-14 issues and of 글피 (three days after) for
the 17-23 ones, then one more day every three hours (the "extension": 글피, respectively 그글피), where PCP, SNO
and WSD are qualitative class codes instead of amounts. So one issue
at one point can exceed a 1000-row page: answers are paged (``pageNo``, ``numOfRows``, ``totalCount``).
``fcstValue`` is text, read by `forecast_values`, or a JSON null, read as the text "null" (the guide's
"-, null, 0값은 '강수없음'": none for PCP, unreadable for a category without that rule). A result code other
than ``00`` is an error; ``03`` (NO_DATA) is what an issue not yet published gets, ``10`` with "최근 3일 간의
자료만 제공합니다." one older than the three days KMA serves (an answer logged by a public client), ``22`` the
gateway's exhausted daily quota.
Errors of the gateway come as XML (``<OpenAPI_ServiceResponse>``) whatever ``dataType`` asked for.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from weather_assets.kma import wire
from weather_assets.kma.forecast_values import parse_number, parse_pcp, parse_wsd

ENDPOINT = "getVilageFcst"  # VilageFcstInfoService_2.0's short-term forecast
BASE_HOURS = (2, 5, 8, 11, 14, 17, 20, 23)
PUBLICATION_DELAY = timedelta(minutes=10)  # an issue is served from about base time + 10 min
REACH = timedelta(days=5)  # an issue's last forecast hour is within five days of it (KMA's reach since 2024-11-28)
SERVED = timedelta(days=3)  # KMA serves the issues of the last three days ("최근 3일 간의 자료만 제공합니다.")
PAGE_ROWS = 1000  # rows asked for per page: KMA's usual maximum of numOfRows
NO_DATA = "03"
QUOTA_EXCEEDED = "22"  # LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR: the key's daily quota is spent
STAMP_FORMAT = "%Y%m%d%H%M"  # baseDate + baseTime, fcstDate + fcstTime

# category -> column; TMN, TMX (daily extremes), SNO, VEC, UUU, VVV and WAV are not used
_CATEGORIES = {"TMP": "temperature", "REH": "humidity", "WSD": "wind_speed", "PCP": "precipitation", "POP": "pop"}
_CODES = {"SKY": "sky", "PTY": "pty"}
FORECAST_COLUMNS = ("issued_at", "forecast_at", "nx", "ny", *_CATEGORIES.values(), *_CODES.values())
_XML_CODE = re.compile(r"<(?:returnReasonCode|resultCode)>\s*(\d+)\s*<")
_XML_MESSAGES = [re.compile(rf"<{tag}>\s*([^<]*?)\s*<") for tag in ("returnAuthMsg", "resultMsg", "errMsg")]


class KMAForecastError(ValueError):
    """An answer that is not a forecast: KMA's result code (None when there is none) and what was wrong where."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class KMAForecastNoData(KMAForecastError):
    """Result code 03 (NO_DATA): KMA has no answer for this issue and point, typically not published yet."""


@dataclass(frozen=True)
class Page:
    """One page of a ``getVilageFcst`` answer: its items, and ``totalCount``, the items of all its pages."""

    items: list[dict[str, Any]]
    total_count: int


def latest_issue(now: datetime) -> datetime:
    """The newest issue (naive KST) whose answer is due at `now`: base time + 10 minutes <= now."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    issues = sorted((day + timedelta(days=d, hours=h) for d in (-1, 0) for h in BASE_HOURS), reverse=True)
    return next(base for base in issues if base + PUBLICATION_DELAY <= now)  # yesterday's 23:00 always is


def settled_issue(now: datetime, wait: timedelta) -> datetime:
    """The newest issue KMA should have served for all of `wait` (the time a late issue is waited for) and whose
    first forecast hour (base time + 1 h) has begun: asking for it never waits, and it forecasts the current hour."""
    return latest_issue(now - max(wait, timedelta(hours=1) - PUBLICATION_DELAY))


def too_old(issued_at: datetime, now: datetime) -> bool:
    """Whether KMA no longer serves the issue at `now` (it serves the last three days of issues)."""
    return issued_at < now - SERVED


def issues_between(first: datetime, last: datetime) -> list[datetime]:
    """Every issue time from `first` to `last`, both included, oldest first."""
    day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    issues: list[datetime] = []
    while day <= last:
        issues += [day + timedelta(hours=h) for h in BASE_HOURS if first <= day + timedelta(hours=h) <= last]
        day += timedelta(days=1)
    return issues


def in_extension(issued_at: datetime, forecast_at: datetime) -> bool:
    """Whether the hour lies in the issue's 3-hourly extension, where PCP, SNO and WSD are class codes: the third
    day after a 02-14 issue's day (글피), the fourth after a 17-23 issue's (그글피)."""
    return (forecast_at.date() - issued_at.date()).days >= (3 if issued_at.hour <= 14 else 4)


def _value(category: str, text: str, issued_at: datetime, forecast_at: datetime) -> float:
    """One item's value as a number; ValueError for a text that is none of its category's forms."""
    coded = in_extension(issued_at, forecast_at)
    if category == "PCP":
        return parse_pcp(text, coded)
    if category == "WSD":
        return parse_wsd(text, coded)
    value = parse_number(text)
    if category in _CODES and not (math.isnan(value) or value.is_integer()):
        raise ValueError(f"{category} {text!r} is not a code")
    return value


def _where(issued_at: datetime | None, point: tuple[int, int] | None) -> str:
    parts = ([f"issue {issued_at:%Y-%m-%d %H:%M} KST"] if issued_at else []) + (
        [f"grid point nx={point[0]}, ny={point[1]}"] if point else []
    )
    return f" ({', '.join(parts)})" if parts else ""


def read_answer(body: bytes, issued_at: datetime | None = None, point: tuple[int, int] | None = None) -> Page:
    """The page of a ``getVilageFcst`` JSON answer; raises `KMAForecastError` (`KMAForecastNoData` for 03).

    `issued_at` and `point` are what was asked for, only to name them in an error. Without ``totalCount`` the
    page is taken to hold every item.
    """
    where = _where(issued_at, point)
    try:
        answer = json.loads(body.decode("utf-8"))
        header = answer["response"]["header"]
        code, message = str(header["resultCode"]), str(header.get("resultMsg", ""))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        text = body.decode("utf-8", errors="replace")
        code_match = _XML_CODE.search(text)
        message_match = next(filter(None, (pattern.search(text) for pattern in _XML_MESSAGES)), None)
        if code_match is None:
            raise KMAForecastError(
                f"getVilageFcst{where} answered neither KMA's JSON nor its XML error: {wire.snippet(body)!r}"
            ) from None
        code, message = code_match[1], message_match[1] if message_match else ""
    if code != "00":
        kind = KMAForecastNoData if code == NO_DATA else KMAForecastError
        raise kind(f"getVilageFcst{where} answered result code {code} ({message})", code)
    page = answer["response"].get("body") or {}
    items = page.get("items") or {}
    items = list(items.get("item") or []) if isinstance(items, dict) else []
    try:
        total = int(page.get("totalCount", len(items)))
    except (TypeError, ValueError):
        raise KMAForecastError(f"getVilageFcst{where}: totalCount {page.get('totalCount')!r} is no count") from None
    return Page(items, total)


def parse_forecast(
    pages: bytes | Sequence[bytes],
    issued_at: datetime | None = None,
    point: tuple[int, int] | None = None,
    unreadable: list[str] | None = None,
) -> pd.DataFrame:
    """One row per (issued_at, forecast_at, nx, ny) of a ``getVilageFcst`` answer (one body, or the pages of one
    issue and point): TMP, REH, WSD (`parse_wsd`), PCP (`parse_pcp`) and POP as floats, SKY and PTY as nullable
    ints; a category missing at an hour, or KMA's missing value, is NaN.

    Raises `KMAForecastError` for an error answer or an item that names no hour, naming the issue, the point
    and the item. A value that is none of its category's forms (an unknown PCP text, "nan") raises too, unless
    `unreadable` is given: then it is NaN for its hour and its description (issue, point, item) is appended.
    """
    rows: dict[tuple[datetime, datetime, int, int], dict[str, object]] = {}
    bodies = [pages] if isinstance(pages, bytes) else pages
    for item in (item for body in bodies for item in read_answer(body, issued_at, point).items):
        try:
            category, text = str(item["category"]), item["fcstValue"]
            value = "null" if text is None else str(text)  # not "None": the guide's null is PCP's 강수없음
            key = (
                datetime.strptime(f"{item['baseDate']}{item['baseTime']}", STAMP_FORMAT),
                datetime.strptime(f"{item['fcstDate']}{item['fcstTime']}", STAMP_FORMAT),
                int(item["nx"]),
                int(item["ny"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            where = _where(issued_at, point)
            raise KMAForecastError(f"getVilageFcst{where}: unreadable item {item!r}: {error}") from None
        column = _CATEGORIES.get(category) or _CODES.get(category)
        if column is None:
            continue
        try:
            number = _value(category, value, key[0], key[1])
        except ValueError as error:
            problem = f"getVilageFcst{_where(key[0], key[2:])}: unreadable item {item!r}: {error}"
            if unreadable is None:
                raise KMAForecastError(problem) from None
            unreadable.append(problem)
            number = math.nan
        rows.setdefault(key, {})[column] = None if math.isnan(number) and column in _CODES.values() else number
    frame = pd.DataFrame([(*key, *(values.get(c) for c in FORECAST_COLUMNS[4:])) for key, values in rows.items()])
    frame = frame.reindex(columns=range(len(FORECAST_COLUMNS)))
    frame.columns = list(FORECAST_COLUMNS)
    types = {"issued_at": "datetime64[ns]", "forecast_at": "datetime64[ns]", "nx": "int64", "ny": "int64"}
    types |= {c: "float64" for c in _CATEGORIES.values()} | {c: "Int64" for c in _CODES.values()}
    return frame.astype(types).sort_values(["issued_at", "forecast_at", "nx", "ny"]).reset_index(drop=True)
