"""Offline stand-in for ``getVilageFcst``: KMA's JSON answer, consistent with the offline observations.

The forecast of hour H issued at B is what `observations.observe` says about H, plus an error that grows with
the lead H - B: smooth noise seeded by (grid point, issue, field) for temperature, humidity and wind, and a
timing error for precipitation (a rain spell arrives some hours early or late, more hours at longer leads).
A grid point takes the mean weather of the shipped stations on it; a point without one gets the weather of a
placeholder station of its own. Values are written as KMA writes them (text, PCP as a class), over KMA's reach
since 2024-11-28: hourly to the end of the third day after a 17-23 issue's day (the second after a 02-14
issue's), then the next day every three hours with PCP, SNO and WSD as class codes (`forecast.in_extension`).
A 17-23 issue so holds more than 1000 items, a page's worth: answers are paged as KMA pages them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache

from weather_assets.domain.stations import all_stations
from weather_assets.kma.forecast import (
    BASE_HOURS,
    NO_DATA,
    PUBLICATION_DELAY,
    STAMP_FORMAT,
    in_extension,
    too_old,
)
from weather_assets.kma.grid import to_grid
from weather_assets.offline.observations import EPOCH, mix, name_seed, observe, smooth_noise, unit, wet_and_rain

_HOUR = timedelta(hours=1)
_SEEDS = {name: name_seed(name) for name in ("TMP", "REH", "WSD", "PCP")}


def _header(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"header": {"resultCode": code, "resultMsg": message}}


def _json(answer: Mapping[str, object]) -> bytes:
    """Compact UTF-8 JSON with the Korean text as text, as KMA sends it."""
    return json.dumps({"response": answer}, ensure_ascii=False, separators=(",", ":")).encode()


@cache
def _stations_at(point: tuple[int, int]) -> tuple[int, ...]:
    """The shipped stations on a grid point; for a point without one, a placeholder id of its own."""
    ids = tuple(s.station_id for s in all_stations().values() if to_grid(s.latitude, s.longitude) == point)
    return ids or (1_000_000 + point[0] * 1000 + point[1],)


def _observed(stations: tuple[int, ...], hour: datetime, field: str) -> float:
    """The stations' mean reading of one hour; a missing reading is replaced by the hour before's."""
    values = []
    for station in stations:
        moment = hour
        while (value := observe(station, moment)[field]) is None:
            moment -= _HOUR
        values.append(float(value))  # type: ignore[arg-type]
    return sum(values) / len(values)


def _rain(stations: tuple[int, ...], hour: datetime) -> float:
    return sum(wet_and_rain(station, hour)[1] for station in stations) / len(stations)


def pcp_text(mm: float) -> str:
    """KMA's PCP class of an amount (its guide's table)."""
    if mm < 0.1:
        return "강수없음"
    if mm < 1.0:
        return "1mm 미만"
    if mm < 30.0:
        return f"{mm:.1f}mm"
    return "30.0~50.0mm" if mm < 50.0 else "50.0mm 이상"


def sno_text(cm: float) -> str:
    """KMA's SNO class of an amount, as KMA writes it now: "0.5cm 미만" (0.1 to under 0.5 cm), "X.Ycm" (0.5 to
    4.9), "5.0cm 이상". Older guides and answers have "1cm 미만" (0.1 to under 1.0) as the lowest class."""
    if cm < 0.1:
        return "적설없음"
    if cm < 0.5:
        return "0.5cm 미만"
    return f"{cm:.1f}cm" if cm < 5.0 else "5.0cm 이상"


def forecast_hours(issued_at: datetime) -> list[datetime]:
    """The hours an issue forecasts, as KMA's guide lays them out: hourly from the base time + 1 h, then the
    extension's day (`forecast.in_extension`) at 00, 03, ..., 21."""
    extension = issued_at.replace(hour=0) + timedelta(days=3 if issued_at.hour <= 14 else 4)
    hourly = [issued_at + _HOUR * lead for lead in range(1, (extension - issued_at) // _HOUR)]
    return hourly + [extension + 3 * _HOUR * step for step in range(8)]


def _coded(values: dict[str, str], rain: float, wind: float) -> dict[str, str]:
    """An extension hour's values: PCP, SNO and WSD as the guide's class codes instead of amounts."""
    pcp = "강수없음" if rain < 0.1 else "1" if rain < 3 else "2" if rain < 15 else "3"
    sno = "적설없음" if values["SNO"] == "적설없음" else "1" if rain < 1 else "2"
    return {**values, "PCP": pcp, "SNO": sno, "WSD": "1" if wind < 4 else "2" if wind < 9 else "3"}


def _hour_values(point: tuple[int, int], issued_at: datetime, hour: datetime) -> dict[str, str]:
    """The forecast categories of one hour, as KMA's text, from the observations plus a lead-grown error."""
    stations = _stations_at(point)
    lead = (hour - issued_at) / _HOUR
    issue_key = mix(point[0], point[1], int((issued_at - EPOCH) / _HOUR))

    def error(field: str, base: float, growth: float) -> float:
        return (base + growth * lead) * smooth_noise(issue_key ^ _SEEDS[field], lead, 8)

    temperature = _observed(stations, hour, "TA") + error("TMP", 0.4, 0.05)
    humidity = min(100.0, max(5.0, _observed(stations, hour, "HM") + error("REH", 2.0, 0.25)))
    wind = max(0.0, _observed(stations, hour, "WS") + error("WSD", 0.3, 0.03))
    shift = round((0.5 + lead / 12) * smooth_noise(issue_key ^ _SEEDS["PCP"], lead, 12))  # hours early (-) or late (+)
    rain = round(_rain(stations, hour + timedelta(hours=shift)), 1)
    near = max(_rain(stations, hour + timedelta(hours=shift + d)) for d in (-2, -1, 1, 2))
    direction = int(unit(issue_key, int(lead)) * 36) * 10
    snowing = rain > 0 and temperature < 1.0
    pop = min(100, 60 + 10 * math.ceil(rain)) if rain > 0 else 30 if near > 0 else 0
    values = {
        "TMP": f"{round(temperature):d}",
        "UUU": f"{-wind * math.sin(math.radians(direction)):.1f}",
        "VVV": f"{-wind * math.cos(math.radians(direction)):.1f}",
        "VEC": f"{direction:d}",
        "WSD": f"{wind:.1f}",
        "SKY": "4" if rain > 0 or humidity >= 85 else "3" if humidity >= 65 or near > 0 else "1",
        "PTY": "0" if rain <= 0 else "3" if temperature < -1.0 else "2" if snowing else "1",
        "POP": f"{pop:d}",
        "WAV": "0",
        "PCP": pcp_text(rain),
        "REH": f"{round(humidity):d}",
        "SNO": sno_text(rain if snowing else 0.0),  # about a centimetre of snow per millimetre of water
    }
    return _coded(values, rain, wind) if in_extension(issued_at, hour) else values


def _items(point: tuple[int, int], issued_at: datetime) -> list[dict[str, object]]:
    """Every item of one issue at one point, in KMA's order: hour by hour, TMN after 06:00, TMX after 15:00."""
    stamp = issued_at.strftime(STAMP_FORMAT)
    forecast = {hour: _hour_values(point, issued_at, hour) for hour in forecast_hours(issued_at)}
    items: list[dict[str, object]] = []
    for hour, values in forecast.items():
        if hour.hour in (6, 15):  # the day's lowest (06:00) and highest (15:00) of the hours forecast
            day = [float(v["TMP"]) for h, v in forecast.items() if h.date() == hour.date()]
            values = {**values, "TMN" if hour.hour == 6 else "TMX": f"{min(day) if hour.hour == 6 else max(day):.1f}"}
        fcst = hour.strftime(STAMP_FORMAT)
        items += [
            {
                "baseDate": stamp[:8],
                "baseTime": stamp[8:],
                "category": category,
                "fcstDate": fcst[:8],
                "fcstTime": fcst[8:],
                "fcstValue": value,
                "nx": point[0],
                "ny": point[1],
            }
            for category, value in values.items()
        ]
    return items


def respond(params: Mapping[str, str], now: datetime) -> bytes:
    """The ``getVilageFcst`` answer to these query parameters at `now` (naive KST), paged as asked."""
    try:
        issued_at = datetime.strptime(params["base_date"] + params["base_time"], STAMP_FORMAT)
        point = (int(params["nx"]), int(params["ny"]))
        page, rows = int(params.get("pageNo", "1")), int(params.get("numOfRows", "10"))
    except (KeyError, ValueError):
        return _json(_header("10", "INVALID_REQUEST_PARAMETER_ERROR"))
    if issued_at.hour not in BASE_HOURS or issued_at.minute or page < 1 or rows < 1:
        return _json(_header("10", "INVALID_REQUEST_PARAMETER_ERROR"))
    if issued_at + PUBLICATION_DELAY > now:
        return _json(_header(NO_DATA, "NO_DATA"))
    if too_old(issued_at, now):
        return _json(_header("10", "최근 3일 간의 자료만 제공합니다."))
    items = _items(point, issued_at)
    chosen = items[(page - 1) * rows : page * rows]
    if not chosen:
        return _json(_header(NO_DATA, "NO_DATA"))
    body = {"dataType": "JSON", "items": {"item": chosen}, "pageNo": page, "numOfRows": rows, "totalCount": len(items)}
    return _json({**_header("00", "NORMAL_SERVICE"), "body": body})
