"""The read API's routes: its own (comfort, history, forecast, health) and the app's existing frontend's calls.

The hot ones answer with the service's kept bytes (`answers.respond`); `response_model` still documents their
shapes in the OpenAPI schema.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from weather_assets.api.answers import NO_STORE, age, respond
from weather_assets.api.models import (
    EVALUATIONS,
    TITLES,
    Comfort,
    Forecast,
    Health,
    History,
    Hourly,
    HourlyPoint,
    Prediction,
    WeatherData,
    Welcome,
    WindowPrediction,
)
from weather_assets.api.service import Service, comfort
from weather_assets.domain.commute import WINDOWS
from weather_assets.domain.hours import current_hour

DEFAULT_STATION = 108
CHART_HOURS = 6
StationId = Annotated[int, Query(ge=1, le=9999, description="ASOS station id")]
At = Annotated[datetime | None, Query(description="KST time (ISO 8601); its hour is answered. Default: the latest.")]

# The kept answers' headers (`answers.respond`), in the schema beside each 200's shape.
CACHED: dict[int | str, dict] = {
    200: {
        "headers": {
            "ETag": {"description": "Weak: the answer, its age_seconds aside.", "schema": {"type": "string"}},
            "Cache-Control": {
                "description": "max-age until the table's next write is expected, stale-while-revalidate.",
                "schema": {"type": "string"},
            },
        }
    },
    304: {"description": "Not Modified: If-None-Match names the current ETag; no body."},
}

router = APIRouter()


def _service(request: Request) -> Service:
    return request.app.state.service


def _hour(at: datetime | None) -> datetime | None:
    """The naive KST hour of `at`; a time zone offset that leaves the calendar is a 422."""
    if at is None:
        return None
    try:
        return current_hour(at)
    except OverflowError:
        raise HTTPException(422, "at is outside the calendar once converted to KST") from None


def _prediction(result: Comfort, prediction_type: str) -> Prediction:
    return Prediction(
        title=TITLES[prediction_type],
        score=round(result.score, 1),
        label=result.label,
        evaluation=EVALUATIONS[result.label],
        prediction_time=result.prediction_datetime.strftime("%Y-%m-%d %H:%M"),
        weather_data=WeatherData(
            temperature=result.temperature,
            humidity=result.humidity,
            rainfall=result.precipitation,
            pm10=result.pm10,
            wind_speed=result.wind_speed,
            pressure=result.pressure,
            region=result.region,
            station_id=result.station_id,
        ),
        prediction_type=prediction_type,
        status="success",
        age_seconds=result.age_seconds,
        lineage=result.lineage,
    )


def _as_comfort(result: Comfort) -> Comfort:
    return result


def _now(result: Comfort) -> Prediction:
    return _prediction(result, "now")


def _greeting(hour: int) -> str:
    if 5 <= hour < 12:
        return "Good morning! Here is how comfortable it is outside."
    if 12 <= hour < 18:
        return "Good afternoon! Here is how comfortable it is outside."
    if 18 <= hour < 22:
        return "Good evening! Here is how comfortable it is outside."
    return "Good night! Here is how comfortable it is outside."


def _check_type(prediction_type: str) -> None:
    if prediction_type not in TITLES:
        raise HTTPException(400, f"prediction_type must be one of {list(TITLES)}, not {prediction_type!r}")


@router.get("/comfort", response_model=Comfort, responses={**CACHED, 404: {}, 503: {}})
async def comfort_of_station(request: Request, station_id: StationId = DEFAULT_STATION, at: At = None) -> Response:
    """A station's comfort: the latest stored hour (default), or the hour of `at`.

    Without `at`: the newest stored hour when it is at most `WEATHER_API_MAX_STALENESS` old, else the latest
    hour computed on request. With `at`: that hour; a missing one is computed only if it is one of the latest
    hours, and is a 404 saying how to backfill it otherwise.
    """
    service = _service(request)
    hour = _hour(at)
    if hour is None:
        answer = await service.newest(station_id, "comfort", _as_comfort)
    else:
        answer = await service.stored(hour, station_id)
    return respond(request, answer, service.clock())


@router.get("/comfort/history", response_model=History)
async def history(
    request: Request,
    station_id: StationId = DEFAULT_STATION,
    hours: Annotated[int, Query(ge=1, le=720, description="how many hours, ending at the current one")] = 24,
) -> History:
    """The stored hours of a station, oldest first (nothing is computed: hours not predicted are absent)."""
    service = _service(request)
    service.check(station_id)
    now = service.clock()
    last = current_hour(now)
    rows = await service.store.history(station_id, last - timedelta(hours=hours - 1), last)
    return History(station_id=station_id, hours=hours, items=[comfort(row, now) for row in rows])


@router.get("/comfort/forecast", response_model=Forecast, responses={**CACHED, 404: {}})
async def forecast(request: Request, station_id: StationId = DEFAULT_STATION) -> Response:
    """The station's forecast hours from the current KST hour on, earliest first, each from the newest issue that
    forecasts it: per hour the comfort forecast, the measurements and which model inputs came from KMA's forecast
    or were carried from the latest observation. 404 when none is stored for the station."""
    service = _service(request)
    return respond(request, await service.forecast(station_id), service.clock())


@router.get("/predict/hourly/{prediction_type}", response_model=Hourly, responses={**CACHED, 400: {}})
async def predict_hourly(
    request: Request, prediction_type: str = PathParam(description="now, morning or evening")
) -> Response:
    """The frontend's chart: the last 6 stored hours at station 108, oldest first."""
    _check_type(prediction_type)
    service = _service(request)

    async def chart() -> Hourly:
        rows = await service.store.latest(DEFAULT_STATION, service.hour(), CHART_HOURS)
        points = [
            HourlyPoint(
                time=row["prediction_datetime"].strftime("%H:00"),
                temperature=row["temperature"],
                pm10=row["pm10"],
                humidity=row["humidity"],
                rainfall=row["precipitation"],
            )
            for row in reversed(rows)
        ]
        return Hourly(hourly=points, count=len(points), status="success")

    return respond(request, await service.kept(("chart", DEFAULT_STATION), chart), service.clock())


@router.get("/predict/now", response_model=Prediction, responses={**CACHED, 503: {}})
async def predict_now(request: Request) -> Response:
    """The frontend's call: the latest comfort at station 108 (as `/comfort`)."""
    service = _service(request)
    return respond(request, await service.newest(DEFAULT_STATION, "now", _now), service.clock())


@router.get("/predict/{prediction_type}", response_model=WindowPrediction, responses={**CACHED, 400: {}, 503: {}})
async def predict_window(
    request: Request, prediction_type: str = PathParam(description="morning or evening (now: /predict/now)")
) -> Response:
    """The frontend's call for the next commute window at station 108, forecast: morning 06:00-08:59 KST (today's
    before 09:00, else tomorrow's), evening 17:00-20:59 (today's before 21:00, else tomorrow's); during the
    window, its hours from the current one on. Each hour from the newest forecast issue that forecasts it; the
    worst hour (lowest score) decides score, label and weather_data; `hours` lists every hour answered.
    503 with Retry-After while no forecast for the window is stored."""
    if prediction_type not in WINDOWS:  # never "now": /predict/now is declared first
        raise HTTPException(400, f"prediction_type must be one of {list(TITLES)}, not {prediction_type!r}")
    service = _service(request)
    return respond(request, await service.window(prediction_type, DEFAULT_STATION), service.clock())


@router.get("/api/welcome", response_model=Welcome)
async def welcome(request: Request) -> Welcome:
    """The frontend's greeting for the KST time of day."""
    now = _service(request).clock()
    return Welcome(message=_greeting(now.hour), current_time=now.strftime("%Y-%m-%d %H:%M"), hour=now.hour)


@router.get("/health", response_model=Health, responses={503: {}})
async def health(request: Request, response: Response) -> Health | JSONResponse:
    """Whether the database answers (503 when it does not, or when its SQLite file is missing), the newest stored
    hour, its age and whether it is within the bound. Never cached: it is the live state."""
    service = _service(request)
    response.headers["Cache-Control"] = NO_STORE
    headers = {"Cache-Control": NO_STORE}
    try:
        if not await service.store.present():
            return JSONResponse({"status": "unavailable", "database": "missing"}, status_code=503, headers=headers)
        newest = await service.store.newest()
    except sa.exc.DBAPIError:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503, headers=headers)
    bound = service.settings.max_staleness
    now = service.clock()
    fresh = newest is not None and now - newest <= bound
    return Health(
        status="ok" if fresh else "stale",
        database="reachable",
        newest_prediction=newest,
        newest_prediction_age_seconds=age(newest, now) if newest else None,
        max_staleness_seconds=bound.total_seconds(),
        fresh=fresh,
        database_reopened_at=service.store.reopened_at,
    )
