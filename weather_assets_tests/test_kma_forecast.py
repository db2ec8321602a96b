"""KMA's short-term forecast: issue times, real answers and error answers, PCP classes, forecast features."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pandas as pd
import pytest

from weather_assets.domain.features import MEASUREMENTS, from_forecast
from weather_assets.kma import forecast
from weather_assets.kma.forecast import (
    KMAForecastError,
    KMAForecastNoData,
    issues_between,
    latest_issue,
    parse_forecast,
    parse_pcp,
    parse_wsd,
)

# A real answer of getVilageFcst (issue 2022-11-28 05:00, nx 60, ny 125, one page of 10 rows), as logged by
# okhttp and pasted into a public Kotlin client (package com.hipaduck.launchyourlunch, data/remote/model,
# WheatherResponse.kt). The page ends before REH, so this hour has no humidity.
REAL_2022 = (
    '{"response":{"header":{"resultCode":"00","resultMsg":"NORMAL_SERVICE"},"body":{"dataType":"JSON","items":{"item":['
    '{"baseDate":"20221128","baseTime":"0500","category":"TMP","fcstDate":"20221128","fcstTime":"0600","fcstValue":"9","nx":60,"ny":125},'
    '{"baseDate":"20221128","baseTime":"0500","category":"UUU","fcstDate":"20221128","fcstTime":"0600","fcstValue":"-2.1","nx":60,"ny":125},'
    '{"baseDate":"20221128","baseTime":"0500","category":"VVV","fcstDate":"20221128","fcstTime":"0600","fcstValue":"0.6","nx":60,"ny":125},'
    '{"baseDate":"20221128","baseTime":"0500","category":"VEC","fcstDate":"20221128","fcstTime":"0600","fcstValue":"105","nx":60,"ny":125},'
    '{"baseDate":"20221128","baseTime":"0500","category":"WSD","fcstDate":"20221128","fcstTime":"0600","fcstValue":"2.3","nx":60,"ny":125},'
    '{"baseDate":"20221128","baseTime":"0500","category":"SKY","fcstDate":"20221128","fcstTime":"0600","fcstValue":"4","nx":60,"ny":125},'
    '{"baseDate":"20221128","baseTime":"0500","category":"PTY","fcstDate":"20221128","fcstTime":"0600","fcstValue":"0","nx":60,"ny":125},'
    '{"baseDate":"20221128","baseTime":"0500","category":"POP","fcstDate":"20221128","fcstTime":"0600","fcstValue":"30","nx":60,"ny":125},'
    '{"baseDate":"20221128","baseTime":"0500","category":"WAV","fcstDate":"20221128","fcstTime":"0600","fcstValue":"0","nx":60,"ny":125},'
    '{"baseDate":"20221128","baseTime":"0500","category":"PCP","fcstDate":"20221128","fcstTime":"0600","fcstValue":"강수없음","nx":60,"ny":125}'
    ']},"pageNo":1,"numOfRows":10,"totalCount":809}}}'
).encode()

# The same log's answer to an issue older than KMA serves (same source as REAL_2022).
REAL_TOO_OLD = '{"response":{"header":{"resultCode":"10","resultMsg":"최근 3일 간의 자료만 제공합니다."}}}'.encode()

# A real body (issue 2021-09-20 05:00, nx 55, ny 127, 11 rows, REH and SNO included), quoted in a public Android
# client (package com.dongyang.android.aob.Weather.Model, Body.java), here under the NORMAL_SERVICE header.
REAL_2021 = (
    '{"response":{"header":{"resultCode":"00","resultMsg":"NORMAL_SERVICE"},"body":{"dataType":"JSON","items":{"item":['
    '{"baseDate":"20210920","baseTime":"0500","category":"TMP","fcstDate":"20210920","fcstTime":"0600","fcstValue":"20","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"UUU","fcstDate":"20210920","fcstTime":"0600","fcstValue":"-1.9","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"VVV","fcstDate":"20210920","fcstTime":"0600","fcstValue":"1.4","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"VEC","fcstDate":"20210920","fcstTime":"0600","fcstValue":"125","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"WSD","fcstDate":"20210920","fcstTime":"0600","fcstValue":"2.4","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"SKY","fcstDate":"20210920","fcstTime":"0600","fcstValue":"1","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"PTY","fcstDate":"20210920","fcstTime":"0600","fcstValue":"0","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"POP","fcstDate":"20210920","fcstTime":"0600","fcstValue":"0","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"PCP","fcstDate":"20210920","fcstTime":"0600","fcstValue":"강수없음","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"REH","fcstDate":"20210920","fcstTime":"0600","fcstValue":"85","nx":55,"ny":127},'
    '{"baseDate":"20210920","baseTime":"0500","category":"SNO","fcstDate":"20210920","fcstTime":"0600","fcstValue":"적설없음","nx":55,"ny":127}'
    ']},"pageNo":1,"numOfRows":11,"totalCount":742}}}'
).encode()

# NO_DATA as KMA answers an issue not yet published; its text is quoted by public clients (e.g. a Java client's
# note "내일 날씨 예보를 보려고 오늘 날짜를 baseDate로 해서 조회하면 ... No Data 에러").
NO_DATA = b'{"response":{"header":{"resultCode":"03","resultMsg":"NO_DATA"}}}'
# The data.go.kr gateway's error form, XML whatever dataType asked for; code 22 is its quota error (code list:
# ProjBongGO/REDCAP_TOUR, proj/don_bulkup/api/references/공공데이터포털_주식시세정보_API_에러코드정리.md).
XML_ERROR = (
    b"<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
    b"<returnAuthMsg>LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR</returnAuthMsg>"
    b"<returnReasonCode>22</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>"
)
ISSUE = datetime(2022, 11, 28, 5)


def test_a_real_answer_parses_to_one_row_per_hour_with_missing_categories_as_nan() -> None:
    """The real page: TMP, WSD, POP, SKY, PTY, PCP read; REH lies beyond the page, so humidity is NaN."""
    frame = parse_forecast(REAL_2022)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row["issued_at"], row["forecast_at"]) == (ISSUE, datetime(2022, 11, 28, 6))
    assert (row["nx"], row["ny"]) == (60, 125)
    assert (row["temperature"], row["wind_speed"], row["pop"], row["precipitation"]) == (9.0, 2.3, 30.0, 0.0)
    assert (row["sky"], row["pty"]) == (4, 0)
    assert math.isnan(row["humidity"])
    assert list(frame.columns) == list(forecast.FORECAST_COLUMNS)
    assert frame["temperature"].dtype == "float64" and str(frame["sky"].dtype) == "Int64"
    assert frame["issued_at"].dtype == "datetime64[ns]" and frame["nx"].dtype == "int64"


def test_a_second_real_answer_reads_humidity() -> None:
    """REH, when the page holds it, is the humidity; SNO, VEC, UUU, VVV are not used."""
    row = parse_forecast(REAL_2021).iloc[0]
    assert (row["temperature"], row["humidity"], row["wind_speed"], row["sky"]) == (20.0, 85.0, 2.4, 1)


def test_daily_extremes_are_ignored_and_a_missing_hour_category_is_nan() -> None:
    """TMN/TMX are daily values, not the hour's; an hour that lacks TMP keeps its other values."""
    item = (
        '{{"baseDate":"20221128","baseTime":"0500","category":"{}","fcstDate":"20221128","fcstTime":"{}",'
        '"fcstValue":"{}","nx":60,"ny":125}}'
    )
    items = [item.format("TMN", "0600", "-3.0"), item.format("TMP", "0600", "1"), item.format("REH", "0700", "70")]
    body = (
        '{"response":{"header":{"resultCode":"00","resultMsg":"NORMAL_SERVICE"},"body":{"items":{"item":['
        + ",".join(items)
        + "]}}}}"
    ).encode()
    frame = parse_forecast(body)
    assert frame["temperature"].tolist()[0] == 1.0 and math.isnan(frame["temperature"].tolist()[1])
    assert frame["humidity"].tolist()[1] == 70.0 and pd.isna(frame["sky"]).all()


@pytest.mark.parametrize(
    ("text", "mm"),
    [
        ("강수없음", 0.0),
        ("-", 0.0),
        ("null", 0.0),
        ("0", 0.0),
        ("1mm 미만", 0.5),
        ("1.0mm 미만", 0.5),
        ("1.0mm", 1.0),
        ("6.9mm", 6.9),
        ("29.9mm", 29.9),
        ("30.0~50.0mm", 40.0),
        ("50.0mm 이상", 50.0),
    ],
)
def test_every_pcp_form_has_its_documented_value(text: str, mm: float) -> None:
    """KMA guide's forms: exact amounts as they are, a bounded class its midpoint, an open one its bound."""
    assert parse_pcp(text) == pytest.approx(mm)


@pytest.mark.parametrize(
    ("text", "coded", "mm"),
    [
        ("약한 비", False, 1.5),
        ("보통 비", False, 9.0),
        ("비", False, 9.0),
        ("강한 비", False, 15.0),
        ("강한비", False, 15.0),
        ("1", True, 1.5),
        ("2", True, 9.0),
        ("3", True, 15.0),
        ("0", True, 0.0),
    ],
)
def test_the_extensions_rain_classes_stand_for_their_documented_amounts(text: str, coded: bool, mm: float) -> None:
    """KMA's classes since 2024-11-28: under 3 mm/h, 3 to under 15, 15 and more: midpoints, and the open one's bound;
    by name anywhere, by code only in the extension."""
    assert parse_pcp(text, coded) == pytest.approx(mm)


@pytest.mark.parametrize(
    ("text", "coded", "speed"),
    [
        ("약한 바람", False, 2.0),
        ("약간 강한 바람", False, 6.5),
        ("강한 바람", False, 9.0),
        ("3", True, 9.0),
        ("3", False, 3.0),
    ],
)
def test_wind_classes_stand_for_their_documented_speeds(text: str, coded: bool, speed: float) -> None:
    """Under 4 m/s, 4 to under 9, 9 and more; "3" is a class only in the extension, else 3 m/s."""
    assert parse_wsd(text, coded) == pytest.approx(speed)


@pytest.mark.parametrize("text", ["약간", "mm", "1~", "많은 눈", "1", "nan"])
def test_an_unknown_pcp_form_is_an_error_not_dry(text: str) -> None:
    with pytest.raises(ValueError, match="unknown PCP form"):
        parse_pcp(text)


def test_an_unknown_pcp_form_inside_an_answer_names_the_item_issue_and_point() -> None:
    with pytest.raises(KMAForecastError, match="unreadable item.*PCP.*unknown PCP form") as caught:
        parse_forecast(REAL_2022.replace("강수없음".encode(), "비 조금".encode()), ISSUE, (60, 125))
    assert "2022-11-28 05:00" in str(caught.value) and "nx=60, ny=125" in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new"), [('"강수없음"', '"비 조금"'), ('"9"', '"nan"'), ('"9"', '"inf"'), ('"4"', '"inf"')]
)
def test_an_unreadable_value_is_missing_for_its_hour_and_reported_when_asked(old: str, new: str) -> None:
    """With a list for them, an unknown text or a non-finite number is NaN (its hour kept) and described once."""
    unreadable: list[str] = []
    row = parse_forecast(REAL_2022.replace(old.encode(), new.encode(), 1), ISSUE, (60, 125), unreadable).iloc[0]
    assert len(unreadable) == 1 and new.strip('"') in unreadable[0] and "2022-11-28 05:00" in unreadable[0]
    assert row[["temperature", "precipitation", "sky"]].isna().sum() == 1
    assert row["wind_speed"] == 2.3  # the hour's other values stay


def test_kmas_missing_value_is_missing_and_not_unreadable() -> None:
    unreadable: list[str] = []
    row = parse_forecast(REAL_2022.replace(b'"9"', b'"-999"', 1), ISSUE, (60, 125), unreadable).iloc[0]
    assert math.isnan(row["temperature"]) and unreadable == []


@pytest.mark.parametrize("value", [b"null", b'"null"', b'"0"'])
def test_pcps_null_and_zero_are_no_rain_as_the_guide_says(value: bytes) -> None:
    """The guide's "-, null, 0값은 '강수없음'": a JSON null, the text "null" and "0" are 0.0 mm, not unknown."""
    unreadable: list[str] = []
    row = parse_forecast(REAL_2022.replace('"강수없음"'.encode(), value), ISSUE, (60, 125), unreadable).iloc[0]
    assert row["precipitation"] == 0.0 and unreadable == []


def test_a_null_temperature_is_unreadable_not_zero() -> None:
    """The guide's null rule is PCP's (and SNO's): a null TMP is missing and reported, never 0 °C."""
    body = REAL_2022.replace(b'"fcstValue":"9"', b'"fcstValue":null', 1)
    unreadable: list[str] = []
    row = parse_forecast(body, ISSUE, (60, 125), unreadable).iloc[0]
    assert math.isnan(row["temperature"]) and len(unreadable) == 1 and "'TMP'" in unreadable[0]
    with pytest.raises(KMAForecastError, match="unreadable item.*TMP"):
        parse_forecast(body)


def item(category: str, fcst: datetime, value: str, issued: datetime = ISSUE) -> str:
    return (
        f'{{"baseDate":"{issued:%Y%m%d}","baseTime":"{issued:%H%M}","category":"{category}",'
        f'"fcstDate":"{fcst:%Y%m%d}","fcstTime":"{fcst:%H%M}","fcstValue":"{value}","nx":60,"ny":125}}'
    )


def answer(*items: str, total: int | None = None) -> bytes:
    count = f',"totalCount":{total}' if total is not None else ""
    return (
        '{"response":{"header":{"resultCode":"00","resultMsg":"NORMAL_SERVICE"},"body":{"items":{"item":['
        + ",".join(items)
        + f"]}}{count}}}}}}}"
    ).encode()


def test_extension_codes_are_classes_only_in_the_extension_days() -> None:
    """A 05:00 issue is hourly to the end of 모레 and 3-hourly on 글피; a 17:00 issue one day longer."""
    hourly, extension = datetime(2022, 11, 30, 21), datetime(2022, 12, 1, 0)
    frame = parse_forecast(
        answer(
            item("WSD", hourly, "3"),
            item("PCP", hourly, "6.0mm"),
            item("WSD", extension, "3"),
            item("PCP", extension, "2"),
        )
    )
    assert frame["wind_speed"].tolist() == [3.0, 9.0] and frame["precipitation"].tolist() == [6.0, 9.0]
    assert not forecast.in_extension(datetime(2022, 11, 28, 17), extension)
    assert forecast.in_extension(datetime(2022, 11, 28, 17), datetime(2022, 12, 2, 0))


def test_pages_merge_and_the_count_is_read() -> None:
    first, second = datetime(2022, 11, 28, 6), datetime(2022, 11, 28, 7)
    pages = [answer(item("TMP", first, "1"), total=2), answer(item("TMP", second, "2"), total=2)]
    assert forecast.read_answer(pages[0]).total_count == 2
    assert forecast.read_answer(answer(item("TMP", first, "1"))).total_count == 1  # no count: the page is all
    assert parse_forecast(pages)["temperature"].tolist() == [1.0, 2.0]


def test_no_data_is_its_own_error_naming_the_issue_and_point() -> None:
    with pytest.raises(KMAForecastNoData) as caught:
        parse_forecast(NO_DATA, ISSUE, (60, 125))
    assert caught.value.code == "03"
    assert "03" in str(caught.value) and "NO_DATA" in str(caught.value)
    assert "2022-11-28 05:00" in str(caught.value) and "nx=60, ny=125" in str(caught.value)


def test_an_issue_older_than_kma_serves_is_an_error_but_not_no_data() -> None:
    """KMA refuses issues older than three days with code 10, which waiting does not fix."""
    with pytest.raises(KMAForecastError) as caught:
        parse_forecast(REAL_TOO_OLD, ISSUE, (60, 125))
    assert not isinstance(caught.value, KMAForecastNoData)
    assert caught.value.code == "10" and "최근 3일" in str(caught.value)


def test_an_xml_gateway_error_is_read_for_its_code_and_message() -> None:
    with pytest.raises(KMAForecastError) as caught:
        parse_forecast(XML_ERROR, ISSUE, (60, 125))
    assert caught.value.code == "22"
    assert "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><head><title>API Hub - Service Maintenance</title></head></html>",
        b"",
        b'{"result":{"status":401,"message":"unauthorized"}}',
    ],
    ids=["html", "empty", "other-json"],
)
def test_anything_else_is_an_error_quoting_it(body: bytes) -> None:
    with pytest.raises(KMAForecastError) as caught:
        parse_forecast(body, ISSUE, (60, 125))
    assert caught.value.code is None
    assert "neither KMA's JSON nor its XML error" in str(caught.value)
    assert body[:30].decode() in str(caught.value)


@pytest.mark.parametrize(
    ("now", "issue"),
    [
        (datetime(2026, 11, 26, 5, 9, 59), datetime(2026, 11, 26, 2)),  # 05:00 is not served before 05:10
        (datetime(2026, 11, 26, 5, 10), datetime(2026, 11, 26, 5)),
        (datetime(2026, 11, 26, 23, 59), datetime(2026, 11, 26, 23)),
        (datetime(2026, 11, 26, 2, 5), datetime(2026, 11, 25, 23)),  # before 02:10 it is yesterday's 23:00
        (datetime(2026, 1, 1, 0, 30), datetime(2025, 12, 31, 23)),
    ],
)
def test_latest_issue_is_the_newest_that_is_due(now: datetime, issue: datetime) -> None:
    assert latest_issue(now) == issue


@pytest.mark.parametrize(
    ("now", "wait", "issue"),
    [
        (datetime(2026, 11, 26, 14, 30), 50, datetime(2026, 11, 26, 11)),  # 14:00 may still be waited for
        (datetime(2026, 11, 26, 15, 0), 50, datetime(2026, 11, 26, 14)),
        (datetime(2026, 11, 26, 8, 20), 0, datetime(2026, 11, 26, 5)),  # 08:00 is out but forecasts from 09:00
        (datetime(2026, 11, 26, 9, 0), 0, datetime(2026, 11, 26, 8)),
        (datetime(2026, 11, 26, 2, 30), 50, datetime(2026, 11, 25, 23)),
    ],
)
def test_the_settled_issue_is_never_waited_for_and_forecasts_the_current_hour(
    now: datetime, wait: int, issue: datetime
) -> None:
    assert forecast.settled_issue(now, timedelta(minutes=wait)) == issue
    assert issue + timedelta(hours=1) <= now.replace(minute=0)


def test_issues_between_lists_every_base_time_in_the_span() -> None:
    assert issues_between(datetime(2026, 11, 25, 20), datetime(2026, 11, 26, 5)) == [
        datetime(2026, 11, 25, 20),
        datetime(2026, 11, 25, 23),
        datetime(2026, 11, 26, 2),
        datetime(2026, 11, 26, 5),
    ]
    assert issues_between(datetime(2026, 11, 26, 6), datetime(2026, 11, 26, 7)) == []
    assert len(issues_between(datetime(2026, 11, 1), datetime(2026, 11, 30, 23, 59))) == 30 * 8


def forecast_of(point: tuple[int, int], hours: int = 3) -> pd.DataFrame:
    """A small forecast frame of one point: hour i has temperature 10 + i, no rain, humidity missing at hour 2."""
    rows = [
        (ISSUE, ISSUE + pd.Timedelta(hours=i), *point, 10.0 + i, math.nan if i == 2 else 60.0, 2.0, 0.0, 0.0, 1, 0)
        for i in range(1, hours + 1)
    ]
    frame = pd.DataFrame(rows, columns=list(forecast.FORECAST_COLUMNS))
    return frame.astype({"sky": "Int64", "pty": "Int64"})


def test_forecast_features_map_stations_to_their_point_and_carry_pm10_and_pressure() -> None:
    """Seoul (60, 127) takes its point's forecast and its last observed PM10 and pressure for every hour."""
    forecast = pd.concat([forecast_of((60, 127)), forecast_of((97, 74))])
    carried = pd.DataFrame({"station_id": [108], "pm10": [42.0], "pressure": [1012.5]})
    frame = from_forecast(forecast, carried, [108, 159, 112])
    assert list(frame.columns) == [
        "station_id", "station_name", "region", "observed_at", "issued_at", "lead_hours", *MEASUREMENTS,
        "forecast_inputs", "carried_inputs",
    ]  # fmt: skip
    seoul = frame[frame["station_id"] == 108]
    assert seoul["observed_at"].tolist() == [ISSUE + pd.Timedelta(hours=i) for i in (1, 2, 3)]
    assert seoul["lead_hours"].tolist() == [1, 2, 3]
    assert seoul["temperature"].tolist() == [11.0, 12.0, 13.0]
    assert (seoul["pm10"] == 42.0).all() and (seoul["pressure"] == 1012.5).all()
    assert seoul["forecast_inputs"].tolist()[0] == "temperature,humidity,precipitation,wind_speed"
    assert seoul["forecast_inputs"].tolist()[1] == "temperature,precipitation,wind_speed"
    assert (seoul["carried_inputs"] == "pm10,pressure").all()
    busan = frame[frame["station_id"] == 159]  # no carried row: PM10 and pressure missing, nothing carried
    assert len(busan) == 3 and busan["pm10"].isna().all() and busan["pressure"].isna().all()
    assert (busan["carried_inputs"] == "").all() and busan["station_name"].tolist()[0] == "Busan"
    assert 112 not in frame["station_id"].tolist()  # Incheon's point (54, 125) is not in the forecast
    assert frame["lead_hours"].dtype == "int64" and frame["observed_at"].dtype == "datetime64[ns]"


def test_forecast_features_refuse_two_carried_rows_for_one_station() -> None:
    carried = pd.DataFrame({"station_id": [108, 108], "pm10": [1.0, 2.0], "pressure": [1000.0, 1001.0]})
    with pytest.raises(ValueError, match="one row per station"):
        from_forecast(forecast_of((60, 127)), carried, [108])
