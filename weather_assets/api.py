"""The read API: "how comfortable is it now?" from the predictions table, computed at most once per hour.

    uvicorn weather_assets.api:app --host 127.0.0.1 --port 8000

Cache-first: a hit is one read on the table's unique key, made on the event loop through an asyncio driver
(asyncmy for MySQL and MariaDB, aiosqlite for SQLite), so a hit never waits for a thread. On a miss the API has
the hour materialized through Dagster (the `ingest_and_predict` job), through the GraphQL API when
``DAGSTER_GRAPHQL_URL`` names a webserver, else in this process; concurrent requests for the same hour wait for
that one materialization, across worker processes too (a MySQL named lock, or a lock file on SQLite). Settings
are read when the app starts, from the environment (README, "The read API").
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.types import ASGIApp, Receive, Scope, Send

from weather_assets.comfort import label
from weather_assets.partitions import DEFAULT_START, KEY_FORMAT, KST, partition_key
from weather_assets.predictions_table import TABLE, predictions_table
from weather_assets.stations import DEFAULT_STATIONS, all_stations, parse_station_ids

DEFAULT_STATION = 108
StationId = Annotated[int, Query(ge=1, le=9999, description="ASOS station id")]
RETRY_AFTER_SECONDS = 30
EVALUATIONS = {
    "excellent": "Excellent: a perfect time to be outside.",
    "good": "Good: pleasant weather to go out.",
    "fair": "Fair: bearable, dress for the weather.",
    "poor": "Poor: uncomfortable, stay in if you can.",
}
TITLES = {"now": "Comfort now", "morning": "Morning commute (6-9)", "evening": "Evening commute (18-21)"}
ASYNC_DRIVERS = {"mysql": "asyncmy", "mariadb": "asyncmy", "sqlite": "aiosqlite"}


@dataclass(frozen=True)
class Settings:
    """What the API needs, from the environment when it starts (never at import)."""

    db_url: str
    data_dir: str = ".weather"
    stations: tuple[int, ...] = tuple(parse_station_ids(DEFAULT_STATIONS))
    partitions_start: datetime = datetime.strptime(DEFAULT_START, KEY_FORMAT)
    wait_seconds: float = 20.0
    cors_origins: tuple[str, ...] = ()
    graphql_url: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = os.getenv("WEATHER_DATA_DIR") or ".weather"
        default_db = f"sqlite:///{(Path(data_dir) / 'weather.db').resolve()}"
        origins = os.getenv("WEATHER_API_CORS_ORIGINS", "")
        return cls(
            # the read-only account (weather_reader) when set; the platform's database URL otherwise
            db_url=os.getenv("WEATHER_API_DB_URL") or os.getenv("WEATHER_DB_URL") or default_db,
            data_dir=data_dir,
            stations=tuple(parse_station_ids(os.getenv("WEATHER_STATIONS") or DEFAULT_STATIONS)),
            partitions_start=datetime.strptime(os.getenv("WEATHER_PARTITIONS_START") or DEFAULT_START, KEY_FORMAT),
            wait_seconds=float(os.getenv("WEATHER_API_WAIT_SECONDS") or 20),
            cors_origins=tuple(origin.strip() for origin in origins.split(",") if origin.strip()),
            graphql_url=os.getenv("DAGSTER_GRAPHQL_URL") or None,
        )


class WeatherData(BaseModel):
    temperature: float | None
    humidity: float | None
    rainfall: float | None
    pm10: float | None
    wind_speed: float | None
    pressure: float | None
    region: str | None
    station_id: int


class Comfort(BaseModel):
    """One station-hour's comfort, as stored."""

    station_id: int
    station_name: str
    region: str | None
    prediction_datetime: datetime
    score: float
    label: str
    temperature: float | None
    humidity: float | None
    precipitation: float | None
    pm10: float | None
    wind_speed: float | None
    pressure: float | None
    model_name: str
    model_version: str
    age_seconds: float


class History(BaseModel):
    station_id: int
    hours: int
    items: list[Comfort]


class Prediction(BaseModel):
    """The response shape of the app's existing frontend."""

    title: str
    score: float
    label: str
    evaluation: str
    prediction_time: str
    weather_data: WeatherData
    prediction_type: str
    status: str


class Health(BaseModel):
    status: str
    database: str
    newest_prediction: datetime | None = None
    newest_prediction_age_seconds: float | None = None


class Unavailable(Exception):
    """The answer cannot be given now; the client should retry after `RETRY_AFTER_SECONDS`."""


def current_hour() -> datetime:
    """The current KST hour, naive, as the table stores hours."""
    return datetime.now(KST).replace(minute=0, second=0, microsecond=0, tzinfo=None)


def _hour(at: datetime | None) -> datetime:
    if at is None:
        return current_hour()
    if at.tzinfo is not None:
        at = at.astimezone(KST).replace(tzinfo=None)
    return at.replace(minute=0, second=0, microsecond=0)


def async_url(url: str) -> sa.URL:
    """The same database through its asyncio driver, for the request path."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"the read API serves MySQL, MariaDB or SQLite databases, not {backend!r}")
    return parsed.set(drivername=f"{backend}+{ASYNC_DRIVERS[backend]}")


def _statements(table: sa.Table) -> dict[str, sa.Select]:
    """The API's reads, built once; values are bound per request (never formatted into SQL)."""
    columns = table.c
    return {
        "at": sa.select(table).where(
            columns.prediction_datetime == sa.bindparam("hour"), columns.station_id == sa.bindparam("station_id")
        ),
        "history": sa.select(table)
        .where(
            columns.station_id == sa.bindparam("station_id"),
            columns.prediction_datetime.between(sa.bindparam("first"), sa.bindparam("last")),
        )
        .order_by(columns.prediction_datetime),
        "newest": sa.select(sa.func.max(columns.prediction_datetime), sa.func.max(columns.updated_at)),
    }


@dataclass
class Store:
    """Reads of the predictions table, and single-flight computation of missing hours.

    `reader` serves requests on the event loop; `engine` (blocking) holds the cross-process hour locks in the
    threads that compute missing hours.
    """

    settings: Settings
    engine: sa.Engine
    reader: AsyncEngine
    table: sa.Table = field(default_factory=lambda: predictions_table(TABLE))
    _inflight: dict[datetime, Future[None]] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="serve-hour"))
    _exists: bool = False

    def __post_init__(self) -> None:
        self.statements = _statements(self.table)

    async def ready(self) -> bool:
        """Whether the table exists yet (before the first materialization it does not: every hour is a miss)."""
        if not self._exists:
            async with self.reader.connect() as connection:
                self._exists = await connection.run_sync(lambda sync: sa.inspect(sync).has_table(self.table.name))
        return self._exists

    async def _rows(self, name: str, **values: Any) -> list[sa.RowMapping]:
        """One statement's rows; a connection the server dropped is replaced once (no ping before every read)."""
        try:
            return await self._execute(name, values)
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
            return await self._execute(name, values)

    async def _execute(self, name: str, values: dict[str, Any]) -> list[sa.RowMapping]:
        async with self.reader.connect() as connection:
            return list((await connection.execute(self.statements[name], values)).mappings())

    async def read(self, hour: datetime, station_id: int) -> dict[str, Any] | None:
        if not await self.ready():
            return None
        rows = await self._rows("at", hour=hour, station_id=station_id)
        return dict(rows[0]) if rows else None

    async def history(self, station_id: int, first: datetime, last: datetime) -> list[dict[str, Any]]:
        if not await self.ready():
            return []
        return [dict(row) for row in await self._rows("history", station_id=station_id, first=first, last=last)]

    async def newest(self) -> tuple[datetime | None, datetime | None]:
        if not await self.ready():
            return None, None
        (row,) = await self._rows("newest")
        return tuple(row.values())  # type: ignore[return-value]

    def ensure(self, hour: datetime) -> Future[None]:
        """The one computation of `hour` in this process, started if none is running."""
        with self._guard:
            running = self._inflight.get(hour)
            if running is None:
                running = self._pool.submit(self._compute, hour)
                self._inflight[hour] = running
                running.add_done_callback(lambda _: self._forget(hour))
            return running

    def _forget(self, hour: datetime) -> None:
        with self._guard:
            self._inflight.pop(hour, None)

    def _compute(self, hour: datetime) -> None:
        with self._hour_lock(hour):
            if self._has_hour(hour):  # another worker process computed it while this one waited
                return
            materialize_hour(hour, self.settings)

    def _has_hour(self, hour: datetime) -> bool:
        if not sa.inspect(self.engine).has_table(self.table.name):
            return False
        query = sa.select(sa.func.count()).where(self.table.c.prediction_datetime == hour)
        with self.engine.connect() as connection:
            return bool(connection.execute(query).scalar_one())

    @contextlib.contextmanager
    def _hour_lock(self, hour: datetime) -> Iterator[None]:
        """Held by one worker process at a time: a MySQL named lock, or a lock file beside the SQLite database."""
        name = f"weather-serve-{partition_key(hour)}"
        if self.engine.dialect.name in ("mysql", "mariadb"):
            with self.engine.connect() as connection:
                got = connection.execute(sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": 600})
                if got.scalar() != 1:
                    raise Unavailable(f"could not take the lock for {partition_key(hour)}")
                try:
                    yield
                finally:
                    connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            return
        folder = Path(self.settings.data_dir) / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{name.replace(':', '')}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def materialize_hour(hour: datetime, settings: Settings) -> None:
    """Ingest and predict one hour through Dagster: via the webserver's GraphQL API if set, else in this process."""
    key = partition_key(hour)
    if settings.graphql_url:
        from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

        address = urlsplit(settings.graphql_url)
        client = DagsterGraphQLClient(
            address.hostname or "127.0.0.1", port_number=address.port, use_https=address.scheme == "https"
        )
        try:
            run_id = client.submit_job_execution(
                "ingest_and_predict", tags={"dagster/partition": key, "weather/served_by": "api"}
            )
            while (status := client.get_run_status(run_id).value) not in ("SUCCESS", "FAILURE", "CANCELED"):
                time.sleep(1)
        except DagsterGraphQLClientError as error:
            raise Unavailable(f"Dagster could not run {key}: {error}") from None
        if status != "SUCCESS":
            raise Unavailable(f"the ingest_and_predict run for {key} ended {status}")
        return
    import dagster as dg

    from weather_assets.definitions import defs
    from weather_assets.jobs import ingest_and_predict_job

    instance = dg.DagsterInstance.get() if os.getenv("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [*defs.assets],
        selection=ingest_and_predict_job.selection,
        partition_key=key,
        resources=defs.resources,
        instance=instance,
        tags={"weather/served_by": "api"},
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},  # the run's log is in Dagster
    )
    if not result.success:
        raise Unavailable(f"materializing {key} failed; see the run {result.run_id} in Dagster")


def _retrieved(future: asyncio.Future[None]) -> None:
    """Marks a computation's error as seen when the request that waited for it has already answered 503."""
    if not future.cancelled():
        future.exception()


def _comfort(row: dict[str, Any]) -> Comfort:
    name, _, version = str(row["model_name"]).partition("/")
    updated = row["updated_at"]
    return Comfort(
        station_id=row["station_id"],
        station_name=all_stations()[row["station_id"]].station_name,
        region=row["region"],
        prediction_datetime=row["prediction_datetime"],
        score=round(float(row["comfort_score"]), 2),
        label=label(float(row["comfort_score"])),
        temperature=row["temperature"],
        humidity=row["humidity"],
        precipitation=row["precipitation"],
        pm10=row["pm10"],
        wind_speed=row["wind_speed"],
        pressure=row["pressure"],
        model_name=name,
        model_version=version,
        age_seconds=round((datetime.now(UTC).replace(tzinfo=None) - updated).total_seconds(), 1),
    )


def _store(request: Request) -> Store:
    return request.app.state.store


def _check_hour_and_station(store: Store, hour: datetime, station_id: int) -> None:
    if station_id not in store.settings.stations:
        raise HTTPException(
            404, f"station {station_id} is not one of the served stations {list(store.settings.stations)}"
        )
    if hour > current_hour():
        raise HTTPException(404, f"{partition_key(hour)} KST is in the future")
    if hour < store.settings.partitions_start:
        raise HTTPException(
            404, f"{partition_key(hour)} KST is before the first hour, {partition_key(store.settings.partitions_start)}"
        )


async def comfort_at(store: Store, hour: datetime, station_id: int) -> Comfort:
    """Cache-first: the stored row, else the hour computed once (bounded wait), else Unavailable."""
    _check_hour_and_station(store, hour, station_id)
    row = await store.read(hour, station_id)
    if row is None:
        computing = asyncio.wrap_future(store.ensure(hour))
        computing.add_done_callback(_retrieved)
        # asyncio.wait, not wait_for: a timeout must not cancel the computation other requests wait for
        done, _ = await asyncio.wait({computing}, timeout=store.settings.wait_seconds)
        if not done:
            raise Unavailable(f"{partition_key(hour)} KST is being computed")
        computing.result()  # the computation's own error, if it failed
        row = await store.read(hour, station_id)
        if row is None:
            raise Unavailable(f"no prediction for station {station_id} at {partition_key(hour)} KST yet")
    return _comfort(row)


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
            origins = list(scope["app"].state.store.settings.cors_origins)
            self.cors = (
                CORSMiddleware(self.app, allow_origins=origins, allow_methods=["GET"], allow_headers=["*"])
                if origins
                else self.app
            )
        await self.cors(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; `settings` for tests, else read from the environment when the app starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = settings or Settings.from_env()
        sqlite = active.db_url.startswith("sqlite")
        # Reads autocommit, so a pooled connection needs no rollback on return and holds no SQLite read lock.
        reader = create_async_engine(
            async_url(active.db_url),
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
            pool_recycle=3600,
            **({} if sqlite else {"pool_size": 25, "max_overflow": 5}),
            **({"connect_args": {"timeout": 30}} if sqlite else {}),
        )
        engine = sa.create_engine(
            active.db_url,
            pool_pre_ping=True,
            **({"connect_args": {"check_same_thread": False, "timeout": 30}} if sqlite else {}),
        )
        app.state.store = Store(active, engine, reader)
        # The imported code (Dagster's included) is permanent: keep it out of the collector's full passes,
        # which otherwise pause a worker for about 100 ms.
        gc.freeze()
        try:
            yield
        finally:
            await reader.dispose()
            engine.dispose()

    app = FastAPI(
        title="Weather comfort API",
        description="How comfortable is it now? Comfort scores (0 to 100) per ASOS station and KST hour.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.add_middleware(_StartupCORS)

    @app.exception_handler(Unavailable)
    async def unavailable(_request: Request, error: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(sa.exc.DBAPIError)
    async def database_down(_request: Request, _error: sa.exc.DBAPIError) -> JSONResponse:
        body = {"detail": "the predictions database is unavailable"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.get("/comfort", response_model=Comfort, responses={404: {}, 503: {}})
    async def comfort(
        request: Request,
        station_id: StationId = DEFAULT_STATION,
        at: Annotated[datetime | None, Query(description="KST time (ISO 8601); its hour is answered")] = None,
    ) -> Comfort:
        """The comfort of a station at an hour (default: station 108, the current KST hour)."""
        return await comfort_at(_store(request), _hour(at), station_id)

    @app.get("/comfort/history", response_model=History)
    async def history(
        request: Request,
        station_id: StationId = DEFAULT_STATION,
        hours: Annotated[int, Query(ge=1, le=720, description="how many hours, ending at the current one")] = 24,
    ) -> History:
        """The stored hours of a station, oldest first (no computation: hours not yet predicted are absent)."""
        store = _store(request)
        last = current_hour()
        _check_hour_and_station(store, last, station_id)
        rows = await store.history(station_id, last - timedelta(hours=hours - 1), last)
        return History(station_id=station_id, hours=hours, items=[_comfort(row) for row in rows])

    @app.get("/predict/{prediction_type}", response_model=Prediction, responses={400: {}, 503: {}})
    async def predict(
        request: Request, prediction_type: str = PathParam(description="now, morning or evening")
    ) -> Prediction:
        """The frontend's call: the current hour at station 108; the type changes the title."""
        if prediction_type not in TITLES:
            raise HTTPException(400, f"prediction_type must be one of {list(TITLES)}, not {prediction_type!r}")
        result = await comfort_at(_store(request), current_hour(), DEFAULT_STATION)
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
        )

    @app.get("/health", response_model=Health, responses={503: {}})
    async def health(request: Request) -> Health | JSONResponse:
        """Whether the database answers, and how old the newest prediction is."""
        try:
            newest, updated = await _store(request).newest()
        except sa.exc.DBAPIError:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        age = (datetime.now(UTC).replace(tzinfo=None) - updated).total_seconds() if updated else None
        return Health(status="ok", database="reachable", newest_prediction=newest, newest_prediction_age_seconds=age)

    return app


app = create_app()
