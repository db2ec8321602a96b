"""What the routes share: the settings, the tables' reads and the on-demand fallback, and the rules that join
them (serve the newest fresh hour; compute only a missing recent hour; 404 with backfill advice otherwise; a
commute window's hours each from the newest forecast issue that forecasts it, judged by its worst hour). The hot
answers are kept (`cache`) and say how long HTTP caches may keep them: until their table's next expected write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime, timedelta
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel

from weather_assets.api.answers import Answer, age
from weather_assets.api.cache import AnswerCache, Miss, Watch
from weather_assets.api.models import (
    EVALUATIONS,
    TITLES,
    Comfort,
    Forecast,
    ForecastHour,
    Lineage,
    WeatherData,
    WindowHour,
    WindowPrediction,
)
from weather_assets.api.on_demand import OnDemand, Unavailable
from weather_assets.api.settings import Settings
from weather_assets.api.store import Store
from weather_assets.domain.comfort import label
from weather_assets.domain.commute import WINDOWS, next_window, window_start, worst_hour
from weather_assets.domain.features import MEASUREMENTS
from weather_assets.domain.hours import current_hour, kst_now, partition_key
from weather_assets.domain.stations import all_stations
from weather_assets.domain.tables import FORECASTS, PREDICTIONS

HOUR = timedelta(hours=1)
FORECAST_HORIZON = timedelta(days=7)  # beyond KMA's short-term forecast (about 3 days)
FORECAST_RETRY_SECONDS = 600  # issues come every 3 hours; the pipeline scores one within minutes
# When the next issue's forecasts are expected: KMA issues every 3 hours (kma_forecast.BASE_HOURS) and the
# forecast_issued schedule scores an issue 15 minutes after its base time.
ISSUE_INTERVAL, ISSUE_SCORED = timedelta(hours=3), timedelta(minutes=15)


def window_title(kind: str, hours: list[datetime], now: datetime) -> str:
    """``Morning commute tomorrow (Wed 12-02, 06-09)``: the day and the whole window."""
    start, end = WINDOWS[kind]
    day = "today" if hours[0].date() == now.date() else "tomorrow"
    return f"{TITLES[kind]} {day} ({hours[0]:%a %m-%d}, {start:02d}-{end:02d})"


class Service:
    """What the routes share: settings, the tables' reads, the on-demand fallback, the clock (naive KST)."""

    def __init__(
        self, settings: Settings, store: Store, on_demand: OnDemand, clock: Callable[[], datetime] = kst_now
    ) -> None:
        self.settings, self.store, self.on_demand, self.clock = settings, store, on_demand, clock
        self.predictions, self.forecasts = Watch(store, PREDICTIONS.name), Watch(store, FORECASTS.name)
        self.cache = AnswerCache()

    def hour(self) -> datetime:
        """The current KST hour by the service's clock (every rule of the API asks this, never the wall clock)."""
        return current_hour(self.clock())

    def check(self, station_id: int, hour: datetime | None = None) -> None:
        """404 for a station that is not served, an hour in the future or before the first partition."""
        if station_id not in self.settings.stations:
            raise HTTPException(
                404, f"station {station_id} is not one of the served stations {list(self.settings.stations)}"
            )
        if hour is not None and hour > self.hour():
            raise HTTPException(404, f"{partition_key(hour)} KST is in the future")
        if hour is not None and hour < self.settings.partitions_start:
            first = partition_key(self.settings.partitions_start)
            raise HTTPException(404, f"{partition_key(hour)} KST is before the first hour, {first}")

    async def at(self, hour: datetime, station_id: int, deadline: float) -> Comfort:
        """The stored hour; a missing one computed if it is recent (else a 404 that says how to backfill it)."""
        self.check(station_id, hour)
        row = await self.store.at(hour, station_id)
        if row is None:
            if hour not in self.on_demand.window(self.hour()):
                raise HTTPException(404, _not_computed(hour))
            await self._computed(hour, deadline)
            row = await self.store.at(hour, station_id)
            if row is None:
                raise Unavailable(f"no prediction for station {station_id} at {partition_key(hour)} KST yet")
        return comfort(row, self.clock())

    async def latest(self, station_id: int) -> Comfort:
        """The newest stored hour when it is fresh enough; else the newest recent hour that can be computed."""
        self.check(station_id)
        deadline = time.monotonic() + self.settings.wait_seconds
        now = self.clock()
        rows = await self.store.latest(station_id, current_hour(now))
        if rows and now - rows[0]["prediction_datetime"] <= self.settings.max_staleness:
            return comfort(rows[0], now)
        refused: Unavailable | None = None
        for hour in self.on_demand.window(current_hour(now)):
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

    async def window(self, kind: str, station_id: int) -> Answer:
        """The next `kind` commute window at the station, each hour from the newest issue that forecasts it; a 503
        with Retry-After while no issue forecasts any of them (the pipeline has not scored one yet)."""
        self.check(station_id)
        now = self.clock()

        async def build() -> tuple[Answer, None]:
            hours = next_window(kind, now)
            rows = await self.store.forecast(station_id, hours[0], hours[-1])
            if not rows:
                raise Unavailable(
                    f"the forecast for the {kind} commute of {hours[0]:%Y-%m-%d} is not available yet; retry later",
                    FORECAST_RETRY_SECONDS,
                )
            answer = window_prediction(kind, now, hours, rows)
            return Answer.of(answer, self._next_issue(now), window_start(kind, hours)), None

        return await self.cache.get((kind, station_id, current_hour(now)), self.forecasts, now, build)

    async def forecast(self, station_id: int) -> Answer:
        """The station's forecast hours from the current hour on, each from the newest issue that forecasts it;
        a 404 when none is stored."""
        self.check(station_id)
        now = self.clock()
        hour = current_hour(now)

        async def build() -> tuple[Answer, None]:
            rows = await self.store.forecast(station_id, hour, hour + FORECAST_HORIZON)
            if not rows:
                raise HTTPException(
                    404, f"no forecast for station {station_id} from {partition_key(hour)} KST is stored"
                )
            name, _, version = str(rows[0]["model_name"]).partition("/")
            answer = Forecast(
                station_id=station_id,
                station_name=all_stations()[station_id].station_name,
                region=rows[0]["region"],
                issued_at=max(row["issued_at"] for row in rows),
                model_name=name,
                model_version=version,
                hours=[forecast_hour(row) for row in rows],
            )
            return Answer.of(answer, self._next_issue(now)), None

        return await self.cache.get(("forecast", station_id, hour), self.forecasts, now, build)

    async def newest(self, station_id: int, name: str, shape: Callable[[Comfort], BaseModel]) -> Answer:
        """`latest` in the shape `shape` gives (`name` tells the shapes apart): the newest stored hour kept until
        it is past the staleness bound; the fallback's answer, when it is needed, not kept."""
        self.check(station_id)
        now = self.clock()
        hour = current_hour(now)

        async def build() -> tuple[Answer, datetime]:
            rows = await self.store.latest(station_id, hour)
            if not rows or now - rows[0]["prediction_datetime"] > self.settings.max_staleness:
                raise Miss
            stored = rows[0]["prediction_datetime"]
            expires = stored + self.settings.max_staleness
            return Answer.of(shape(comfort(rows[0], now)), min(expires, self._next_hour()), stored), expires

        try:
            return await self.cache.get((name, station_id, hour), self.predictions, now, build)
        except Miss:
            result = await self.latest(station_id)
            return Answer.of(shape(result), self._next_hour(), result.prediction_datetime)

    async def stored(self, hour: datetime, station_id: int) -> Answer:
        """`at` as an answer: a stored hour kept; a missing one read, computed or refused by `at`, not kept."""
        self.check(station_id, hour)
        now = self.clock()

        async def build() -> tuple[Answer, None]:
            row = await self.store.at(hour, station_id)
            if row is None:
                raise Miss
            return Answer.of(comfort(row, now), self._next_hour(), hour), None

        try:
            return await self.cache.get(("at", station_id, hour), self.predictions, now, build)
        except Miss:
            result = await self.at(hour, station_id, time.monotonic() + self.settings.wait_seconds)
            return Answer.of(result, self._next_hour(), hour)

    async def kept(self, key: Hashable, shape: Callable[[], Awaitable[BaseModel]]) -> Answer:
        """Another answer from the predictions table that changes only when it does (in the current hour)."""
        now = self.clock()

        async def build() -> tuple[Answer, None]:
            return Answer.of(await shape(), self._next_hour()), None

        return await self.cache.get((*key, current_hour(now)), self.predictions, now, build)

    def _next_hour(self) -> datetime:
        """When the predictions table's next hour is expected: the hour after its newest, at the ingest minute."""
        newest = self.predictions.newest
        if newest is None:
            return self.clock()
        return newest + HOUR + timedelta(minutes=self.settings.ingest_minute)

    def _next_issue(self, now: datetime) -> datetime:
        """When a forecast answer next changes: the next hour (its hours start there), or sooner the next issue."""
        following = current_hour(now) + HOUR
        newest = self.forecasts.newest
        return following if newest is None else min(following, newest + ISSUE_INTERVAL + ISSUE_SCORED)


def window_prediction(kind: str, now: datetime, hours: list[datetime], rows: list[dict[str, Any]]) -> WindowPrediction:
    """The window in the frontend's shape; its worst hour (`commute.worst_hour`) decides the score, label and
    weather_data. `prediction_time` is the window's start, also during it, when `hours` holds the hours to come."""
    worst = worst_hour(rows)
    word = label(float(worst["comfort_score"]))
    start = window_start(kind, hours)
    return WindowPrediction(
        title=window_title(kind, hours, now),
        score=round(float(worst["comfort_score"]), 1),
        label=word,
        evaluation=EVALUATIONS[word],
        prediction_time=start.strftime("%Y-%m-%d %H:%M"),
        weather_data=WeatherData(**_frontend_weather(worst), region=worst["region"], station_id=worst["station_id"]),
        prediction_type=kind,
        status="success",
        age_seconds=round((now - start).total_seconds(), 1),
        lineage=lineage(worst),
        issued_at=max(row["issued_at"] for row in rows),
        hours=[window_hour(row) for row in rows],
    )


def window_hour(row: dict[str, Any]) -> WindowHour:
    score = float(row["comfort_score"])
    return WindowHour(
        time=row["forecast_datetime"].strftime("%H:00"),
        score=round(score, 1),
        label=label(score),
        **_frontend_weather(row),
        lead_hours=row["lead_hours"],
        issued_at=row["issued_at"],
    )


def forecast_hour(row: dict[str, Any]) -> ForecastHour:
    score = float(row["comfort_score"])
    return ForecastHour(
        forecast_datetime=row["forecast_datetime"],
        issued_at=row["issued_at"],
        lead_hours=row["lead_hours"],
        score=round(score, 2),
        label=label(score),
        **_measurements(row),
        forecast_inputs=_names(row["forecast_inputs"]),
        carried_inputs=_names(row["carried_inputs"]),
        lineage=lineage(row),
    )


def lineage(row: dict[str, Any]) -> Lineage:
    """A row's lineage columns (NULL on a row written before they existed, or read from a table that lacks them)."""
    return Lineage(**{name: row[name] for name in Lineage.model_fields})


def _measurements(row: dict[str, Any]) -> dict[str, Any]:
    """The six measurements of a table row, named as the response models name them."""
    return {name: row[name] for name in MEASUREMENTS}


def _frontend_weather(row: dict[str, Any]) -> dict[str, Any]:
    """The measurements as the app's frontend names them (its `rainfall` is the hour's precipitation)."""
    return {("rainfall" if name == "precipitation" else name): row[name] for name in MEASUREMENTS}


def _names(joined: str | None) -> list[str]:
    return [name.strip() for name in (joined or "").split(",") if name.strip()]


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


def comfort(row: dict[str, Any], now: datetime) -> Comfort:
    name, _, version = str(row["model_name"]).partition("/")
    score = float(row["comfort_score"])
    return Comfort(
        station_id=row["station_id"],
        station_name=all_stations()[row["station_id"]].station_name,
        region=row["region"],
        prediction_datetime=row["prediction_datetime"],
        score=round(score, 2),
        label=label(score),
        **_measurements(row),
        model_name=name,
        model_version=version,
        age_seconds=age(row["prediction_datetime"], now),
        lineage=lineage(row),
    )
