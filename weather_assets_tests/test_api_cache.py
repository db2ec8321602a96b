"""The read API's kept answers and HTTP caching (issue 22), through the real app on SQLite and on the MariaDB test
server, the rows written by the platform's own upsert: a new hour is served within the bound
(`cache.FRESH_SECONDS`) and no older one after it; the ETag follows the answer; If-None-Match gets a 304;
Cache-Control lasts until the next hour is expected; errors are never stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from weather_assets.api import Settings, cache, create_app
from weather_assets.api.cache import FRESH_SECONDS
from weather_assets.defs.resources.predictions_db import ComfortDatabase
from weather_assets.domain.hours import current_hour
from weather_assets.domain.tables import PREDICTIONS
from weather_assets_tests.helpers import at, eventually, seed_forecasts, span

HOUR = timedelta(hours=1)
DAY = datetime(2026, 12, 1)
HOT = ("/comfort", "/predict/now", "/predict/hourly/now")


def write(db_url: str, hours: list[datetime], station_id: int = 108, score: float = 61.5) -> None:
    """The station's hours as the pipeline writes them: the platform's upsert, which stamps updated_at."""
    frame = pd.DataFrame(
        {"prediction_datetime": hours, "station_id": station_id, "region": "Seoul", "comfort_score": score,
         "temperature": 12.0, "humidity": 55.0, "precipitation": 0.0, "pm10": 30.0, "wind_speed": 2.0,
         "pressure": 1015.0, "model_name": "comfort-model/1"}
    )[list(PREDICTIONS.columns)]  # fmt: skip
    ComfortDatabase(url=db_url).upsert(PREDICTIONS, frame)


def after_the_bound() -> None:
    """The bound passes after the last write: every answer from now on reflects it."""
    time.sleep(FRESH_SECONDS)


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on `db_url`; hours up to six old are served as the latest (none is computed on request)."""
    settings = Settings(db_url=db_url, data_dir=str(tmp_path / "api"), stations=(108, 112), max_staleness=6 * HOUR)
    with TestClient(create_app(settings)) as served:
        yield served


def named_hours(client: TestClient, station_id: int) -> set[str]:
    """The hour ("HH:00") each hot answer names for the station, each asked twice (the chart only for 108)."""
    named = set()
    for _ in range(2):
        stored = client.get("/comfort", params={"station_id": station_id}).json()["prediction_datetime"]
        named.add(datetime.fromisoformat(stored).strftime("%H:00"))
        if station_id == 108:
            named.add(client.get("/predict/now").json()["prediction_time"][-5:])
            named.add(client.get("/predict/hourly/now").json()["hourly"][-1]["time"])
    return named


def test_a_new_hour_is_served_once_written(db_url: str, client: TestClient) -> None:
    now = current_hour()
    write(db_url, [now - 2 * HOUR])
    before = client.get("/comfort").json()["prediction_datetime"]

    write(db_url, [now - HOUR])
    served = eventually(lambda: client.get("/comfort"), lambda a: a.json()["prediction_datetime"] != before)

    assert before == (now - 2 * HOUR).isoformat()
    assert served.json()["prediction_datetime"] == (now - HOUR).isoformat()


def test_after_the_bound_no_answer_is_older_than_the_stations_newest_hour(db_url: str, client: TestClient) -> None:
    """Each write is followed by the bound, then every hot answer names the station's new hour; 112's hour is written
    after 108's, so only the table's newest write (not its newest hour) says that it changed."""
    now = current_hour()
    write(db_url, [now - 3 * HOUR], 108)
    write(db_url, [now - 3 * HOUR], 112)
    for newest in (now - 2 * HOUR, now - HOUR, now):
        for station_id in (108, 112):
            named_hours(client, station_id)  # the answers kept before the write
            write(db_url, [newest], station_id)
            after_the_bound()
            assert named_hours(client, station_id) == {f"{newest:%H}:00"}, (station_id, newest)


def test_the_etag_follows_the_answer_not_its_age(db_url: str, client: TestClient) -> None:
    hour = current_hour() - 2 * HOUR
    write(db_url, [hour], score=61.5)
    asked = {"at": hour.isoformat()}
    first = client.get("/comfort", params=asked)
    time.sleep(0.2)  # a newer age_seconds
    again = client.get("/comfort", params=asked)

    write(db_url, [hour], score=35.0)  # the hour predicted again
    after_the_bound()
    changed = client.get("/comfort", params=asked)
    old_tag = client.get("/comfort", params=asked, headers={"If-None-Match": first.headers["etag"]})

    assert first.headers["etag"].startswith('W/"') and again.headers["etag"] == first.headers["etag"]
    assert again.json()["age_seconds"] > first.json()["age_seconds"]
    assert changed.json()["score"] == 35.0 and changed.headers["etag"] != first.headers["etag"]
    assert old_tag.status_code == 200 and old_tag.json()["score"] == 35.0


def test_if_none_match_gets_a_304_without_a_body(db_url: str, client: TestClient) -> None:
    now = current_hour()
    write(db_url, [now - HOUR])
    seed_forecasts(db_url, now - 2 * HOUR, span(now, now + 48 * HOUR))
    paths = [*HOT, f"/comfort?at={(now - HOUR).isoformat()}", "/comfort/forecast", "/predict/morning"]
    for path in paths:
        first = client.get(path)
        tag = first.headers["etag"]
        unchanged = client.get(path, headers={"If-None-Match": tag})
        listed = client.get(path, headers={"If-None-Match": f'"other", {tag.removeprefix("W/")}'})
        other = client.get(path, headers={"If-None-Match": '"other"'})

        assert first.status_code == 200, path
        assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", tag), path
        assert unchanged.headers["cache-control"] == first.headers["cache-control"], path
        assert listed.status_code == 304, path
        assert other.status_code == 200 and other.headers["etag"] == tag, path


def cache_control(max_age: int) -> str:
    return f"public, max-age={max_age}, stale-while-revalidate=60"


@pytest.mark.parametrize(
    ("newest", "now", "max_age"),
    [
        (DAY.replace(hour=14), DAY.replace(hour=14, minute=25), 45 * 60),  # until 15:10, the ingest minute
        (DAY.replace(hour=13), DAY.replace(hour=14, minute=5), 5 * 60),  # 14:00 is expected at 14:10
        (DAY.replace(hour=13), DAY.replace(hour=14, minute=20), 30),  # 14:00 is late: caches ask again soon
    ],
)
def test_predictions_are_fresh_for_caches_until_the_next_hour_is_expected(
    db_url: str, client: TestClient, newest: datetime, now: datetime, max_age: int
) -> None:
    write(db_url, [newest - HOUR, newest])
    at(client, now)

    for path in (*HOT, f"/comfort?at={(newest - HOUR).isoformat()}"):
        assert client.get(path).headers["cache-control"] == cache_control(max_age), path


@pytest.mark.parametrize(
    ("now", "max_age"),
    [
        (DAY.replace(hour=10, minute=40), 20 * 60),  # the next hour, 11:00, changes the hours answered
        (DAY.replace(hour=11, minute=5), 10 * 60),  # the 11:00 issue is expected at 11:15
        (DAY.replace(hour=11, minute=20), 30),  # and is late
    ],
)
def test_forecasts_are_fresh_for_caches_until_the_next_hour_or_issue(
    db_url: str, client: TestClient, now: datetime, max_age: int
) -> None:
    seed_forecasts(db_url, DAY.replace(hour=8), span(DAY.replace(hour=9), DAY.replace(day=3, hour=23)))
    at(client, now)

    for path in ("/comfort/forecast", "/predict/morning", "/predict/evening"):
        assert client.get(path).headers["cache-control"] == cache_control(max_age), path


def test_errors_and_refusals_are_never_stored(client: TestClient) -> None:
    """Nothing is stored yet: every answer but the greeting is an error or a 503 to retry."""
    future = (current_hour() + 2 * HOUR).isoformat()
    paths = ["/comfort?station_id=999", "/comfort?station_id=abc", f"/comfort?at={future}", "/predict/lunch",
             "/predict/morning", "/comfort/forecast", "/nowhere"]  # fmt: skip
    answers: dict[str, Response] = {path: client.get(path) for path in paths}
    health = client.get("/health")

    assert {path: answer.status_code for path, answer in answers.items()} == dict(
        zip(paths, [404, 422, 404, 400, 503, 404, 404], strict=True)
    )
    for path, answer in answers.items():
        assert answer.headers["cache-control"] == "no-store" and "etag" not in answer.headers, path
    assert health.headers["cache-control"] == "no-store"


def test_the_browser_may_read_the_etag_and_retry_after_across_origins(db_url: str, tmp_path: Path) -> None:
    write(db_url, [current_hour() - HOUR])
    settings = Settings(db_url=db_url, data_dir=str(tmp_path / "api"), cors_origins=("https://app.example",))
    with TestClient(create_app(settings)) as client:
        answer = client.get("/predict/now", headers={"Origin": "https://app.example"})

    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    exposed = {name.strip().lower() for name in answer.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "retry-after"} <= exposed and answer.headers["etag"]


def test_the_kept_answers_are_bounded(db_url: str, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "MAX_ANSWERS", 3)
    hours = [current_hour() - n * HOUR for n in range(1, 7)]
    write(db_url, hours)

    answers = [client.get("/comfort", params={"at": hour.isoformat()}).json() for hour in hours * 2]

    assert [answer["prediction_datetime"] for answer in answers] == [hour.isoformat() for hour in hours * 2]
    assert len(client.app.state.service.cache) == 3


def test_the_schema_still_documents_each_answers_shape(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    shapes = {
        path: paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/")[-1]
        for path in (
            "/comfort",
            "/comfort/forecast",
            "/predict/now",
            "/predict/{prediction_type}",
            "/predict/hourly/{prediction_type}",
        )  # fmt: skip
    }

    assert set(paths["/comfort"]["get"]["responses"]["200"]["headers"]) == {"ETag", "Cache-Control"}
    assert shapes == {
        "/comfort": "Comfort",
        "/comfort/forecast": "Forecast",
        "/predict/now": "Prediction",
        "/predict/{prediction_type}": "WindowPrediction",
        "/predict/hourly/{prediction_type}": "Hourly",
    }
