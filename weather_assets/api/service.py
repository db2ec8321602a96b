"""What the routes share: the settings, the table's reads and the on-demand fallback, and the rules that join
them (serve the newest fresh hour; compute only a missing recent hour; 404 with backfill advice otherwise)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from fastapi import HTTPException

from weather_assets.api.models import Comfort
from weather_assets.api.on_demand import OnDemand, Unavailable
from weather_assets.api.settings import Settings
from weather_assets.api.store import Store
from weather_assets.domain.comfort import label
from weather_assets.domain.hours import current_hour, kst_now, partition_key
from weather_assets.domain.stations import all_stations


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
        return comfort(row)

    async def latest(self, station_id: int) -> Comfort:
        """The newest stored hour when it is fresh enough; else the newest recent hour that can be computed."""
        self.check(station_id)
        deadline = time.monotonic() + self.settings.wait_seconds
        rows = await self.store.latest(station_id, current_hour())
        if rows and kst_now() - rows[0]["prediction_datetime"] <= self.settings.max_staleness:
            return comfort(rows[0])
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


def age(hour: datetime) -> float:
    return round((kst_now() - hour).total_seconds(), 1)


def comfort(row: dict[str, Any]) -> Comfort:
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
        age_seconds=age(row["prediction_datetime"]),
    )
