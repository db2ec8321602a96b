"""Shared fixtures: real parts only (a moto S3 server over HTTP, temporary lakes, ephemeral Dagster instances)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import boto3
import dagster as dg
import pytest
import requests
import sqlalchemy as sa
from moto.server import ThreadedMotoServer

from weather_assets.defs import QUIETED
from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.partitions import range_tags
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.defs.resources.predictions_db import ComfortDatabase, tables_resources
from weather_assets.domain.hours import partition_key
from weather_assets_tests.kma_hub import hub  # noqa: F401 - the API Hub stand-in, for every test module
from weather_assets_tests.scratch import scratch_database

REPO = Path(__file__).resolve().parents[1]
STATIONS = "100,101,102,104,105,108,112,119,129,133"
# Root on the test server; each test gets a database of its own. CI sets WEATHER_REQUIRE_MYSQL=1.
MYSQL_SERVER = os.getenv("WEATHER_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The code location's silenced warnings, silenced in every test too (pytest resets the filters per test)."""
    for item in items:
        for message, category in QUIETED:
            item.add_marker(pytest.mark.filterwarnings(f"ignore:{message}:{category.__module__}.{category.__name__}"))


def dagster_materialize(env: dict[str, str], *selection_and_partitions: str) -> subprocess.CompletedProcess[str]:
    """`dagster asset materialize -m weather_assets.definitions ...` in a fresh process, as an operator types it."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "asset", "materialize", "-m", "weather_assets.definitions", *selection_and_partitions]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def missing_tool(reason: str) -> None:
    """A test needs a tool this machine lacks: skip with the reason, except in CI (CI=true), which installs it."""
    if os.getenv("CI"):
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(
    command: list[str], env: dict[str, str], health_url: str, log: Path, cwd: Path | None = None, timeout: float = 180
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, started in its own session and waited for until `health_url` answers; stopped at exit."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                assert process.poll() is None, f"{command[0]} exited: {log.read_text()[-3000:]}"
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(health_url, timeout=2).ok:
                        break
                time.sleep(1)
            else:
                pytest.fail(f"{command[0]} did not answer at {health_url} within {timeout:.0f} s")
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode: a real HTTP endpoint on loopback, as MinIO or AWS would be."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the moto server, with boto3 pointed at it through AWS_ENDPOINT_URL_S3."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"lake-{request.node.name.lower().replace('_', '-')[:40]}-{free_port()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket


def ingest(
    resources: dict[str, object],
    first: datetime,
    last: datetime | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize both ingest assets for one hour, or for first..last as one single-run backfill."""
    return dg.materialize(
        [kma_observations, weather_features],
        resources=resources,
        partition_key=None if last is not None else partition_key(first),
        tags=range_tags(first, last) if last is not None else None,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def prepare(
    data_dir: Path,
    first: datetime,
    last: datetime,
    predicted: list[datetime],
    db_url: str | None = None,
    stations: str = "108,112",
) -> None:
    """Ingested hours and a champion (as after the main command), and some hours already predicted."""
    lake, registry = Lake(data_dir=str(data_dir)), ModelRegistry(data_dir=str(data_dir))
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(
        [kma_observations, weather_features],
        resources={"kma": OfflineKMAClient(stations=stations), "lake": lake},
        tags=range_tags(first, last),
        instance=instance,
    ).success
    assert dg.materialize(
        [comfort_model], resources={"lake": lake, "mlflow": MLflowTracking(registry=registry)}, instance=instance
    ).success
    resources = {
        "lake": lake,
        "model_registry": registry,
        **tables_resources(ComfortDatabase(data_dir=str(data_dir), url=db_url)),
    }
    for hour in predicted:
        assert dg.materialize(
            [weather_predictions], resources=resources, partition_key=partition_key(hour), instance=instance
        ).success


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """Whether each asset check of a run passed, by check name."""
    return {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="session")
def mysql_server() -> sa.URL:
    """The MySQL or MariaDB test server; skips without one, fails instead when WEATHER_REQUIRE_MYSQL=1."""
    url = sa.make_url(MYSQL_SERVER)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as error:
        reason = (
            f"no MySQL/MariaDB server answers at {url.host}:{url.port or 3306} ({error.orig}); start one or set "
            "WEATHER_TEST_MYSQL_URL"
        )
        if os.getenv("WEATHER_REQUIRE_MYSQL") == "1":
            pytest.fail(f"{reason}. WEATHER_REQUIRE_MYSQL=1 makes MySQL-backed tests mandatory.")
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def mysql_database(mysql_server: sa.URL) -> Iterator[str]:
    """A fresh database on the test server for one test."""
    with scratch_database(mysql_server) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same behaviour test on both backends: an SQLite file, and a database on the MySQL test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'weather.db'}"
    return request.getfixturevalue("mysql_database")
