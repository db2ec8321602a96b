"""The read API's routes: serving what the pipeline made, with a bounded fallback for the most recent hours."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from weather_assets.api.dagster_runs import dagster_runs
from weather_assets.api.models import (
    EVALUATIONS,
    TITLES,
    Comfort,
    Health,
    History,
    Hourly,
    HourlyPoint,
    Prediction,
    WeatherData,
    Welcome,
)
from weather_assets.api.on_demand import OnDemand, Unavailable
from weather_assets.api.settings import Settings
from weather_assets.api.store import Store, reader_engine
from weather_assets.comfort import label
from weather_assets.partitions import KST, current_hour, kst_now, partition_key
from weather_assets.stations import all_stations

DEFAULT_STATION = 108
CHART_HOURS = 6
StationId = Annotated[int, Query(ge=1, le=9999, description="ASOS station id")]
At = Annotated[datetime | None, Query(description="KST time (ISO 8601); its hour is answered. Default: the latest.")]


class Service:
    """What the routes share: settings, the table's reads, the on-demand fallback."""

    def __init__(self, settings: Settings, store: Store, on_demand: OnDemand) -> None:
        self.settings, self.store, self.on_demand = settings, store, on_demand

    def check(self, station_id: int, hour: datetime | None = None) -> None:
        """404 for a station that is not served, an hour in the future or before the first partition."""
        if station_id not in self.settings.stations:
            raise HTTPException(
                404, f"station {station_id} is not one of the served stations {list(self.settings.stations)}"
            )
        if hour is not None and hour > current_hour():
            raise HTTPException(404, f"{partition_key(hour)} KST is in the future")
        if hour is not None and hour < self.settings.partitions_start:
            first = partition_key(self.settings.partitions_start)
            raise HTTPException(404, f"{partition_key(hour)} KST is before the first hour, {first}")

    async def at(self, hour: datetime, station_id: int, deadline: float) -> Comfort:
        """The stored hour; a missing one computed if it is recent (else a 404 that says how to backfill it)."""
        self.check(station_id, hour)
        row = await self.store.at(hour, station_id)
        if row is None:
            if hour not in self.on_demand.window():
                raise HTTPException(404, _not_computed(hour))
            await self._computed(hour, deadline)
            row = await self.store.at(hour, station_id)
            if row is None:
                raise Unavailable(f"no prediction for station {station_id} at {partition_key(hour)} KST yet")
        return _comfort(row)

    async def latest(self, station_id: int) -> Comfort:
        """The newest stored hour when it is fresh enough; else the newest recent hour that can be computed."""
        self.check(station_id)
        deadline = time.monotonic() + self.settings.wait_seconds
        rows = await self.store.latest(station_id, current_hour())
        if rows and kst_now() - rows[0]["prediction_datetime"] <= self.settings.max_staleness:
            return _comfort(rows[0])
        refused: Unavailable | None = None
        for hour in self.on_demand.window():
            if hour < self.settings.partitions_start:
                break
            try:
                return await self.at(hour, station_id, deadline)
            except Unavailable as error:
                refused = refused or error
        raise refused or Unavailable("no recent comfort is stored yet; retry later")

    async def _computed(self, hour: datetime, deadline: float) -> None:
        computing = asyncio.wrap_future(self.on_demand.ensure(hour))
        computing.add_done_callback(_retrieved)
        # asyncio.wait, not wait_for: a timeout must not cancel the computation other requests wait for
        done, _ = await asyncio.wait({computing}, timeout=max(0.0, deadline - time.monotonic()))
        if not done:
            raise Unavailable(f"{partition_key(hour)} KST is being computed; retry shortly", 10)
        computing.result()  # the computation's own Unavailable, if it failed


def _not_computed(hour: datetime) -> str:
    key = partition_key(hour)
    return (
        f"{key} KST has not been computed. Only the latest hours are computed on request; an older hour is "
        f"backfilled in Dagster: in the UI, materialize kma_observations, weather_features and "
        f"weather_predictions for the partition {key} (or a range), or run `dagster asset materialize -m "
        f"weather_assets.definitions --select kma_observations,weather_features,weather_predictions "
        f"--partition {key}`."
    )


def _retrieved(future: asyncio.Future[None]) -> None:
    """Marks a computation's error as seen when the request that waited for it has already answered 503."""
    if not future.cancelled():
        future.exception()


def _hour(at: datetime | None) -> datetime | None:
    """The naive KST hour of `at`; a time zone offset that leaves the calendar is a 422."""
    if at is None:
        return None
    try:
        if at.tzinfo is not None:
            at = at.astimezone(KST).replace(tzinfo=None)
    except OverflowError:
        raise HTTPException(422, "at is outside the calendar once converted to KST") from None
    return at.replace(minute=0, second=0, microsecond=0)


def _age(hour: datetime) -> float:
    return round((kst_now() - hour).total_seconds(), 1)


def _comfort(row: dict[str, Any]) -> Comfort:
    name, _, version = str(row["model_name"]).partition("/")
    score = float(row["comfort_score"])
    return Comfort(
        station_id=row["station_id"],
        station_name=all_stations()[row["station_id"]].station_name,
        region=row["region"],
        prediction_datetime=row["prediction_datetime"],
        score=round(score, 2),
        label=label(score),
        temperature=row["temperature"],
        humidity=row["humidity"],
        precipitation=row["precipitation"],
        pm10=row["pm10"],
        wind_speed=row["wind_speed"],
        pressure=row["pressure"],
        model_name=name,
        model_version=version,
        age_seconds=_age(row["prediction_datetime"]),
    )


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
    )


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


class _StartupCORS:
    """CORS for the origins of the settings read at startup (Starlette builds its middleware before that)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.cors is None:
            origins = list(scope["app"].state.service.settings.cors_origins)
            self.cors = (
                CORSMiddleware(self.app, allow_origins=origins, allow_methods=["GET"], allow_headers=["*"])
                if origins
                else self.app
            )
        await self.cors(scope, receive, send)


@contextlib.asynccontextmanager
async def _serving(app: FastAPI, settings: Settings | None) -> AsyncIterator[None]:
    active = settings or Settings.from_env()
    sqlite = active.db_url.startswith("sqlite")
    reader = reader_engine(active.db_url)
    engine = sa.create_engine(  # blocking: the on-demand threads' locks and checks
        active.db_url,
        pool_pre_ping=True,
        **({"connect_args": {"check_same_thread": False, "timeout": 30}} if sqlite else {"pool_size": 10}),
    )
    on_demand = OnDemand(active, engine, dagster_runs(active))
    app.state.service = Service(active, Store(reader), on_demand)
    # The imported code (Dagster's included) is permanent: keep it out of the collector's full passes,
    # which otherwise pause a worker for about 100 ms.
    gc.freeze()
    try:
        yield
    finally:
        on_demand.close()
        await reader.dispose()
        engine.dispose()


def _service(request: Request) -> Service:
    return request.app.state.service


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; `settings` for tests, else read from the environment when the app starts."""
    app = FastAPI(
        title="Weather comfort API",
        description="How comfortable is it now? Comfort scores (0 to 100) per ASOS station and KST hour.",
        version="1.1.0",
        lifespan=lambda app: _serving(app, settings),
    )
    app.add_middleware(_StartupCORS)

    @app.exception_handler(Unavailable)
    async def unavailable(_request: Request, error: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(sa.exc.DBAPIError)
    async def database_down(_request: Request, _error: sa.exc.DBAPIError) -> JSONResponse:
        body = {"detail": "the predictions database is unavailable"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "30"})

    @app.get("/comfort", response_model=Comfort, responses={404: {}, 503: {}})
    async def comfort(request: Request, station_id: StationId = DEFAULT_STATION, at: At = None) -> Comfort:
        """A station's comfort: the latest stored hour (default), or the hour of `at`.

        Without `at`: the newest stored hour when it is at most `WEATHER_API_MAX_STALENESS` old, else the latest
        hour computed on request. With `at`: that hour; a missing one is computed only if it is one of the latest
        hours, and is a 404 saying how to backfill it otherwise.
        """
        service = _service(request)
        hour = _hour(at)
        if hour is None:
            return await service.latest(station_id)
        return await service.at(hour, station_id, time.monotonic() + service.settings.wait_seconds)

    @app.get("/comfort/history", response_model=History)
    async def history(
        request: Request,
        station_id: StationId = DEFAULT_STATION,
        hours: Annotated[int, Query(ge=1, le=720, description="how many hours, ending at the current one")] = 24,
    ) -> History:
        """The stored hours of a station, oldest first (nothing is computed: hours not predicted are absent)."""
        service = _service(request)
        service.check(station_id)
        last = current_hour()
        rows = await service.store.history(station_id, last - timedelta(hours=hours - 1), last)
        return History(station_id=station_id, hours=hours, items=[_comfort(row) for row in rows])

    @app.get("/predict/hourly/{prediction_type}", response_model=Hourly, responses={400: {}})
    async def predict_hourly(
        request: Request, prediction_type: str = PathParam(description="now, morning or evening")
    ) -> Hourly:
        """The frontend's chart: the last 6 stored hours at station 108, oldest first."""
        _check_type(prediction_type)
        rows = await _service(request).store.latest(DEFAULT_STATION, current_hour(), CHART_HOURS)
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

    @app.get("/predict/{prediction_type}", response_model=Prediction, responses={400: {}, 503: {}})
    async def predict(
        request: Request, prediction_type: str = PathParam(description="now, morning or evening")
    ) -> Prediction:
        """The frontend's call: the latest comfort at station 108 (as `/comfort`); the type sets the title."""
        _check_type(prediction_type)
        return _prediction(await _service(request).latest(DEFAULT_STATION), prediction_type)

    @app.get("/api/welcome", response_model=Welcome)
    async def welcome() -> Welcome:
        """The frontend's greeting for the KST time of day."""
        now = kst_now()
        return Welcome(message=_greeting(now.hour), current_time=now.strftime("%Y-%m-%d %H:%M"), hour=now.hour)

    @app.get("/health", response_model=Health, responses={503: {}})
    async def health(request: Request) -> Health | JSONResponse:
        """Whether the database answers, the newest stored hour, its age and whether it is within the bound."""
        service = _service(request)
        try:
            newest = await service.store.newest()
        except sa.exc.DBAPIError:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        bound = service.settings.max_staleness
        fresh = newest is not None and kst_now() - newest <= bound
        return Health(
            status="ok" if fresh else "stale",
            database="reachable",
            newest_prediction=newest,
            newest_prediction_age_seconds=_age(newest) if newest else None,
            max_staleness_seconds=bound.total_seconds(),
            fresh=fresh,
        )

    return app
