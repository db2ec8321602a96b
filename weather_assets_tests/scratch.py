"""Scratch parts shared by the tests and the benchmarks: a database of their own, an environment without settings."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

# The platform's variables (weather_assets.environment.Env) and MLflow's and Dagster's own.
SETTING_PREFIXES = ("WEATHER_", "KMA_", "MLFLOW_", "DAGSTER_")


@contextlib.contextmanager
def scratch_database(server: sa.URL | str, prefix: str = "weather_test") -> Iterator[str]:
    """The URL of a new, empty database on the MySQL or MariaDB server of `server`, dropped afterwards."""
    server = sa.make_url(server)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


def unconfigured_environment() -> dict[str, str]:
    """This process's environment without any setting, for a child process that must start on embedded defaults."""
    return {name: value for name, value in os.environ.items() if not name.startswith(SETTING_PREFIXES)}
