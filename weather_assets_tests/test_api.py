"""The read API as a real client sees it: uvicorn on loopback, cache-first over the predictions table.

Every test against the served API runs twice: on embedded defaults (SQLite, lock files) and on the MariaDB
test server (asyncmy reads, MySQL named locks across the two worker processes).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import requests
import sqlalchemy as sa
from fastapi.testclient import TestClient

from weather_assets.api import Settings, create_app, current_hour
from weather_assets.partitions import partition_key
from weather_assets.predictions_table import TABLE, predictions_table
from weather_assets_tests.conftest import free_port, prepare, scratch_database, serving

STATIONS = "108,112"


@dataclass
class Served:
    url: str
    db_url: str
    dagster_home: Path

    def api_runs(self) -> int:
        """Dagster runs the API started (it tags them)."""
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            return len(instance.get_run_records(dg.RunsFilter(tags={"weather/served_by": "api"})))

    def rows(self, hour: datetime) -> int:
        table = predictions_table(TABLE)
        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as connection:
                query = sa.select(sa.func.count()).where(table.c.prediction_datetime == hour)
                return connection.execute(query).scalar_one()
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """uvicorn with two worker processes; the current hour and the one before are cold."""
    root = tmp_path_factory.mktemp("api")
    data_dir, home = root / "weather", root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with contextlib.ExitStack() as stack:
        db_url = None
        if request.param == "mysql":  # the platform writes and the API reads the same MariaDB database
            db_url = stack.enter_context(scratch_database(request.getfixturevalue("mysql_server")))
        now = current_hour()
        prepare(
            data_dir,
            now - timedelta(days=4),
            now - timedelta(hours=2),
            predicted=[now - timedelta(hours=h) for h in (2, 3, 4)],
            db_url=db_url,
        )
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WEATHER_", "KMA_", "MLFLOW_", "DAGSTER_"))}
        env |= {
            "WEATHER_DATA_DIR": str(data_dir),
            "DAGSTER_HOME": str(home),
            "WEATHER_STATIONS": STATIONS,
            "WEATHER_API_WAIT_SECONDS": "120",
            **({"WEATHER_DB_URL": db_url} if db_url else {}),
        }
        command = [sys.executable, "-m", "uvicorn", "weather_assets.api:app", "--port", str(port), "--workers", "2"]
        stack.enter_context(serving(command, env, f"http://127.0.0.1:{port}/health", root / "uvicorn.log"))
        yield Served(f"http://127.0.0.1:{port}", db_url or f"sqlite:///{data_dir / 'weather.db'}", home)


def test_hit_is_a_read_miss_is_computed_once_then_hit(served: Served) -> None:
    stored = current_hour() - timedelta(hours=3)
    hit = requests.get(f"{served.url}/comfort", params={"at": stored.isoformat()}, timeout=60)
    assert hit.status_code == 200
    assert hit.json()["prediction_datetime"] == stored.isoformat()
    assert served.api_runs() == 0

    miss = requests.get(f"{served.url}/comfort", timeout=300)  # the current hour, at station 108
    assert miss.status_code == 200, miss.text
    body = miss.json()
    assert (body["station_id"], body["station_name"], body["model_name"], body["model_version"]) == (
        108,
        "Seoul",
        "comfort-model",
        "1",
    )
    assert body["prediction_datetime"] == current_hour().isoformat()
    assert 0 <= body["score"] <= 100 and body["label"] in ("excellent", "good", "fair", "poor")
    assert body["age_seconds"] >= 0
    assert served.api_runs() == 1

    again = requests.get(f"{served.url}/comfort", timeout=60)
    assert again.json()["score"] == body["score"]
    assert served.api_runs() == 1


def test_history_is_oldest_first(served: Served) -> None:
    items = requests.get(f"{served.url}/comfort/history", params={"hours": 6}, timeout=60).json()["items"]
    hours = [item["prediction_datetime"] for item in items]
    assert hours == sorted(hours) and len(hours) >= 3


def test_hundred_concurrent_requests_for_a_cold_hour_start_one_materialization(served: Served) -> None:
    cold = current_hour() - timedelta(hours=1)
    before = served.api_runs()
    assert served.rows(cold) == 0

    def ask(_: int) -> requests.Response:
        return requests.get(f"{served.url}/comfort", params={"at": cold.isoformat(), "station_id": 112}, timeout=300)

    with ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(ask, range(100)))

    assert [answer.status_code for answer in answers] == [200] * 100
    assert len({answer.json()["score"] for answer in answers}) == 1
    assert served.api_runs() == before + 1
    assert served.rows(cold) == 2  # one row per served station


@pytest.mark.parametrize(
    ("kind", "title"),
    [("now", "Comfort now"), ("morning", "Morning commute (6-9)"), ("evening", "Evening commute (18-21)")],
)
def test_every_prediction_type_answers_in_the_frontends_shape(served: Served, kind: str, title: str) -> None:
    body = requests.get(f"{served.url}/predict/{kind}", timeout=300).json()

    assert set(body) == {
        "title",
        "score",
        "label",
        "evaluation",
        "prediction_time",
        "weather_data",
        "prediction_type",
        "status",
    }
    assert (body["title"], body["prediction_type"], body["status"]) == (title, kind, "success")
    assert body["score"] == round(body["score"], 1) and body["label"] in ("excellent", "good", "fair", "poor")
    assert body["evaluation"]
    assert body["prediction_time"] == current_hour().strftime("%Y-%m-%d %H:%M")
    assert set(body["weather_data"]) == {
        "temperature",
        "humidity",
        "rainfall",
        "pm10",
        "wind_speed",
        "pressure",
        "region",
        "station_id",
    }
    assert body["weather_data"]["station_id"] == 108 and body["weather_data"]["rainfall"] is not None


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/predict/lunch", {}, 400),
        ("/comfort", {"station_id": "abc"}, 422),
        ("/comfort", {"at": "yesterday"}, 422),
        ("/comfort", {"station_id": 0}, 422),
        ("/comfort/history", {"hours": 0}, 422),
        ("/comfort/history", {"hours": 10_000}, 422),
        ("/comfort", {"station_id": 999}, 404),  # not a served station
        ("/comfort", {"at": "2099-01-01T00:00"}, 404),  # the future
        ("/comfort", {"at": "2020-01-01T00:00"}, 404),  # before the first partition
    ],
)
def test_bad_parameters_get_clear_client_errors(served: Served, path: str, params: dict, status: int) -> None:
    answer = requests.get(f"{served.url}{path}", params=params, timeout=60)
    assert answer.status_code == status
    assert answer.json()["detail"]


def test_cors_allows_the_configured_origins_only() -> None:
    settings = Settings(
        db_url=f"mysql+pymysql://weather_reader:pw@127.0.0.1:{free_port()}/weather_mlops",
        cors_origins=("https://app.example",),
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        allowed = client.get("/health", headers={"Origin": "https://app.example"})
        other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers


def test_database_down_gives_503_without_a_stack_trace() -> None:
    settings = Settings(db_url=f"mysql+pymysql://weather_reader:pw@127.0.0.1:{free_port()}/weather_mlops")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for path in ("/comfort", "/health", "/predict/now"):
            answer = client.get(path)
            assert answer.status_code == 503, path
            assert "Traceback" not in answer.text and "pw" not in answer.text
        assert client.get("/comfort").headers["Retry-After"]


def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    """schemathesis explores the served OpenAPI schema; every servable hour is stored, so nothing is computed."""
    data_dir = tmp_path / "weather"
    now = current_hour()
    prepare(data_dir, now - timedelta(days=4), now, predicted=[now - timedelta(hours=h) for h in range(3)])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEATHER_", "KMA_", "MLFLOW_", "DAGSTER_"))}
    env |= {
        "WEATHER_DATA_DIR": str(data_dir),
        "WEATHER_STATIONS": STATIONS,
        "WEATHER_PARTITIONS_START": partition_key(now - timedelta(hours=2)),
        "DAGSTER_GRAPHQL_URL": f"http://127.0.0.1:{free_port()}",  # never reached: nothing is missing
    }
    command = [sys.executable, "-m", "uvicorn", "weather_assets.api:app", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with serving(command, env, f"{url}/health", tmp_path / "uvicorn.log"):
        schemathesis_cli = Path(sys.executable).with_name("schemathesis")
        done = subprocess.run(
            [str(schemathesis_cli), "run", f"{url}/openapi.json", "--checks", "not_a_server_error", "-n", "40"],
            capture_output=True,
            text=True,
            timeout=600,
            env={**env, "SCHEMATHESIS_TELEMETRY": "false"},
        )
    assert done.returncode == 0, done.stdout[-4000:]
