"""The read API's settings, read from the environment when the app starts (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from weather_assets.defs.partitions import DEFAULT_START
from weather_assets.domain.hours import KEY_FORMAT
from weather_assets.domain.stations import DEFAULT_STATIONS, parse_station_ids


class SettingsError(ValueError):
    """A setting holds a value the API cannot use; the message names the variable."""


def _number(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.getenv(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}, not {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """What the API needs. The on-demand bounds hold per deployment: every worker and replica shares them."""

    db_url: str
    data_dir: str = ".weather"
    stations: tuple[int, ...] = tuple(parse_station_ids(DEFAULT_STATIONS))
    partitions_start: datetime = datetime.strptime(DEFAULT_START, KEY_FORMAT)
    cors_origins: tuple[str, ...] = ()
    # serving what the pipeline made
    max_staleness: timedelta = timedelta(hours=3)
    # computing a missing recent hour through Dagster, the fallback
    graphql_url: str | None = None
    dagster_home: str | None = None
    on_demand_hours: int = 2
    max_computations: int = 2
    max_runs_per_minute: int = 6
    failure_backoff: timedelta = timedelta(minutes=5)
    wait_seconds: float = 20.0
    run_timeout_seconds: float = 120.0

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
            cors_origins=tuple(origin.strip() for origin in origins.split(",") if origin.strip()),
            max_staleness=timedelta(hours=_number("WEATHER_API_MAX_STALENESS", 3)),
            graphql_url=os.getenv("DAGSTER_GRAPHQL_URL") or None,
            dagster_home=os.getenv("DAGSTER_HOME") or None,
            on_demand_hours=int(_number("WEATHER_API_ON_DEMAND_HOURS", 2)),
            max_computations=int(_number("WEATHER_API_MAX_COMPUTATIONS", 2, minimum=1)),
            max_runs_per_minute=int(_number("WEATHER_API_MAX_RUNS_PER_MINUTE", 6)),
            failure_backoff=timedelta(seconds=_number("WEATHER_API_FAILURE_BACKOFF_SECONDS", 300)),
            wait_seconds=_number("WEATHER_API_WAIT_SECONDS", 20),
            run_timeout_seconds=_number("WEATHER_API_RUN_TIMEOUT_SECONDS", 120, minimum=1),
        )
