"""The read API's settings, read from the environment when the app starts (never at import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from weather_assets.domain.hours import KEY_FORMAT
from weather_assets.domain.stations import DEFAULT_STATIONS, parse_station_ids
from weather_assets.environment import (
    DATA_DIR,
    INGEST_MINUTE,
    PARTITIONS_START,
    Env,
    SettingsError,
    data_dir,
    database_url,
    ingest_minute,
    number,
    parse_database_url,
    partitions_start,
    whole_number,
)

__all__ = ["Settings", "SettingsError"]


def _db_url(local: str) -> str:
    """The database the API reads, checked now so that a malformed URL is refused without being shown."""
    for variable in (Env.API_DB_URL, Env.DB_URL):
        raw = variable.get()
        if raw:
            parse_database_url(raw, variable)
            return raw
    return database_url(local)


@dataclass(frozen=True)
class Settings:
    """What the API needs. The on-demand bounds hold per deployment: every worker and replica shares them."""

    db_url: str = field(repr=False)  # may hold a password
    data_dir: str = DATA_DIR
    stations: tuple[int, ...] = tuple(parse_station_ids(DEFAULT_STATIONS))
    partitions_start: datetime = datetime.strptime(PARTITIONS_START, KEY_FORMAT)
    cors_origins: tuple[str, ...] = ()
    # serving what the pipeline made
    max_staleness: timedelta = timedelta(hours=3)
    ingest_minute: int = INGEST_MINUTE  # when the next hour is expected, for HTTP caches: the schedule's minute
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
        """The settings in effect: each variable that is set, the field's default for the others."""
        local = data_dir()
        origins = Env.API_CORS_ORIGINS.get() or ""
        return cls(
            # the read-only account (weather_reader) when set; the code location's database otherwise
            db_url=_db_url(local),
            data_dir=local,
            stations=tuple(parse_station_ids(Env.STATIONS.get() or DEFAULT_STATIONS)),
            partitions_start=datetime.strptime(partitions_start(), KEY_FORMAT),
            cors_origins=tuple(origin.strip() for origin in origins.split(",") if origin.strip()),
            max_staleness=timedelta(hours=number(Env.API_MAX_STALENESS, cls.max_staleness / timedelta(hours=1))),
            ingest_minute=ingest_minute(),
            graphql_url=Env.API_GRAPHQL_URL.get(),
            dagster_home=Env.DAGSTER_HOME.get(),
            on_demand_hours=whole_number(Env.API_ON_DEMAND_HOURS, cls.on_demand_hours),
            max_computations=whole_number(Env.API_MAX_COMPUTATIONS, cls.max_computations),
            max_runs_per_minute=whole_number(Env.API_MAX_RUNS_PER_MINUTE, cls.max_runs_per_minute),
            failure_backoff=timedelta(
                seconds=number(Env.API_FAILURE_BACKOFF_SECONDS, cls.failure_backoff.total_seconds())
            ),
            wait_seconds=number(Env.API_WAIT_SECONDS, cls.wait_seconds),
            run_timeout_seconds=number(Env.API_RUN_TIMEOUT_SECONDS, cls.run_timeout_seconds),
        )
