"""The offline getVilageFcst: KMA's JSON shape and paging, its refusals, and forecasts that track `observe`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd
import pytest

from weather_assets.domain import comfort, features
from weather_assets.kma import forecast
from weather_assets.kma.forecast import KMAForecastNoData, issues_between, parse_forecast, parse_pcp
from weather_assets.offline.forecast import sno_text
from weather_assets.offline.hub import OfflineKMA
from weather_assets.offline.observations import observe, wet_and_rain

NOW = datetime(2024, 7, 20, 0, 30)
ISSUE = datetime(2024, 7, 19, 5)
SEOUL = (60, 127)  # station 108
HOURLY = {"TMP", "UUU", "VVV", "VEC", "WSD", "SKY", "PTY", "POP", "WAV", "PCP", "REH", "SNO"}


def ask(issue: datetime, point: tuple[int, int] = SEOUL, now: datetime = NOW, **extra: str) -> bytes:
    params = {"base_date": f"{issue:%Y%m%d}", "base_time": f"{issue:%H%M}", "nx": str(point[0]), "ny": str(point[1])}
    return OfflineKMA(now=now).respond("getVilageFcst", {"dataType": "JSON", **params, **extra})


def answer(body: bytes) -> dict:
    return json.loads(body)["response"]


def test_the_answer_has_kmas_shape_text_values_and_categories() -> None:
    """Same envelope, keys and text values as KMA's; every hour has KMA's twelve hourly categories. A 05:00 issue
    is hourly to the end of 모레 (66 hours), then 3-hourly on 글피 (8 hours) with PCP, SNO and WSD as class codes."""
    body = answer(ask(ISSUE, numOfRows="1000", pageNo="1"))
    assert body["header"] == {"resultCode": "00", "resultMsg": "NORMAL_SERVICE"}
    assert set(body["body"]) == {"dataType", "items", "pageNo", "numOfRows", "totalCount"}
    items = body["body"]["items"]["item"]
    assert body["body"]["totalCount"] == len(items) < 1000
    keys = {"baseDate", "baseTime", "category", "fcstDate", "fcstTime", "fcstValue", "nx", "ny"}
    assert all(set(item) == keys and isinstance(item["fcstValue"], str) for item in items)
    assert all(
        (item["nx"], item["ny"], item["baseDate"], item["baseTime"]) == (60, 127, "20240719", "0500") for item in items
    )
    per_hour: dict[str, set[str]] = {}
    for item in items:
        per_hour.setdefault(item["fcstDate"] + item["fcstTime"], set()).add(item["category"])
    assert len(per_hour) == 74 and (min(per_hour), max(per_hour)) == ("202407190600", "202407222100")
    assert sorted(per_hour)[65:67] == ["202407212300", "202407220000"]
    assert [hour[-4:] for hour in sorted(per_hour)[66:]] == [
        "0000",
        "0300",
        "0600",
        "0900",
        "1200",
        "1500",
        "1800",
        "2100",
    ]
    assert all(HOURLY <= categories for categories in per_hour.values())
    extremes = sorted((item["category"], item["fcstTime"]) for item in items if item["category"] in ("TMN", "TMX"))
    assert extremes == [("TMN", "0600")] * 4 + [("TMX", "1500")] * 4
    coded = [item for item in items if item["fcstDate"] == "20240722" and item["category"] in ("PCP", "WSD")]
    assert {item["fcstValue"] for item in coded if item["category"] == "WSD"} <= {"1", "2", "3"}
    assert all(parse_pcp(item["fcstValue"], item in coded) >= 0 for item in items if item["category"] == "PCP")
    assert all(item["fcstValue"].lstrip("-").isdigit() for item in items if item["category"] in ("TMP", "REH"))


@pytest.mark.parametrize(
    ("cm", "text"),
    [(0.0, "적설없음"), (0.1, "0.5cm 미만"), (0.4, "0.5cm 미만"), (0.5, "0.5cm"), (4.9, "4.9cm"), (5.0, "5.0cm 이상")],
)
def test_snow_is_written_in_kmas_current_classes(cm: float, text: str) -> None:
    """The lowest class is "0.5cm 미만" as KMA writes it now, not the older "1cm 미만"."""
    assert sno_text(cm) == text


def test_pages_are_slices_of_the_whole_answer() -> None:
    """numOfRows and pageNo cut the same list KMA would, and totalCount counts all of it."""
    whole = answer(ask(ISSUE, numOfRows="1000"))["body"]["items"]["item"]
    second = answer(ask(ISSUE, numOfRows="100", pageNo="2"))["body"]
    assert second["items"]["item"] == whole[100:200]
    assert (second["pageNo"], second["numOfRows"], second["totalCount"]) == (2, 100, len(whole))
    assert len(answer(ask(ISSUE))["body"]["items"]["item"]) == 10  # KMA's default page: 10 rows
    assert answer(ask(ISSUE, numOfRows="1000", pageNo="2"))["header"]["resultCode"] == "03"


def test_an_evening_issue_reaching_five_days_takes_two_pages() -> None:
    """A 17:00 issue: hourly to the end of 글피, then 그글피 3-hourly: more than 1000 items, so a second page."""
    evening = datetime(2024, 7, 19, 17)
    first, second = (answer(ask(evening, numOfRows="1000", pageNo=page))["body"] for page in ("1", "2"))
    assert first["totalCount"] == second["totalCount"] == 1000 + len(second["items"]["item"]) > 1000
    frame = parse_forecast([ask(evening, numOfRows="1000", pageNo=page) for page in ("1", "2")])
    assert len(frame) == 6 + 72 + 8 and frame["forecast_at"].max() == datetime(2024, 7, 23, 21)
    assert frame[["temperature", "precipitation", "wind_speed"]].notna().all().all()


def test_the_same_question_gives_the_same_bytes() -> None:
    first = ask(ISSUE, numOfRows="1000")
    observe.cache_clear()
    assert ask(ISSUE, numOfRows="1000") == first


def test_an_issue_is_no_data_until_ten_minutes_after_its_base_time() -> None:
    issue = datetime(2024, 7, 20, 5)
    with pytest.raises(KMAForecastNoData):
        parse_forecast(ask(issue, now=issue + timedelta(minutes=9, seconds=59)))
    assert len(parse_forecast(ask(issue, now=issue + timedelta(minutes=10)))) == 1  # a page of 10 rows: one hour


def test_an_issue_older_than_three_days_is_refused_as_kma_refuses_it() -> None:
    body = answer(ask(ISSUE, now=ISSUE + timedelta(days=3, minutes=1)))
    assert body["header"] == {"resultCode": "10", "resultMsg": "최근 3일 간의 자료만 제공합니다."}


@pytest.mark.parametrize("base_time", ["0600", "0510"])
def test_a_base_time_that_is_no_issue_is_an_invalid_parameter(base_time: str) -> None:
    params = {"base_date": "20240719", "base_time": base_time, "nx": "60", "ny": "127"}
    body = answer(OfflineKMA(now=NOW).respond("getVilageFcst", params))
    assert body["header"]["resultCode"] == "10"


def test_a_point_without_a_station_gets_a_weather_of_its_own() -> None:
    """Any point answers, deterministically, and differently from Seoul."""
    far = parse_forecast(ask(ISSUE, (10, 10), numOfRows="1000"))
    assert len(far) == 74 and far["temperature"].notna().all()
    assert ask(ISSUE, (10, 10), numOfRows="1000") == ask(ISSUE, (10, 10), numOfRows="1000")
    assert not far["temperature"].equals(parse_forecast(ask(ISSUE, numOfRows="1000"))["temperature"])


def forecasts_against_observations(first: datetime, last: datetime) -> pd.DataFrame:
    """Seoul's forecasts of every issue in a span, each asked for when it is out, with the hour's observation."""
    issues = issues_between(first, last)
    frame = pd.concat(parse_forecast(ask(i, now=i + timedelta(hours=1), numOfRows="1000")) for i in issues)
    observed = [observe(108, hour.to_pydatetime()) for hour in frame["forecast_at"]]
    return frame.assign(
        lead=(frame["forecast_at"] - frame["issued_at"]) / pd.Timedelta(hours=1),
        observed_temperature=[o["TA"] for o in observed],
        observed_humidity=[o["HM"] for o in observed],
    ).dropna(subset=["observed_temperature", "observed_humidity"])


def test_forecasts_track_observe_and_err_more_at_longer_leads() -> None:
    """Over three days of issues: close at short leads, further off beyond two days, for each field."""
    frame = forecasts_against_observations(datetime(2024, 7, 17, 2), datetime(2024, 7, 19, 23))
    short, long = frame[frame["lead"] < 6], frame[frame["lead"] > 48]
    assert len(short) > 100 and len(long) > 100
    for field in ("temperature", "humidity"):
        error_short = (short[field] - short[f"observed_{field}"]).abs().mean()
        error_long = (long[field] - long[f"observed_{field}"]).abs().mean()
        assert error_short < error_long, field
    assert (short["temperature"] - short["observed_temperature"]).abs().mean() < 1.0


def test_rain_is_forecast_where_it_falls_more_often_at_short_leads() -> None:
    """A rainy July span: wet and dry hours agree with the observations more often at short leads."""
    frame = forecasts_against_observations(datetime(2024, 7, 10, 2), datetime(2024, 7, 16, 23))
    rained = [wet_and_rain(108, hour.to_pydatetime())[1] >= 0.1 for hour in frame["forecast_at"]]  # measurable
    agree = (frame["precipitation"] > 0) == pd.Series(rained, index=frame.index)
    assert any(rained)
    assert agree[frame["lead"] < 6].mean() > agree[frame["lead"] > 48].mean()


def test_the_forecast_columns_parse_from_the_offline_answer() -> None:
    frame = parse_forecast(ask(ISSUE, numOfRows="1000"))
    assert list(frame.columns) == list(forecast.FORECAST_COLUMNS)
    assert frame[["temperature", "humidity", "wind_speed", "precipitation", "pop", "sky", "pty"]].notna().all().all()


def test_offline_forecast_features_score_like_observations() -> None:
    """The whole path offline: answers of two points, features with carried PM10 and pressure, comfort scores."""
    answers = pd.concat(parse_forecast(ask(ISSUE, point, numOfRows="1000")) for point in (SEOUL, (54, 125)))
    carried = pd.DataFrame({"station_id": [108, 112], "pm10": [30.0, 55.0], "pressure": [1008.0, 1009.0]})
    frame = features.from_forecast(answers, carried, [108, 112])
    leads = set(range(1, 67)) | {67 + 3 * step for step in range(8)}
    assert len(frame) == 2 * 74 and set(frame["lead_hours"]) == leads
    scores = comfort.score(frame)
    assert scores.between(0, 100).all() and scores.nunique() > 10
