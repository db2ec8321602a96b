"""KMA's short-term forecast (단기예보, ``getVilageFcst``): its issue times, its answers, and forecast features.

Facts from KMA's VilageFcstInfoService_2.0 guide, as public clients quote it: eight issues a day at
02, 05, ..., 23 KST (minute 00), each served from about ten minutes later, with hourly values per 5 km grid
point (`grid.to_grid`) for about three days; ``fcstValue`` is always text, and PCP is a class
("강수없음", "1mm 미만", "6.9mm", "30.0~50.0mm", "50.0mm 이상"). A result code other than ``00`` is an error;
``03`` (NO_DATA) is what an issue not yet published gets, ``10`` with "최근 3일 간의 자료만 제공합니다." one older
than the three days KMA serves (an answer logged by a public client). Errors of the gateway come as XML
(``<OpenAPI_ServiceResponse>``) whatever ``dataType`` asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from weather_assets.domain import kma_format
from weather_assets.domain.features import MEASUREMENTS
from weather_assets.domain.grid import to_grid
from weather_assets.domain.stations import all_stations

BASE_HOURS = (2, 5, 8, 11, 14, 17, 20, 23)
PUBLICATION_DELAY = timedelta(minutes=10)  # an issue is served from about base time + 10 min
NO_DATA = "03"
STAMP_FORMAT = "%Y%m%d%H%M"  # baseDate + baseTime, fcstDate + fcstTime

# category -> column; TMN, TMX (daily extremes), SNO, VEC, UUU, VVV and WAV are not used
_CATEGORIES = {"TMP": "temperature", "REH": "humidity", "WSD": "wind_speed", "PCP": "precipitation", "POP": "pop"}
_CODES = {"SKY": "sky", "PTY": "pty"}
FORECAST_COLUMNS = ("issued_at", "forecast_at", "nx", "ny", *_CATEGORIES.values(), *_CODES.values())
FORECAST_MEASUREMENTS = ("temperature", "humidity", "precipitation", "wind_speed")  # what the forecast gives
CARRIED_MEASUREMENTS = ("pm10", "pressure")  # what it lacks, carried from the latest observation
_NONE = {"강수없음", "-", "0", "0.0", ""}  # KMA's guide: "-, null, 0값은 '강수없음'"
_AMOUNT = r"(\d+(?:\.\d+)?)\s*mm"
_BELOW = re.compile(rf"{_AMOUNT}\s*미만")
_AT_LEAST = re.compile(rf"{_AMOUNT}\s*이상")
_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*~\s*" + _AMOUNT)
_EXACT = re.compile(_AMOUNT)
_XML_CODE = re.compile(r"<(?:returnReasonCode|resultCode)>\s*(\d+)\s*<")
_XML_MESSAGES = [re.compile(rf"<{tag}>\s*([^<]*?)\s*<") for tag in ("returnAuthMsg", "resultMsg", "errMsg")]


class KMAForecastError(ValueError):
    """An answer that is not a forecast: KMA's result code (None when there is none) and what was wrong where."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class KMAForecastNoData(KMAForecastError):
    """Result code 03 (NO_DATA): KMA has no answer for this issue and point, typically not published yet."""


def latest_issue(now: datetime) -> datetime:
    """The newest issue (naive KST) whose answer is due at `now`: base time + 10 minutes <= now."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    issues = sorted((day + timedelta(days=d, hours=h) for d in (-1, 0) for h in BASE_HOURS), reverse=True)
    return next(base for base in issues if base + PUBLICATION_DELAY <= now)  # yesterday's 23:00 always is


def issues_between(first: datetime, last: datetime) -> list[datetime]:
    """Every issue time from `first` to `last`, both included, oldest first."""
    day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    issues: list[datetime] = []
    while day <= last:
        issues += [day + timedelta(hours=h) for h in BASE_HOURS if first <= day + timedelta(hours=h) <= last]
        day += timedelta(days=1)
    return issues


def parse_pcp(text: str) -> float:
    """Millimetres of a PCP class (the hour's precipitation), one rule per form of KMA's guide.

    - "강수없음" (also "-", "0", empty, which the guide says mean the same): 0.0.
    - "X.Ymm" (1.0 to 29.9 mm, exact): X.Y.
    - "Xmm 미만" ("1mm 미만", also written "1.0mm 미만": 0.1 to under 1.0 mm): X / 2, the class's middle
      (0.5): any rain counts, and the comfort rule's rain penalty starts at any amount above 0.
    - "A~Bmm" ("30.0~50.0mm"): the midpoint (A + B) / 2, the least-biased single value of a bounded class.
    - "Xmm 이상" ("50.0mm 이상"): X, the lower bound, since an open class has no midpoint; the comfort rule's
      rain penalty is capped long before 50 mm, so the choice does not change a score.
    Raises ValueError for any other text, so a new form is noticed instead of read as dry.
    """
    value = text.strip()
    if value in _NONE:
        return 0.0
    if match := _BELOW.fullmatch(value):
        return float(match[1]) / 2
    if match := _AT_LEAST.fullmatch(value):
        return float(match[1])
    if match := _RANGE.fullmatch(value):
        return (float(match[1]) + float(match[2])) / 2
    if match := _EXACT.fullmatch(value):
        return float(match[1])
    raise ValueError(f"unknown PCP form {text!r} (expected e.g. 강수없음, 1mm 미만, 6.9mm, 30.0~50.0mm, 50.0mm 이상)")


def _where(issued_at: datetime | None, point: tuple[int, int] | None) -> str:
    parts = ([f"issue {issued_at:%Y-%m-%d %H:%M} KST"] if issued_at else []) + (
        [f"grid point nx={point[0]}, ny={point[1]}"] if point else []
    )
    return f" ({', '.join(parts)})" if parts else ""


def read_answer(
    body: bytes, issued_at: datetime | None = None, point: tuple[int, int] | None = None
) -> list[dict[str, Any]]:
    """The items of a ``getVilageFcst`` JSON answer; raises `KMAForecastError` (`KMAForecastNoData` for 03).

    `issued_at` and `point` are what was asked for, only to name them in an error.
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
                f"getVilageFcst{where} answered neither KMA's JSON nor its XML error: {kma_format.snippet(body)!r}"
            ) from None
        code, message = code_match[1], message_match[1] if message_match else ""
    if code != "00":
        kind = KMAForecastNoData if code == NO_DATA else KMAForecastError
        raise kind(f"getVilageFcst{where} answered result code {code} ({message})", code)
    items = (answer["response"].get("body") or {}).get("items") or {}
    return list(items.get("item") or []) if isinstance(items, dict) else []


def parse_forecast(
    body: bytes, issued_at: datetime | None = None, point: tuple[int, int] | None = None
) -> pd.DataFrame:
    """One row per (issued_at, forecast_at, nx, ny) of a ``getVilageFcst`` answer: TMP, REH, WSD, PCP (`parse_pcp`)
    and POP as floats, SKY and PTY as nullable ints; a category missing at an hour is NaN. Raises
    `KMAForecastError` for an error answer or an unreadable item, naming the issue, the point and the item."""
    rows: dict[tuple[datetime, datetime, int, int], dict[str, object]] = {}
    for item in read_answer(body, issued_at, point):
        try:
            category, value = str(item["category"]), str(item["fcstValue"])
            column = _CATEGORIES.get(category) or _CODES.get(category)
            if column is None:
                continue
            key = (
                datetime.strptime(f"{item['baseDate']}{item['baseTime']}", STAMP_FORMAT),
                datetime.strptime(f"{item['fcstDate']}{item['fcstTime']}", STAMP_FORMAT),
                int(item["nx"]),
                int(item["ny"]),
            )
            number = parse_pcp(value) if category == "PCP" else float(value)
        except (KeyError, TypeError, ValueError) as error:
            raise KMAForecastError(
                f"getVilageFcst{_where(issued_at, point)}: unreadable item {item!r}: {error}"
            ) from None
        rows.setdefault(key, {})[column] = int(number) if column in _CODES.values() else number
    frame = pd.DataFrame([(*key, *(values.get(c) for c in FORECAST_COLUMNS[4:])) for key, values in rows.items()])
    frame = frame.reindex(columns=range(len(FORECAST_COLUMNS)))
    frame.columns = list(FORECAST_COLUMNS)
    types = {"issued_at": "datetime64[ns]", "forecast_at": "datetime64[ns]", "nx": "int64", "ny": "int64"}
    types |= {c: "float64" for c in _CATEGORIES.values()} | {c: "Int64" for c in _CODES.values()}
    return frame.astype(types).sort_values(["issued_at", "forecast_at", "nx", "ny"]).reset_index(drop=True)


def forecast_features(forecast: pd.DataFrame, carried: pd.DataFrame, station_ids: Sequence[int]) -> pd.DataFrame:
    """Feature rows of forecast hours, per station, read like observations by the comfort rule and the model.

    A station takes the forecast of its grid point (`grid.to_grid`); ``observed_at`` is the forecast hour,
    ``lead_hours`` the hours from the issue to it. Temperature, humidity, precipitation and wind speed are the
    forecast's. The forecast has no PM10 and no pressure, so these are carried: the station's row of
    `carried` (one per station, its latest observed ``pm10`` and ``pressure``) is held for every forecast hour
    (persistence, the usual forecast of slow quantities without a model of their own); NaN when the station
    has no such row or value, which the comfort rule and the model read as a missing reading.
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
