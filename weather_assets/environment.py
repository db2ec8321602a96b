"""The environment variables that configure the platform, and the embedded defaults used when they are unset.

One list for the code location (which binds resource fields to these names with `dg.EnvVar`), the read API and
the main command (which read them when they start), so a variable is named once, and one place for the embedded
defaults. `get` reads a variable when it is called. Two settings are read when the code location is imported,
because they are the shape of its definitions, which Dagster needs before any resource exists: the first
partition (`partitions_start`) and the ingest schedule's minute (`ingest_minute`); both refuse a bad value with
a message that names the variable. Every numeric setting has its range in `LIMITS`: a value outside it (nan and
infinities included) is refused, naming the variable and the range, rather than hanging, crashing or starving
the platform later.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from weather_assets.domain.hours import KEY_FORMAT

DATA_DIR = ".weather"  # local state, under the working directory, when WEATHER_DATA_DIR is unset
PARTITIONS_START = "2025-01-01-00:00"  # the first hourly partition (KST) when WEATHER_PARTITIONS_START is unset
INGEST_MINUTE = 10  # the hourly schedule's minute (KST) when WEATHER_INGEST_MINUTE is unset
KMA_POLL_SECONDS = 10  # between asks for an hour KMA has not published, when WEATHER_KMA_POLL_SECONDS is unset
KMA_WAIT_MINUTES = 50  # how long after an hour KMA may still publish it, when WEATHER_KMA_WAIT_MINUTES is unset
N = TypeVar("N", int, float)


class Env(StrEnum):
    """A variable's name (the README's Configuration table and docs/read-api.md say what each means)."""

    DATA_DIR = "WEATHER_DATA_DIR"
    LAKE_URL = "WEATHER_LAKE_URL"
    DB_URL = "WEATHER_DB_URL"
    TRACKING_URI = "MLFLOW_TRACKING_URI"
    KMA_AUTH_KEY = "KMA_AUTH_KEY"
    KMA_API_URL = "KMA_API_URL"
    KMA_FORECAST_URL = "KMA_FORECAST_URL"
    STATIONS = "WEATHER_STATIONS"
    PARTITIONS_START = "WEATHER_PARTITIONS_START"
    INGEST_MINUTE = "WEATHER_INGEST_MINUTE"
    KMA_POLL_SECONDS = "WEATHER_KMA_POLL_SECONDS"
    KMA_WAIT_MINUTES = "WEATHER_KMA_WAIT_MINUTES"
    DAGSTER_HOME = "DAGSTER_HOME"
    API_DB_URL = "WEATHER_API_DB_URL"
    API_CORS_ORIGINS = "WEATHER_API_CORS_ORIGINS"
    API_MAX_STALENESS = "WEATHER_API_MAX_STALENESS"
    API_ON_DEMAND_HOURS = "WEATHER_API_ON_DEMAND_HOURS"
    API_MAX_COMPUTATIONS = "WEATHER_API_MAX_COMPUTATIONS"
    API_MAX_RUNS_PER_MINUTE = "WEATHER_API_MAX_RUNS_PER_MINUTE"
    API_FAILURE_BACKOFF_SECONDS = "WEATHER_API_FAILURE_BACKOFF_SECONDS"
    API_WAIT_SECONDS = "WEATHER_API_WAIT_SECONDS"
    API_RUN_TIMEOUT_SECONDS = "WEATHER_API_RUN_TIMEOUT_SECONDS"
    API_LOCK_SECRET = "WEATHER_API_LOCK_SECRET"
    API_GRAPHQL_URL = "DAGSTER_GRAPHQL_URL"

    def get(self) -> str | None:
        """The variable's value now; an empty value counts as unset."""
        return os.getenv(self.value) or None


class SettingsError(ValueError):
    """A setting holds a value the platform cannot use; the message names the variable."""


@dataclass(frozen=True)
class Limits:
    """A numeric setting's range, both ends included, and its unit; `whole`: a count, read by `whole_number`."""

    low: float
    high: float
    unit: str
    whole: bool = False

    def __str__(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} from {self.low:g} to {self.high:g} ({self.unit})"


# The ranges in which each numeric setting makes sense: beyond them a value is a typo or would harm the platform
# (a run that never times out, a request list of a billion hours, KMA polled without pause).
LIMITS: dict[Env, Limits] = {
    Env.INGEST_MINUTE: Limits(0, 59, "minute of the hour", whole=True),
    Env.KMA_POLL_SECONDS: Limits(1, 600, "seconds", whole=True),
    Env.KMA_WAIT_MINUTES: Limits(0, 1440, "minutes", whole=True),
    Env.API_MAX_STALENESS: Limits(0, 168, "hours"),
    Env.API_ON_DEMAND_HOURS: Limits(0, 24, "hours", whole=True),
    Env.API_MAX_COMPUTATIONS: Limits(1, 32, "runs at once", whole=True),
    Env.API_MAX_RUNS_PER_MINUTE: Limits(1, 60, "runs", whole=True),
    Env.API_FAILURE_BACKOFF_SECONDS: Limits(0, 86400, "seconds"),
    Env.API_WAIT_SECONDS: Limits(0, 300, "seconds"),
    Env.API_RUN_TIMEOUT_SECONDS: Limits(1, 3600, "seconds"),
}


def number(variable: Env, default: float) -> float:
    """The variable's value in effect, within its `LIMITS`; `default` when unset."""
    raw = variable.get()
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan  # refused below, as nan is
    return within(variable, value, raw)


def whole_number(variable: Env, default: int) -> int:
    """The variable's whole-number value in effect, within its `LIMITS`; `default` when unset."""
    raw = variable.get()
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{variable} must be {LIMITS[variable]}, not {raw!r}") from None
    return within(variable, value, raw)


def within(variable: Env, value: N, raw: str | None = None) -> N:
    """`value` when it lies within the variable's `LIMITS` (nan never does); the message quotes `raw` when given."""
    limits = LIMITS[variable]
    if not limits.low <= value <= limits.high:
        raise SettingsError(f"{variable} must be {limits}, not {value if raw is None else repr(raw)}")
    return value


def data_dir() -> str:
    """The root of local state in effect."""
    return Env.DATA_DIR.get() or DATA_DIR


def partitions_start() -> str:
    """The first hourly partition in effect (``%Y-%m-%d-%H:%M``, KST), checked."""
    start = Env.PARTITIONS_START.get() or PARTITIONS_START
    try:
        datetime.strptime(start, KEY_FORMAT)
    except ValueError:
        raise SettingsError(
            f"{Env.PARTITIONS_START} must be a KST hour such as {PARTITIONS_START}, not {start!r}"
        ) from None
    return start


def ingest_minute() -> int:
    """The hourly schedule's minute in effect (0 to 59), checked."""
    return whole_number(Env.INGEST_MINUTE, INGEST_MINUTE)


def dagster_home(data_dir: str) -> str:
    """The embedded Dagster instance's folder, for readers that start runs without DAGSTER_HOME (the read API)."""
    return str((Path(data_dir) / "dagster").resolve())


def artifacts_uri(data_dir: str) -> str:
    """The embedded MLflow store's artifact folder, as a file URI."""
    return (Path(data_dir) / "mlartifacts").resolve().as_uri()


def parse_database_url(raw: str, variable: Env) -> sa.URL:
    """`raw`, the value of `variable`, as a SQLAlchemy URL; refused when a password in it was not percent-encoded.

    No message quotes the URL or a part of it: an unencoded ``@``, ``:`` or ``/`` moves part of the password into
    the host, port or database, which a message of ours or of the driver would show.
    """
    usage = (
        "must be a URL such as mysql+pymysql://user:password@host:3306/database, with any @ : / ? # % in the "
        "password percent-encoded (@ as %40, : as %3A, / as %2F); its value is not shown: it may hold a password"
    )
    if raw.count("@") > 1:
        raise SettingsError(f"{variable} holds more than one @; it {usage}")
    try:
        url = sa.make_url(raw)
    except (sa.exc.ArgumentError, ValueError):  # unparseable, or a port that is no number (a piece of password?)
        raise SettingsError(f"{variable} {usage}") from None
    if "@" in raw and url.username is None:  # the @ is not the user part's end: a / or ? came before it
        raise SettingsError(f"{variable} {usage}")
    return url


def database_url(data_dir: str) -> str:
    """The embedded predictions database: a SQLite file in `data_dir`."""
    return _sqlite(data_dir, "weather.db")


def tracking_uri(data_dir: str) -> str:
    """The embedded MLflow tracking and registry store: a SQLite file in `data_dir`."""
    return _sqlite(data_dir, "mlflow.db")


def lake_root(data_dir: str) -> str:
    """The embedded lake: a folder in `data_dir`."""
    return str(Path(data_dir) / "lake")


def _sqlite(data_dir: str, name: str) -> str:
    return f"sqlite:///{(Path(data_dir) / name).resolve()}"
