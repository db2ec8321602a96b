"""The fixtures every test module may ask for, registered by the root conftest.py (`pytest_plugins`): real parts
only (a moto S3 server over HTTP, the MariaDB test server, the API Hub stand-in, a trained champion)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from filelock import FileLock
from moto.server import ThreadedMotoServer

from weather_assets.domain.hours import current_hour
from weather_assets_tests.helpers import TRAINED_STATIONS, copy_data_dir, free_port, train
from weather_assets_tests.kma_hub import FakeHub, running
from weather_assets_tests.scratch import scratch_database

# Root on the test server; each test gets a database of its own. CI sets WEATHER_REQUIRE_MYSQL=1.
MYSQL_SERVER = os.getenv("WEATHER_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder (WEATHER_DATA_DIR) with TRAINED_STATIONS' 96 hours before this session's hour ingested and a
    champion trained on them: the one training of a session that tests do not train for their own sake.

    Once per session, however many xdist workers share it (pytest-xdist's recipe for a session fixture made once):
    the first worker to ask trains it, under a lock, and marks it done; the others wait for the lock and take it.
    Never written to: a test takes a copy (`trained_dir`, or `helpers.copy_data_dir` in a wider-scoped fixture).
    A test using it is slow (conftest.py marks it).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.getenv("PYTEST_XDIST_WORKER") else base  # with xdist: the session's, not a worker's
    data_dir, done = shared / "trained" / "weather", shared / "trained" / "done"
    with FileLock(shared / "trained.lock"):
        if not done.exists():  # a worker whose training failed leaves no mark: the next one trains afresh
            shutil.rmtree(data_dir, ignore_errors=True)
            last = current_hour() - timedelta(hours=1)
            train(data_dir, last - timedelta(hours=95), last, TRAINED_STATIONS)
            done.touch()
    return data_dir


@pytest.fixture
def trained_dir(trained_template: Path, tmp_path: Path) -> Path:
    """This test's own copy of the trained template: ingested hours and a champion, as after the main command."""
    return copy_data_dir(trained_template, tmp_path / "weather")


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """The API Hub stand-in, a fresh server per test, so scripts and request logs never leak between tests."""
    with running(FakeHub()) as server:
        yield server


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode: a real HTTP endpoint on loopback, as MinIO or AWS would be."""
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the server's log of every request, off
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
