"""The read API as a real client sees it: uvicorn on loopback, serving what the pipeline made.

Every test against the served API runs twice: on embedded defaults (SQLite, lock files) and on the MariaDB
test server (asyncmy reads, MySQL named locks across the two worker processes). The API Hub stand-in has not
published the current hour yet, as at minute 5 of every hour.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
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

from weather_assets.api import Settings, create_app
from weather_assets.api.dagster_runs import SERVED_BY, TERMINAL, ChildProcessRuns
from weather_assets.api.locks import Locks
from weather_assets.api.on_demand import OnDemand, Unavailable
from weather_assets.domain.hours import current_hour, kst_now, partition_key
from weather_assets.domain.tables import PREDICTIONS
from weather_assets_tests.helpers import (
    REPO,
    copy_data_dir,
    dagster_home,
    eventually,
    free_port,
    predict,
    prediction_rows,
    seed_forecasts,
    serving,
)
from weather_assets_tests.kma_hub import FakeHub, HubHandler, answer, running, slow, status
from weather_assets_tests.scratch import SETTING_PREFIXES, scratch_database, unconfigured_environment

STATIONS = "108,112"
EMPTY = b"#START7777\n# YYMMDDHHMI STN  WD   WS\n#7777END\n"


@dataclass
class Served:
    url: str
    db_url: str
    dagster_home: Path

    def api_runs(self, hour: datetime | None = None) -> int:
        """Dagster runs the API started (it tags them), for one hour or all."""
        tags = {"weather/served_by": "api", **({"dagster/partition": partition_key(hour)} if hour else {})}
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            return len(instance.get_run_records(dg.RunsFilter(tags=tags)))

    def all_runs(self) -> int:
        """Every run in the API's Dagster instance, whoever started it."""
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            return instance.get_runs_count()

    def rows(self, hour: datetime) -> int:
        table = PREDICTIONS.table()
        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as connection:
                query = sa.select(sa.func.count()).where(table.c.prediction_datetime == hour)
                return connection.execute(query).scalar_one()
        finally:
            engine.dispose()

    def newest(self, station_id: int) -> datetime:
        table = PREDICTIONS.table()
        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as connection:
                query = sa.select(sa.func.max(table.c.prediction_datetime)).where(table.c.station_id == station_id)
                return connection.execute(query).scalar_one()
        finally:
            engine.dispose()


def not_yet_published(handler: HubHandler, endpoint: str, params: dict[str, str]) -> None:
    """The API Hub at minute 5: every hour but the current one (a valid block without data lines for it)."""
    if endpoint == "kma_sfctm2.php" and params["tm"] >= current_hour().strftime("%Y%m%d%H%M"):
        handler.send(200, EMPTY)
        return
    answer(handler, endpoint, params)


@pytest.fixture(scope="module")
def late_hub() -> Iterator[FakeHub]:
    server = FakeHub()
    server.default = not_yet_published
    with running(server):
        yield server


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    late_hub: FakeHub,
    trained_template: Path,
) -> Iterator[Served]:
    """uvicorn with two worker processes; hours -4 to -2 are stored and stale (bound: 1 hour), -1 and 0 cold."""
    root = tmp_path_factory.mktemp("api")
    data_dir, home = copy_data_dir(trained_template, root / "weather"), dagster_home(root / "dagster_home")
    with contextlib.ExitStack() as stack:
        db_url = None
        if request.param == "mysql":  # the platform writes and the API reads the same MariaDB database
            db_url = stack.enter_context(scratch_database(request.getfixturevalue("mysql_server")))
        now = current_hour()
        predict(data_dir, now - timedelta(hours=4), now - timedelta(hours=2), db_url)
        port = free_port()
        env = unconfigured_environment()
        env |= {
            "WEATHER_DATA_DIR": str(data_dir),
            "DAGSTER_HOME": str(home),
            "WEATHER_STATIONS": STATIONS,
            "KMA_AUTH_KEY": "test-key",
            "KMA_API_URL": late_hub.base_url,
            "WEATHER_API_MAX_STALENESS": "1",
            "WEATHER_API_WAIT_SECONDS": "120",
            **({"WEATHER_DB_URL": db_url} if db_url else {}),
        }
        command = [sys.executable, "-m", "uvicorn", "weather_assets.api:app", "--port", str(port), "--workers", "2"]
        stack.enter_context(serving(command, env, f"http://127.0.0.1:{port}/health", root / "uvicorn.log"))
        yield Served(f"http://127.0.0.1:{port}", db_url or f"sqlite:///{data_dir / 'weather.db'}", home)


def test_a_stored_hour_is_a_read_that_starts_nothing(served: Served) -> None:
    stored = current_hour() - timedelta(hours=3)
    before = served.api_runs()

    hit = requests.get(f"{served.url}/comfort", params={"at": stored.isoformat()}, timeout=60)

    assert hit.status_code == 200
    body = hit.json()
    assert body["prediction_datetime"] == stored.isoformat()
    assert (body["station_id"], body["station_name"], body["model_name"], body["model_version"]) == (
        108,
        "Seoul",
        "comfort-model",
        "1",
    )
    assert 3 * 3600 <= body["age_seconds"] < 4 * 3600  # measured from the hour
    assert served.api_runs() == before


def test_at_minute_5_predict_now_answers_the_previous_hour_and_the_unpublished_hour_runs_once(
    served: Served,
) -> None:
    """Nothing fresh is stored and KMA has not published the current hour: 100 concurrent requests get the
    previous hour, computed once; the current hour is tried once, and its failure is remembered."""
    now = current_hour()
    previous = now - timedelta(hours=1)

    def ask(n: int) -> requests.Response:
        path = "/predict/now" if n % 2 else "/comfort"
        return requests.get(f"{served.url}{path}", params={} if n % 2 else {"station_id": 112}, timeout=300)

    with ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(ask, range(100)))

    assert [answer.status_code for answer in answers] == [200] * 100, answers[0].text
    assert {answer.json()["prediction_time"] for answer in answers[1::2]} == {previous.strftime("%Y-%m-%d %H:%M")}
    assert {answer.json()["prediction_datetime"] for answer in answers[::2]} == {previous.isoformat()}
    assert len({answer.json()["score"] for answer in answers[1::2]}) == 1
    assert served.rows(previous) == 2  # one row per served station
    assert served.api_runs(now) == 1 and served.api_runs(previous) == 1

    # within the back-off window, the unpublished hour starts nothing, however often it is asked for
    again = [requests.get(f"{served.url}/comfort", params={"at": now.isoformat()}, timeout=60) for _ in range(10)]
    assert {answer.status_code for answer in again} == {503}
    assert all(0 < int(answer.headers["Retry-After"]) <= 300 for answer in again)
    assert "run" not in again[0].json()["detail"].lower() and "Traceback" not in again[0].text
    assert served.api_runs(now) == 1
    assert requests.get(f"{served.url}/predict/now", timeout=60).json()["prediction_time"] == (
        previous.strftime("%Y-%m-%d %H:%M")
    )
    assert served.api_runs() == 2


def test_two_hundred_requests_for_older_missing_hours_start_no_run(served: Served) -> None:
    now = current_hour()
    cold = [now - timedelta(hours=5 + n) for n in range(200)]  # before the stored hours: never predicted
    before = served.all_runs()

    def ask(hour: datetime) -> requests.Response:
        return requests.get(f"{served.url}/comfort", params={"at": hour.isoformat()}, timeout=60)

    with ThreadPoolExecutor(len(cold)) as pool:  # all 200 at once
        answers = list(pool.map(ask, cold))

    assert {answer.status_code for answer in answers} == {404}
    detail = answers[0].json()["detail"]
    assert "has not been computed" in detail and "weather_predictions" in detail and partition_key(cold[0]) in detail
    assert served.all_runs() == before


def test_health_names_the_newest_hour_and_its_age_from_that_hour(served: Served) -> None:
    before = kst_now()
    body = requests.get(f"{served.url}/health", timeout=60).json()
    after = kst_now()

    newest = max(served.newest(108), served.newest(112))
    assert body["newest_prediction"] == newest.isoformat()
    age = body["newest_prediction_age_seconds"]
    assert (before - newest).total_seconds() - 0.1 <= age <= (after - newest).total_seconds() + 0.1  # rounded
    assert body["max_staleness_seconds"] == 3600
    assert body["fresh"] == (age <= 3600)
    assert body["status"] == ("ok" if body["fresh"] else "stale")


def store_hours(db_url: str, station_id: int, hours: list[datetime]) -> None:
    """Prediction rows for the station's hours, as the pipeline writes them, written now."""
    table = PREDICTIONS.table()
    engine = sa.create_engine(db_url)
    written = kst_now()
    rows = prediction_rows(hours, station_id, temperature=20.0, pm10=30.0)
    rows = rows.assign(created_at=written, updated_at=written)
    try:
        with engine.begin() as connection:
            table.create(connection, checkfirst=True)
            connection.execute(table.insert(), rows.to_dict("records"))
    finally:
        engine.dispose()


def test_health_of_a_table_whose_one_hour_is_old_but_just_written_is_stale(db_url: str, tmp_path: Path) -> None:
    """The age is the hour's, not the write's: an hour 10 hours old written a moment ago is not fresh."""
    old = current_hour() - timedelta(hours=10)
    store_hours(db_url, 108, [old])

    with TestClient(create_app(Settings(db_url=db_url, data_dir=str(tmp_path)))) as client:
        before = kst_now()
        body = client.get("/health").json()
        after = kst_now()

    assert body["newest_prediction"] == old.isoformat()
    age = body["newest_prediction_age_seconds"]
    assert (before - old).total_seconds() - 0.1 <= age <= (after - old).total_seconds() + 0.1
    assert (body["fresh"], body["status"]) == (False, "stale")


def embedded(tmp_path: Path) -> Settings:
    """The API on the embedded SQLite file `tmp_path/weather.db`; a missing hour's run would go to a webserver
    that does not answer (none is wanted here)."""
    return Settings(db_url=f"sqlite:///{tmp_path / 'weather.db'}", data_dir=str(tmp_path / "api"),
                    graphql_url=f"http://127.0.0.1:{free_port()}")  # fmt: skip


def test_a_replaced_sqlite_file_is_read_without_a_restart(tmp_path: Path) -> None:
    """The embedded file replaced while the API runs (a backup restored, the platform reset): reads, /health and
    the on-demand check all read the new file, so an hour written there is served, not a 503."""
    settings = embedded(tmp_path)
    old, new = current_hour() - timedelta(hours=5), current_hour() - timedelta(hours=1)
    store_hours(settings.db_url, 108, [old])
    store_hours(f"sqlite:///{tmp_path / 'replacement.db'}", 108, [new])

    with TestClient(create_app(settings)) as client:
        before = client.get("/comfort", params={"at": old.isoformat()})
        os.replace(tmp_path / "replacement.db", tmp_path / "weather.db")
        served = eventually(lambda: client.get("/comfort", params={"at": new.isoformat()}), lambda a: a.is_success)
        health = client.get("/health")
        gone = client.get("/comfort", params={"at": old.isoformat()})

    assert before.status_code == 200
    assert served.status_code == 200, served.text
    assert served.json()["prediction_datetime"] == new.isoformat()
    assert (health.status_code, health.json()["newest_prediction"]) == (200, new.isoformat())
    assert health.json()["database_reopened_at"]  # says the file was replaced
    assert gone.status_code == 404  # only in the file that was replaced


def test_a_deleted_sqlite_file_is_reported_not_served_and_not_recreated(tmp_path: Path) -> None:
    """The embedded file deleted while the API runs: /health says the database is missing (503) and the deleted
    rows are not served; the API creates no empty file; the file the pipeline writes next is read again."""
    settings = embedded(tmp_path)
    hour = current_hour() - timedelta(hours=5)
    store_hours(settings.db_url, 108, [hour, current_hour() - timedelta(hours=1)])

    with TestClient(create_app(settings)) as client:
        before = client.get("/health")
        (tmp_path / "weather.db").unlink()
        missing = eventually(lambda: client.get("/health"), lambda answer: answer.status_code == 503)
        deleted = client.get("/comfort", params={"at": hour.isoformat()})
        recreated = (tmp_path / "weather.db").exists()
        store_hours(settings.db_url, 108, [hour])  # the pipeline's next write
        back = eventually(lambda: client.get("/comfort", params={"at": hour.isoformat()}), lambda a: a.is_success)

    assert (before.status_code, before.json()["status"]) == (200, "ok")
    assert (missing.status_code, missing.json()) == (503, {"status": "unavailable", "database": "missing"})
    assert deleted.status_code == 404 and not recreated
    assert back.status_code == 200


def test_history_is_oldest_first(served: Served) -> None:
    items = requests.get(f"{served.url}/comfort/history", params={"hours": 6}, timeout=60).json()["items"]
    hours = [item["prediction_datetime"] for item in items]
    assert hours == sorted(hours) and len(hours) >= 3


def test_predict_now_answers_in_the_frontends_shape(served: Served) -> None:
    """`/predict/now` is the latest hour; morning and evening are forecasts (test_api_forecast.py)."""
    body = requests.get(f"{served.url}/predict/now", timeout=300).json()

    assert set(body) == {
        "title",
        "score",
        "label",
        "evaluation",
        "prediction_time",
        "weather_data",
        "prediction_type",
        "status",
        "age_seconds",
        "lineage",  # ignored by the frontend; test_lineage.py checks it
    }
    assert (body["title"], body["prediction_type"], body["status"]) == ("Comfort now", "now", "success")
    assert body["score"] == round(body["score"], 1) and body["label"] in ("excellent", "good", "fair", "poor")
    assert body["evaluation"]
    newest = served.newest(108)
    assert body["prediction_time"] == newest.strftime("%Y-%m-%d %H:%M")
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
    rainfall = body["weather_data"]["rainfall"]
    assert body["weather_data"]["station_id"] == 108 and (rainfall is None or rainfall >= 0)  # None: no usable figure


def test_the_frontends_chart_is_the_last_six_stored_hours_oldest_first(db_url: str, tmp_path: Path) -> None:
    newest = current_hour() - timedelta(hours=2)
    store_hours(db_url, 108, [newest - timedelta(hours=h) for h in range(9)])
    store_hours(db_url, 112, [current_hour()])  # another station's newer hour is not on the chart

    with TestClient(create_app(Settings(db_url=db_url, data_dir=str(tmp_path)))) as client:
        answer = client.get("/predict/hourly/now")
        unknown = client.get("/predict/hourly/lunch")

    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "success"
    assert body["count"] == 6
    times = [(newest - timedelta(hours=h)).strftime("%H:00") for h in range(5, -1, -1)]
    assert [point["time"] for point in body["hourly"]] == times
    assert body["hourly"][0] == {"time": times[0], "temperature": 20.0, "pm10": 30.0, "humidity": 50.0, "rainfall": 0.0}
    assert unknown.status_code == 400 and "lunch" in unknown.json()["detail"]


def test_the_frontends_welcome_greets_by_the_kst_time_of_day(served: Served) -> None:
    body = requests.get(f"{served.url}/api/welcome", timeout=60).json()

    assert set(body) == {"message", "current_time", "hour"}
    now = datetime.strptime(body["current_time"], "%Y-%m-%d %H:%M")
    assert body["hour"] == now.hour and abs(now - current_hour()) <= timedelta(hours=1)
    expected = (
        "morning" if 5 <= now.hour < 12 else "afternoon" if now.hour < 18 and now.hour >= 12 else
        "evening" if 18 <= now.hour < 22 else "night"
    )  # fmt: skip
    assert expected in body["message"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/predict/lunch", {}, 400),
        ("/comfort", {"station_id": "abc"}, 422),
        ("/comfort", {"at": "yesterday"}, 422),
        ("/comfort", {"at": "0001-01-01T00:00:00+14:00"}, 422),  # leaves the calendar in KST
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


GRAPHQL_RUNS = """
query Runs($partition: String!) {
  runsOrError(filter: {tags: [{key: "dagster/partition", value: $partition}]}) { ... on Runs { results { status } } }
}"""


@pytest.fixture
def webserver_without_daemon(tmp_path: Path) -> Iterator[str]:
    """The Dagster webserver alone, with a run queue and no daemon: every run it accepts stays queued."""
    home = dagster_home(
        tmp_path / "dagster_home",
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: QueuedRunCoordinator\n",
    )
    env = unconfigured_environment()
    env |= {"DAGSTER_HOME": str(home), "WEATHER_DATA_DIR": str(tmp_path / "weather")}
    port = free_port()
    command = [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with serving(command, env, f"{url}/server_info", tmp_path / "webserver.log", cwd=REPO):
        yield url


def graphql_runs(url: str, hour: datetime) -> list[str]:
    """The statuses of the runs of one partition, as the webserver reports them."""
    query = {"query": GRAPHQL_RUNS, "variables": {"partition": partition_key(hour)}}
    answer = requests.post(f"{url}/graphql", json=query, timeout=30)
    return [run["status"] for run in answer.json()["data"]["runsOrError"]["results"]]


def graphql_settings(tmp_path: Path, graphql_url: str, **bounds: float) -> Settings:
    """The API on an empty SQLite table, computing through the webserver at `graphql_url`, with these bounds."""
    return Settings(
        db_url=f"sqlite:///{tmp_path / 'weather.db'}", data_dir=str(tmp_path / "api"), graphql_url=graphql_url, **bounds
    )


def timed_get(client: TestClient, hour: datetime) -> tuple[float, object]:
    started = time.monotonic()
    answer = client.get("/comfort", params={"at": hour.isoformat()})
    return time.monotonic() - started, answer


@pytest.mark.slow
def test_runs_that_never_start_end_in_503s_and_release_their_slot(
    webserver_without_daemon: str, tmp_path: Path
) -> None:
    """GraphQL mode, no daemon: requests get a 503 within the wait bound; the queued run is abandoned after the
    run timeout (canceled), its slot and thread are released, and a later request for another hour gets both."""
    now = current_hour()
    previous = now - timedelta(hours=1)
    settings = graphql_settings(tmp_path, webserver_without_daemon, wait_seconds=2, run_timeout_seconds=6,
                                max_computations=1)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        waited, first = timed_get(client, now)
        _, other = timed_get(client, previous)  # the only slot is taken by the queued run of `now`
        deadline = time.monotonic() + 60
        while graphql_runs(webserver_without_daemon, now) != ["CANCELED"] and time.monotonic() < deadline:
            time.sleep(0.5)
        abandoned = graphql_runs(webserver_without_daemon, now)
        _, backed_off = timed_get(client, now)
        _, later = timed_get(client, previous)

    assert first.status_code == 503 and waited < settings.wait_seconds + 5  # bounded, not hanging
    assert first.headers["Retry-After"] and "being computed" in first.json()["detail"]
    assert other.status_code == 503 and "computing other hours" in other.json()["detail"]
    assert abandoned == ["CANCELED"]  # the queued run was terminated at the run timeout
    assert backed_off.status_code == 503 and int(backed_off.headers["Retry-After"]) > 60
    assert graphql_runs(webserver_without_daemon, now) == ["CANCELED"]  # the back-off started nothing
    assert later.status_code == 503 and "being computed" in later.json()["detail"]
    assert graphql_runs(webserver_without_daemon, previous) == ["QUEUED"]  # it got a thread and the slot
    for refused in (first, other, backed_off, later):
        assert not any(word in refused.text for word in ("query", "mutation", "Traceback", "graphql", "127.0.0.1"))


@pytest.mark.slow
def test_runs_started_per_minute_are_capped_for_the_deployment(webserver_without_daemon: str, tmp_path: Path) -> None:
    now = current_hour()
    hours = [now - timedelta(hours=h) for h in range(4)]
    settings = graphql_settings(tmp_path, webserver_without_daemon, wait_seconds=1, on_demand_hours=4,
                                max_computations=4, max_runs_per_minute=2)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        answers = [timed_get(client, hour)[1] for hour in hours]

    assert [answer.status_code for answer in answers] == [503] * 4
    assert ["too many" in answer.json()["detail"] for answer in answers] == [False, False, True, True]
    assert all(0 < int(answer.headers["Retry-After"]) <= 60 for answer in answers[2:])
    assert [len(graphql_runs(webserver_without_daemon, hour)) for hour in hours] == [1, 1, 0, 0]


@pytest.mark.slow
def test_the_apis_run_retries_no_step_so_a_kma_error_ends_it_at_once(hub: FakeHub, tmp_path: Path) -> None:
    """KMA refuses the hour (HTTP 400, which its client does not retry): the job's step retry policy would ask
    again 30, 60 and 120 s later; the API's run asks once and fails, so the request's 503 finds the run ended."""
    hub.default = status(400, b"bad request")
    home = dagster_home(tmp_path / "dagster_home")
    (tmp_path / "weather").mkdir()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'weather' / 'weather.db'}")
    PREDICTIONS.table().create(engine)  # the pipeline's table, without the hour
    engine.dispose()
    env = unconfigured_environment()
    env |= {
        "WEATHER_DATA_DIR": str(tmp_path / "weather"),
        "DAGSTER_HOME": str(home),
        "WEATHER_STATIONS": STATIONS,
        "KMA_AUTH_KEY": "test-key",
        "KMA_API_URL": hub.base_url,
        "WEATHER_API_WAIT_SECONDS": "60",
    }
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "weather_assets.api:app", "--port", str(port)]
    with serving(command, env, f"http://127.0.0.1:{port}/openapi.json", tmp_path / "uvicorn.log"):
        refused = requests.get(
            f"http://127.0.0.1:{port}/comfort", params={"at": current_hour().isoformat()}, timeout=90
        )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records(dg.RunsFilter(tags={"weather/served_by": "api"}))
        run = record.dagster_run
        retried = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY).records

    assert refused.status_code == 503 and "could not be computed" in refused.json()["detail"]
    assert (run.job_name, run.status) == ("ingest_and_predict", dg.DagsterRunStatus.FAILURE)
    assert retried == [] and hub.endpoints().count("kma_sfctm2.php") == 1


def test_a_run_that_succeeded_without_writing_the_hour_backs_off_every_worker(tmp_path: Path) -> None:
    """Another worker's run for the hour succeeded but the hour is not stored: this worker starts nothing."""
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'weather.db'}", data_dir=str(tmp_path / "api"))
    engine = sa.create_engine(settings.db_url)
    runs = ChildProcessRuns(settings)
    hour = current_hour()
    tags = {**SERVED_BY, "dagster/partition": partition_key(hour)}
    status = dg.DagsterRunStatus.SUCCESS
    runs.instance.add_run(
        dg.DagsterRun(job_name="ingest_and_predict", run_id=str(uuid.uuid4()), status=status, tags=tags)
    )
    on_demand = OnDemand(settings, engine, runs)
    try:
        with pytest.raises(Unavailable, match="lately") as refused:
            on_demand.ensure(hour).result()
        started = runs.recent(0)
    finally:
        on_demand.close()
        engine.dispose()
        runs.instance.dispose()

    assert refused.value.retry_after > 60 and len(started) == 1


@pytest.fixture
def run_environment(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The API's settings in embedded mode, and this process's environment as the code location's: a run started
    from here (or a process it starts) ingests from `hub` into `tmp_path`, and has no champion to predict with."""
    for name in os.environ:
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "weather"
    settings = Settings(db_url=f"sqlite:///{data_dir / 'weather.db'}", data_dir=str(data_dir), stations=(108,))
    monkeypatch.setenv("WEATHER_DATA_DIR", settings.data_dir)
    monkeypatch.setenv("WEATHER_STATIONS", "108")
    monkeypatch.setenv("KMA_AUTH_KEY", "test-key")
    monkeypatch.setenv("KMA_API_URL", hub.base_url)
    return settings


def ended(runs: ChildProcessRuns, run_id: str) -> str:
    """The run's status once it has ended (a run lasts what KMA's client allows; see `RUN_CONFIG`)."""
    deadline = time.monotonic() + 300
    while (status := runs.status(run_id)) not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.2)
    return status


def step_pids(runs: ChildProcessRuns, run_id: str) -> set[int]:
    """The processes that executed the run's steps, as Dagster's engine events name them."""
    events = runs.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    return {
        int(data.metadata["pid"].value)
        for record in events
        if (data := record.event_log_entry.dagster_event.engine_event_data) and "pid" in data.metadata
    }


@pytest.mark.slow
def test_an_embedded_run_executes_in_a_process_of_its_own(run_environment: Settings) -> None:
    """Without a webserver, the API's run executes in a child process: its import of the code location and its
    steps never hold the serving process's GIL, so they cannot stall that worker's cache hits."""
    runs = ChildProcessRuns(run_environment)
    run_id = runs.start(partition_key(current_hour() - timedelta(hours=1)))
    status = ended(runs, run_id)
    pids = step_pids(runs, run_id)

    assert status in TERMINAL
    assert pids and os.getpid() not in pids  # the steps ran, elsewhere


@pytest.mark.slow
def test_an_embedded_run_past_its_timeout_is_stopped(run_environment: Settings, hub: FakeHub) -> None:
    """A run that outlives the timeout (KMA answering slowly) is stopped when abandoned: its process ends and
    Dagster records it as ended, so neither a slot nor a process is held for another timeout."""
    hub.default = slow(600)
    runs = ChildProcessRuns(run_environment)
    run_id = runs.start(partition_key(current_hour() - timedelta(hours=1)))
    deadline = time.monotonic() + 120
    while (before := runs.status(run_id)) not in {"STARTED", *TERMINAL} and time.monotonic() < deadline:
        time.sleep(0.2)

    runs.abandon(run_id)

    assert before == "STARTED"  # waiting for KMA
    assert runs.status(run_id) in {"FAILURE", "CANCELED"}
    (pid,) = step_pids(runs, run_id)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the run's process is gone (and reaped)


def database_down(tmp_path: Path, cors_origins: tuple[str, ...] = ()) -> Settings:
    """The API on a MySQL server that does not answer; its Dagster instance (opened at startup) in `tmp_path`."""
    url = f"mysql+pymysql://weather_reader:pw@127.0.0.1:{free_port()}/weather_mlops"
    return Settings(db_url=url, data_dir=str(tmp_path), cors_origins=cors_origins)


def test_cors_allows_the_configured_origins_only(tmp_path: Path) -> None:
    settings = database_down(tmp_path, cors_origins=("https://app.example",))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        allowed = client.get("/health", headers={"Origin": "https://app.example"})
        other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers


def test_database_down_gives_503_without_a_stack_trace(tmp_path: Path) -> None:
    settings = database_down(tmp_path)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for path in ("/comfort", "/health", "/predict/now"):
            answer = client.get(path)
            assert answer.status_code == 503, path
            assert "Traceback" not in answer.text and "pw" not in answer.text
        assert client.get("/comfort").headers["Retry-After"]


def test_a_pool_that_has_no_connection_to_give_is_a_503_like_a_database_down(tmp_path: Path) -> None:
    """SQLAlchemy's pool timeout (every connection busy) is not a driver error; it gets the same answer."""
    settings = database_down(tmp_path)
    app = create_app(settings)

    def exhausted() -> None:
        raise sa.exc.TimeoutError("QueuePool limit of size 10 overflow 0 reached, connection timed out")

    app.add_api_route("/exhausted", exhausted)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/exhausted")

    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert answer.json() == {"detail": "the predictions database is unavailable"}


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(trained_dir: Path, tmp_path: Path) -> None:
    """schemathesis explores the served OpenAPI schema; every servable hour is stored, so nothing is computed,
    and a forecast issue covers the next two days, so both commute windows are answered."""
    data_dir = trained_dir
    now = current_hour()
    predict(data_dir, now - timedelta(hours=2), now)
    seed_forecasts(f"sqlite:///{data_dir / 'weather.db'}", now, [now + timedelta(hours=h) for h in range(1, 49)])
    port = free_port()
    env = unconfigured_environment()
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
            cwd=tmp_path,  # schemathesis keeps a cache in its working directory
            env={**env, "SCHEMATHESIS_TELEMETRY": "false"},
        )
    assert done.returncode == 0, done.stdout[-4000:]


def test_locks_hold_one_holder_each_and_slots_bound_the_holders(db_url: str, tmp_path: Path) -> None:
    """Two workers' lock objects (their own connections): an hour lock has one holder, two slots two."""
    engines = [sa.create_engine(db_url), sa.create_engine(db_url)]
    mine, other = (Locks(engine, tmp_path / "locks") for engine in engines)
    slots = ["slot-0", "slot-1"]
    try:
        with mine.hold("hour", 0) as first, other.hold("hour", 0.2) as second:
            assert (first, second) == (True, False)
        with other.hold("hour", 0) as after_release:
            assert after_release
        with mine.any_of(slots) as a, other.any_of(slots) as b, other.any_of(slots) as c:
            assert {a, b} == set(slots) and c is None
        with mine.any_of(slots) as freed:
            assert freed == "slot-0"
    finally:
        for engine in engines:
            engine.dispose()
