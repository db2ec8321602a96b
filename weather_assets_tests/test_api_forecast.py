"""The read API's forecasts: the next commute window (`/predict/morning`, `/predict/evening`) and a station's
newest forecast issue (`/comfort/forecast`), through the real app on SQLite and on the MariaDB test server, with
`weather_forecasts` rows seeded as the forecast pipeline writes them and the API's clock set."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from weather_assets.api import Settings, create_app
from weather_assets.api.service import window_title
from weather_assets.domain.commute import newest_per_hour, next_window, window_start
from weather_assets_tests.helpers import FORECAST_MEASURED, HOUR, at, seed_forecasts, span

DAY = datetime(2026, 12, 1)  # a Tuesday
TOMORROW_NIGHT = DAY.replace(day=2, hour=23)


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on an empty database (no table at all), serving 108 and 112."""
    settings = Settings(db_url=db_url, data_dir=str(tmp_path / "api"), stations=(108, 112))
    with TestClient(create_app(settings)) as served:
        yield served


@pytest.mark.parametrize(
    ("kind", "now", "first", "count"),
    [
        ("morning", DAY.replace(hour=0, minute=30), DAY.replace(hour=6), 3),
        ("morning", DAY.replace(hour=5, minute=59), DAY.replace(hour=6), 3),
        ("morning", DAY.replace(hour=7, minute=30), DAY.replace(hour=7), 2),  # during it: the hours still to come
        ("morning", DAY.replace(hour=8, minute=59), DAY.replace(hour=8), 1),
        ("morning", DAY.replace(hour=9), DAY.replace(day=2, hour=6), 3),
        ("morning", DAY.replace(hour=23, minute=59), DAY.replace(day=2, hour=6), 3),
        ("evening", DAY.replace(hour=0, minute=30), DAY.replace(hour=17), 4),
        ("evening", DAY.replace(hour=16, minute=59), DAY.replace(hour=17), 4),
        ("evening", DAY.replace(hour=18, minute=15), DAY.replace(hour=18), 3),
        ("evening", DAY.replace(hour=20, minute=59), DAY.replace(hour=20), 1),
        ("evening", DAY.replace(hour=21), DAY.replace(day=2, hour=17), 4),
        ("morning", datetime(2026, 11, 30, 9), datetime(2026, 12, 1, 6), 3),  # a month's end
        ("evening", datetime(2026, 12, 31, 21, 30), datetime(2027, 1, 1, 17), 4),  # a year's end
        ("morning", datetime(2028, 2, 28, 12), datetime(2028, 2, 29, 6), 3),  # a leap day
    ],
)
def test_the_next_window_is_todays_until_it_ends_then_tomorrows(
    kind: str, now: datetime, first: datetime, count: int
) -> None:
    assert next_window(kind, now) == [first + n * HOUR for n in range(count)]


@pytest.mark.parametrize(
    ("kind", "now", "start"),
    [
        ("morning", DAY.replace(hour=5), DAY.replace(hour=6)),
        ("morning", DAY.replace(hour=8, minute=10), DAY.replace(hour=6)),
        ("evening", DAY.replace(hour=20, minute=10), DAY.replace(hour=17)),
        ("evening", DAY.replace(hour=21), DAY.replace(day=2, hour=17)),
    ],
)
def test_the_window_starts_at_its_first_hour_even_once_begun(kind: str, now: datetime, start: datetime) -> None:
    assert window_start(kind, next_window(kind, now)) == start


def test_the_main_commands_rule_takes_each_hour_from_the_newest_issue_that_forecasts_it() -> None:
    """At 17:20 the 17:00 issue starts at 18:00: 17:00 comes from the 14:00 issue, for each station."""
    rows = pd.DataFrame(
        [
            (station, DAY.replace(hour=issue), DAY.replace(hour=hour), float(issue))
            for station in (108, 159)
            for issue, first in ((14, 15), (17, 18))
            for hour in range(first, 21)
        ],
        columns=["station_id", "issued_at", "forecast_datetime", "comfort_score"],
    )
    newest = newest_per_hour(rows.sample(frac=1, random_state=1))
    evening = newest[newest["forecast_datetime"].isin(next_window("evening", DAY.replace(hour=17, minute=20)))]
    assert evening.groupby("station_id")["comfort_score"].apply(list).to_dict() == {
        108: [14.0, 17.0, 17.0, 17.0],
        159: [14.0, 17.0, 17.0, 17.0],
    }


def test_the_title_names_the_day_and_the_whole_window() -> None:
    tuesday_9 = DAY.replace(hour=9)
    assert window_title("morning", next_window("morning", tuesday_9), tuesday_9) == (
        "Morning commute tomorrow (Wed 12-02, 06-09)"
    )
    assert window_title("evening", next_window("evening", tuesday_9), tuesday_9) == (
        "Evening commute today (Tue 12-01, 17-21)"
    )


@pytest.fixture
def two_issues(db_url: str) -> None:
    """Issues of Dec 1 to Dec 2, 23:00: 02:00 (from 03:00, all 90), 05:00 (from 06:00, 65 to 67) and 08:00
    (from 09:00, all 81)."""
    seed_forecasts(db_url, DAY.replace(hour=2), span(DAY.replace(hour=3), TOMORROW_NIGHT), score=lambda h: 90)
    seed_forecasts(
        db_url, DAY.replace(hour=5), span(DAY.replace(hour=6), TOMORROW_NIGHT), score=lambda h: 65 + h.hour % 3
    )
    seed_forecasts(db_url, DAY.replace(hour=8), span(DAY.replace(hour=9), TOMORROW_NIGHT), score=lambda h: 81)


@pytest.mark.usefixtures("two_issues")
def test_morning_after_nine_is_tomorrows_window_from_the_newest_issue_judged_by_its_worst_hour(
    client: TestClient,
) -> None:
    body = at(client, DAY.replace(hour=9)).get("/predict/morning").json()

    # the 08:00 issue covers tomorrow morning too, and is the newest
    assert body["issued_at"] == "2026-12-01T08:00:00"
    assert [hour["time"] for hour in body["hours"]] == ["06:00", "07:00", "08:00"]
    assert {hour["score"] for hour in body["hours"]} == {81}
    assert body["title"] == "Morning commute tomorrow (Wed 12-02, 06-09)"
    assert body["prediction_time"] == "2026-12-02 06:00"
    assert body["age_seconds"] == -21 * 3600  # the window is ahead


@pytest.mark.usefixtures("two_issues")
def test_morning_before_nine_is_todays_remaining_hours_and_the_worst_hour_decides(client: TestClient) -> None:
    at_eight = at(client, DAY.replace(hour=8, minute=59)).get("/predict/morning").json()
    # at 05:00 on Dec 2 the newest issue covering tomorrow morning is the 08:00 one of Dec 1
    tomorrow = at(client, DAY.replace(day=2, hour=5, minute=30)).get("/predict/morning").json()

    assert at_eight["title"] == "Morning commute today (Tue 12-01, 06-09)"
    assert at_eight["issued_at"] == "2026-12-01T05:00:00"  # the 08:00 issue starts at 09:00
    assert [hour["time"] for hour in at_eight["hours"]] == ["08:00"]
    assert at_eight["prediction_time"] == "2026-12-01 06:00"  # the window's start, though it has begun
    assert at_eight["age_seconds"] == (2 * 60 + 59) * 60
    assert tomorrow["issued_at"] == "2026-12-01T08:00:00" and tomorrow["score"] == 81


def test_the_worst_hour_decides_score_label_and_weather(db_url: str, client: TestClient) -> None:
    rainy, windy = DAY.replace(day=2, hour=7), DAY.replace(hour=18)
    newer = [hour for hour in span(DAY.replace(hour=6), TOMORROW_NIGHT) if hour not in (rainy, windy)]
    seed_forecasts(db_url, DAY.replace(hour=5), newer, score=lambda h: 66)
    seed_forecasts(db_url, DAY.replace(hour=5), [rainy], score=lambda h: 35.04, precipitation=3.0)
    seed_forecasts(db_url, DAY.replace(hour=5), [windy], score=lambda h: 52.5, wind_speed=11.0)
    seed_forecasts(db_url, DAY.replace(hour=2), span(DAY.replace(hour=3), TOMORROW_NIGHT), score=lambda h: 90)

    body = at(client, DAY.replace(hour=10)).get("/predict/morning").json()
    evening = client.get("/predict/evening").json()

    assert body["issued_at"] == "2026-12-01T05:00:00"  # newer than 02:00
    assert (body["score"], body["label"]) == (35.0, "poor")
    assert body["evaluation"].startswith("Poor")
    assert body["weather_data"] == {
        "temperature": 4.0, "humidity": 60.0, "rainfall": 3.0, "pm10": 40.0, "wind_speed": 2.0,
        "pressure": 1015.0, "region": "Seoul", "station_id": 108,
    }  # fmt: skip
    assert [(hour["time"], hour["score"], hour["label"]) for hour in body["hours"]] == [
        ("06:00", 66.0, "good"), ("07:00", 35.0, "poor"), ("08:00", 66.0, "good"),
    ]  # fmt: skip
    assert body["hours"][1] == {
        "time": "07:00", "score": 35.0, "label": "poor", "temperature": 4.0, "humidity": 60.0, "rainfall": 3.0,
        "pm10": 40.0, "wind_speed": 2.0, "pressure": 1015.0, "lead_hours": 26, "issued_at": "2026-12-01T05:00:00",
    }  # fmt: skip
    assert (body["prediction_type"], body["status"]) == ("morning", "success")
    expected = {"title", "score", "label", "evaluation", "prediction_time", "weather_data", "prediction_type"}
    assert set(body) == expected | {"status", "age_seconds", "lineage", "issued_at", "hours"}  # lineage: test_lineage
    assert (evening["score"], evening["label"], evening["weather_data"]["wind_speed"]) == (52.5, "fair", 11.0)
    assert evening["prediction_time"] == "2026-12-01 17:00" and len(evening["hours"]) == 4


@pytest.mark.usefixtures("two_issues")
def test_evening_is_todays_before_nine_pm_then_tomorrows(client: TestClient) -> None:
    before = at(client, DAY.replace(hour=20, minute=59)).get("/predict/evening").json()
    after = at(client, DAY.replace(hour=21)).get("/predict/evening").json()

    assert before["title"] == "Evening commute today (Tue 12-01, 17-21)"
    assert [hour["time"] for hour in before["hours"]] == ["20:00"] and before["issued_at"] == "2026-12-01T08:00:00"
    assert before["prediction_time"] == "2026-12-01 17:00"
    assert after["title"] == "Evening commute tomorrow (Wed 12-02, 17-21)"
    assert [hour["time"] for hour in after["hours"]] == ["17:00", "18:00", "19:00", "20:00"]
    assert after["prediction_time"] == "2026-12-02 17:00" and after["score"] == 81


def test_at_17_20_the_17_00_hour_comes_from_the_14_00_issue_and_the_rest_from_the_17_00_one(
    db_url: str, client: TestClient
) -> None:
    """The 17:00 issue forecasts from 18:00 on: each hour takes the newest issue that forecasts it, so 17:00 stays."""
    seed_forecasts(db_url, DAY.replace(hour=14), span(DAY.replace(hour=15), TOMORROW_NIGHT), score=lambda h: 40)
    seed_forecasts(db_url, DAY.replace(hour=17), span(DAY.replace(hour=18), TOMORROW_NIGHT), score=lambda h: 70)

    body = at(client, DAY.replace(hour=17, minute=20)).get("/predict/evening").json()
    listed = client.get("/comfort/forecast").json()

    assert [(hour["time"], hour["issued_at"], hour["score"]) for hour in body["hours"]] == [
        ("17:00", "2026-12-01T14:00:00", 40.0), ("18:00", "2026-12-01T17:00:00", 70.0),
        ("19:00", "2026-12-01T17:00:00", 70.0), ("20:00", "2026-12-01T17:00:00", 70.0),
    ]  # fmt: skip
    assert [hour["lead_hours"] for hour in body["hours"]] == [3, 1, 2, 3]
    assert body["issued_at"] == "2026-12-01T17:00:00"  # the newest issue used
    assert (body["score"], body["prediction_time"], body["age_seconds"]) == (40.0, "2026-12-01 17:00", 1200.0)
    assert body["title"] == "Evening commute today (Tue 12-01, 17-21)"
    assert listed["hours"][0]["forecast_datetime"] == "2026-12-01T17:00:00"
    assert listed["hours"][0]["issued_at"] == "2026-12-01T14:00:00" and listed["issued_at"] == "2026-12-01T17:00:00"
    assert {hour["issued_at"] for hour in listed["hours"][1:]} == {"2026-12-01T17:00:00"}


@pytest.mark.parametrize("kind", ["morning", "evening"])
def test_no_forecast_for_the_window_is_a_503_to_retry_later(db_url: str, client: TestClient, kind: str) -> None:
    now = DAY.replace(hour=9)
    no_table = at(client, now).get(f"/predict/{kind}")
    seed_forecasts(db_url, DAY.replace(hour=5), span(DAY.replace(hour=6), TOMORROW_NIGHT), station_id=112)
    other_station_only = client.get(f"/predict/{kind}")
    seed_forecasts(db_url, DAY.replace(hour=5), span(DAY.replace(hour=6), DAY.replace(hour=16)))
    too_short = client.get(f"/predict/{kind}")

    for answer in (no_table, other_station_only, too_short):
        assert answer.status_code == 503
        assert int(answer.headers["Retry-After"]) > 0
        assert "not available yet" in answer.json()["detail"] and kind in answer.json()["detail"]
        assert not any(word in answer.text for word in ("weather_forecasts", "SELECT", "Traceback"))


def test_an_unknown_prediction_type_is_still_a_400(client: TestClient) -> None:
    answer = client.get("/predict/lunch")
    assert answer.status_code == 400 and "lunch" in answer.json()["detail"]


def test_the_forecast_takes_each_hour_from_the_newest_issue_from_the_current_hour_on(
    db_url: str, client: TestClient
) -> None:
    later = span(DAY.replace(hour=9), DAY.replace(hour=14))
    seed_forecasts(db_url, DAY.replace(hour=8), list(reversed(later)), score=lambda h: 50 + h.hour)  # stored backwards
    seed_forecasts(db_url, DAY.replace(hour=5), span(DAY.replace(hour=6), DAY.replace(hour=20)), score=lambda h: 90)

    body = at(client, DAY.replace(hour=10, minute=40)).get("/comfort/forecast", params={"station_id": 108}).json()

    assert (body["station_id"], body["station_name"], body["region"]) == (108, "Seoul", "Seoul")
    assert (body["issued_at"], body["model_name"], body["model_version"]) == (
        "2026-12-01T08:00:00",
        "comfort-model",
        "2",
    )
    hours = body["hours"]
    # from 10:00 on: the 08:00 issue to 14:00, the 05:00 one beyond, the only issue forecasting 15:00 to 20:00
    assert [hour["forecast_datetime"] for hour in hours] == [
        h.isoformat() for h in span(later[1], DAY.replace(hour=20))
    ]
    assert [hour["lead_hours"] for hour in hours] == [2, 3, 4, 5, 6, *range(10, 16)]
    assert [hour["issued_at"][11:13] for hour in hours] == ["08"] * 5 + ["05"] * 6
    assert [(hour["score"], hour["label"]) for hour in hours][:2] == [(60.0, "good"), (61.0, "good")]
    assert hours[0]["carried_inputs"] == ["pm10", "pressure"]
    assert hours[0]["forecast_inputs"] == ["temperature", "humidity", "precipitation", "wind_speed"]
    assert {key: hours[0][key] for key in FORECAST_MEASURED} == FORECAST_MEASURED and hours[0]["pressure"] == 1015.0


def test_a_station_without_a_forecast_is_a_404(db_url: str, client: TestClient) -> None:
    no_table = at(client, DAY.replace(hour=10)).get("/comfort/forecast")
    seed_forecasts(db_url, DAY.replace(hour=5), span(DAY.replace(hour=6), DAY.replace(hour=20)))
    other = client.get("/comfort/forecast", params={"station_id": 112})
    past = at(client, DAY.replace(hour=21)).get("/comfort/forecast")
    unserved = client.get("/comfort/forecast", params={"station_id": 999})

    for answer in (no_table, other, past, unserved):
        assert answer.status_code == 404 and answer.json()["detail"]
        assert "weather_forecasts" not in answer.text
    assert at(client, DAY.replace(hour=20, minute=10)).get("/comfort/forecast").status_code == 200
