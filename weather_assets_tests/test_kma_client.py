"""KMAClient against a real HTTP server on loopback that answers like the API Hub (via the offline generator)."""

from __future__ import annotations

import logging
import socket
import traceback
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest

from weather_assets.defs.resources.kma_client import (
    KMAClient,
    KMAError,
    KMAForecastTooLong,
    KMAForecastUnpublished,
    KMAHubClient,
)
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.domain.hours import kst_now
from weather_assets.kma.forecast import latest_issue, parse_forecast, read_answer
from weather_assets_tests.kma_hub import Action, FakeHub, answer, echo, slow, status

KEY = "SECRET-KEY-123"
STATIONS = "108,112"
HOUR = datetime(2024, 1, 15, 9)


def online(hub: FakeHub, **overrides: object) -> KMAClient:
    """A keyed client pointed at the local hub, with retries fast enough for tests."""
    config: dict[str, object] = {
        "auth_key": KEY,
        "base_url": hub.base_url,
        "backoff_seconds": 0.01,
        "timeout_seconds": 5.0,  # generous for real answers on a busy machine; slow tests set their own
        "stations": STATIONS,
    }
    return KMAHubClient(**{**config, **overrides})


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def whole(error: BaseException) -> str:
    """The exception as a traceback would show it, chained causes included."""
    return "".join(traceback.format_exception(error))


def hours_from(first: datetime, count: int) -> list[datetime]:
    """`count` consecutive KST hours from `first`, as a partition range gives them."""
    return [first + timedelta(hours=i) for i in range(count)]


def test_one_hour_costs_one_sfctm2_and_one_pm10_call_and_matches_offline(hub: FakeHub) -> None:
    """Online and offline speak the same bytes, so everything downstream can be tested offline."""
    raw = online(hub).fetch_hours([HOUR])
    assert hub.endpoints() == ["kma_sfctm2.php", "kma_pm10.php"]
    (asos,) = hub.queries("kma_sfctm2.php")
    assert asos == {"tm": "202401150900", "stn": "0", "help": "0", "authKey": KEY}
    (pm10,) = hub.queries("kma_pm10.php")
    assert (pm10["tm1"], pm10["tm2"], pm10["authKey"]) == ("202401150805", "202401150900", KEY)
    assert raw.calls == 2
    assert raw == OfflineKMAClient(stations=STATIONS).fetch_hours([HOUR])


def covered(queries: list[dict[str, str]]) -> dict[tuple[str, str], set[str]]:
    """For each (tm1, tm2) range called, the stations it asked for (``0`` meaning all)."""
    spans: dict[tuple[str, str], set[str]] = {}
    for query in queries:
        spans.setdefault((query["tm1"], query["tm2"]), set()).add(query["stn"])
    return spans


def covers_stations(asked: set[str]) -> bool:
    """Whether the `stn` values asked for include every configured station."""
    return "0" in asked or asked >= set(STATIONS.split(","))


def test_48_hours_cost_one_sfctm3_call_per_station_and_pm10_by_range(hub: FakeHub) -> None:
    """A backfill must not cost one call per hour: sfctm3 and kma_pm10 cover the whole range per call."""
    hours = hours_from(datetime(2024, 1, 15, 0), 48)
    raw = online(hub).fetch_hours(hours)
    assert "kma_sfctm2.php" not in hub.endpoints()
    ranges = [(q["stn"], q["tm1"], q["tm2"]) for q in hub.queries("kma_sfctm3.php")]
    assert sorted(ranges) == [("108", "202401150000", "202401162300"), ("112", "202401150000", "202401162300")]
    pm10 = hub.queries("kma_pm10.php")
    assert 1 <= len(pm10) <= 2  # all stations at once, or one range per station; never one per hour
    spans = covered(pm10)
    assert list(spans) == [("202401142305", "202401162300")]  # 23:05 opens the 00:00 hour
    assert covers_stations(spans[("202401142305", "202401162300")])
    assert raw.calls == len(hub.requests)
    assert sorted(raw.asos) == hours and sorted(raw.pm10) == hours
    assert raw.unpublished() == []


def test_range_fetch_stores_the_same_hourly_objects_as_a_one_hour_fetch(hub: FakeHub) -> None:
    """An hour backfilled by range calls must be byte-identical to the same hour fetched alone."""
    hour = datetime(2024, 1, 15, 10)
    ranged = online(hub).fetch_hours(hours_from(datetime(2024, 1, 15, 0), 48))
    single = online(hub).fetch_hours([hour])
    assert ranged.asos[hour] == single.asos[hour]
    assert ranged.pm10[hour] == single.pm10[hour]


def test_40_days_are_chunked_into_two_range_calls_per_station(hub: FakeHub) -> None:
    """KMA allows at most 31 days per range call, so 40 days need two consecutive, non-overlapping chunks."""
    hours = hours_from(datetime(2024, 3, 1, 0), 40 * 24)
    raw = online(hub, timeout_seconds=30.0, max_range_days=31).fetch_hours(hours)
    ranges = sorted((q["stn"], q["tm1"], q["tm2"]) for q in hub.queries("kma_sfctm3.php"))
    # 31 days = 744 hours: Mar 1 00:00 .. Mar 31 23:00, then Apr 1 00:00 .. Apr 9 23:00.
    assert ranges == [
        ("108", "202403010000", "202403312300"),
        ("108", "202404010000", "202404092300"),
        ("112", "202403010000", "202403312300"),
        ("112", "202404010000", "202404092300"),
    ]
    spans = covered(hub.queries("kma_pm10.php"))
    assert sorted(spans) == [("202402292305", "202403312300"), ("202403312305", "202404092300")]
    assert all(covers_stations(asked) for asked in spans.values())
    assert raw.calls == len(hub.requests)
    assert len(raw.asos) == 960 and raw.unpublished() == []


def test_503_twice_then_success_is_retried(hub: FakeHub) -> None:
    """A busy gateway is transient: the client retries with backoff and gets the same bytes as without errors."""
    hub.script.extend([status(503), status(503)])
    raw = online(hub).fetch_hours([HOUR])
    assert hub.endpoints() == ["kma_sfctm2.php"] * 3 + ["kma_pm10.php"]
    assert raw == OfflineKMAClient(stations=STATIONS).fetch_hours([HOUR])


def test_persistent_500_fails_naming_endpoint_and_attempts(hub: FakeHub) -> None:
    """After max_attempts the run must fail with a message that says what was called and how often."""
    hub.default = status(500, b"Internal Server Error")
    with pytest.raises(KMAError) as caught:
        online(hub, max_attempts=3).fetch_hours([HOUR])
    message = str(caught.value)
    assert "kma_sfctm2.php" in message
    assert "3 attempts" in message
    assert "500" in message
    assert hub.endpoints() == ["kma_sfctm2.php"] * 3


def test_slow_answer_then_fast_one_succeeds(hub: FakeHub) -> None:
    """A read timeout is transient: the request is repeated, and the second, fast answer is used."""
    hub.script.append(slow(3.0))
    raw = online(hub, timeout_seconds=1.0).fetch_hours([HOUR])
    assert hub.endpoints() == ["kma_sfctm2.php"] * 2 + ["kma_pm10.php"]
    assert raw == OfflineKMAClient(stations=STATIONS).fetch_hours([HOUR])


def test_always_slow_fails_with_kma_error(hub: FakeHub) -> None:
    """A server that never answers in time must end in a KMAError, not hang or leak a requests exception."""
    hub.default = slow(2.0)
    with pytest.raises(KMAError) as caught:
        online(hub, timeout_seconds=0.3, max_attempts=2).fetch_hours([HOUR])
    assert "2 attempts" in str(caught.value)
    assert "timed out" in str(caught.value).lower()
    assert hub.endpoints() == ["kma_sfctm2.php"] * 2


@pytest.mark.parametrize(
    ("body", "quoted"),
    [
        pytest.param(
            '{"result":{"status":401,"message":"인증키가 유효하지 않습니다"}}'.encode(),
            '{"result":{"status":401,"message":"인증키가 유효하지 않습니다"}}',
            id="json",
        ),
        pytest.param(
            b"<!DOCTYPE html>\n<html><head><title>API Hub - Service Maintenance</title></head></html>\n",
            "<title>API Hub - Service Maintenance</title>",
            id="html",
        ),
        pytest.param(b"", "empty", id="empty"),
    ],
)
def test_http_200_with_an_error_body_raises_quoting_it(hub: FakeHub, body: bytes, quoted: str) -> None:
    """KMA reports bad keys and quotas with HTTP 200; such an answer must fail loudly, never become an empty hour."""
    hub.script.append(status(200, body))
    with pytest.raises(KMAError) as caught:
        online(hub).fetch_hours([HOUR])
    assert quoted in str(caught.value)
    assert "kma_sfctm2.php" in str(caught.value)


@pytest.mark.parametrize("code", [401, 403])
def test_auth_errors_are_not_retried(hub: FakeHub, code: int) -> None:
    """A rejected key stays rejected: retrying only burns quota and time."""
    hub.default = status(code, b'{"result":{"status":401,"message":"unauthorized"}}')
    with pytest.raises(KMAError) as caught:
        online(hub).fetch_hours([HOUR])
    assert str(code) in str(caught.value)
    assert len(hub.requests) == 1


ECHO_JSON = '{{"request":"{path}","result":{{"status":401,"message":"인증키가 유효하지 않습니다"}}}}'
ECHO_HTML = "<html><body><p>Bad request: {path}</p></body></html>"


@pytest.mark.parametrize(
    ("action", "visible"),
    [
        pytest.param(echo(401, ECHO_JSON), "kma_sfctm2.php?tm=202401150900", id="401-json-echoing-url"),
        pytest.param(echo(200, ECHO_JSON), "kma_sfctm2.php?tm=202401150900", id="200-json-echoing-url"),
        pytest.param(echo(200, ECHO_HTML), "Bad request: /api/typ01/url/kma_sfctm2.php", id="200-html-echoing-url"),
        pytest.param(
            status(200, f'{{"error":"key {KEY} is not registered"}}'.encode()), "is not registered", id="200-bare-key"
        ),
    ],
)
def test_key_never_appears_in_errors_that_echo_the_request(hub: FakeHub, action: Action, visible: str) -> None:
    """Error messages end up in run logs and the UI; a body quoting the key must not carry it there.

    The rest of the quote stays (`visible`), so it is redaction, not truncation, that keeps the key out.
    """
    hub.script.append(action)
    with pytest.raises(KMAError) as caught:
        online(hub).fetch_hours([HOUR])
    assert f"authKey={KEY}" in hub.requests[0]
    assert visible in str(caught.value)
    assert KEY not in whole(caught.value)


def test_echoed_url_keeps_the_parameter_name_with_the_key_blanked(hub: FakeHub) -> None:
    """Whoever reads the error can still see that a key was sent, just not which."""
    hub.script.append(echo(401, ECHO_JSON))
    with pytest.raises(KMAError) as caught:
        online(hub).fetch_hours([HOUR])
    assert "authKey=***" in str(caught.value)


def test_key_never_appears_in_connection_errors() -> None:
    """requests puts the full URL, query and key, into connection errors; the client must blank it."""
    client = KMAHubClient(
        auth_key=KEY,
        base_url=f"http://127.0.0.1:{closed_port()}/api/typ01/url",
        backoff_seconds=0.01,
        timeout_seconds=0.5,
        max_attempts=2,
        stations=STATIONS,
    )
    with pytest.raises(KMAError) as caught:
        client.fetch_hours([HOUR])
    assert "2 attempts" in str(caught.value)
    assert "ConnectionError" in str(caught.value)
    assert KEY not in whole(caught.value)


def test_key_never_appears_in_timeout_and_5xx_errors(hub: FakeHub) -> None:
    """Retry paths format other exceptions; none of them may carry the key."""
    hub.default = slow(2.0)
    with pytest.raises(KMAError) as timed_out:
        online(hub, timeout_seconds=0.3, max_attempts=2).fetch_hours([HOUR])
    hub.default = echo(502, ECHO_HTML)
    with pytest.raises(KMAError) as bad_gateway:
        online(hub, max_attempts=2).fetch_hours([HOUR])
    assert KEY not in whole(timed_out.value)
    assert KEY not in whole(bad_gateway.value)


def test_key_never_appears_in_log_records(hub: FakeHub, caplog: pytest.LogCaptureFixture) -> None:
    """urllib3 logs every request URL at DEBUG, and retries log warnings; the key must reach neither."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    hub.script.extend([status(503), slow(3.0), echo(502, ECHO_HTML)])
    online(hub, max_attempts=4, timeout_seconds=1.0).fetch_hours([HOUR])
    hub.script.append(echo(401, ECHO_JSON))
    with pytest.raises(KMAError):
        online(hub).fetch_hours([HOUR])
    with pytest.raises(KMAError):
        online(hub, base_url=f"http://127.0.0.1:{closed_port()}/api/typ01/url", max_attempts=2).fetch_hours([HOUR])

    url_lines = [r for r in caplog.records if r.name.startswith("urllib3") and "kma_sfctm2.php" in r.getMessage()]
    assert url_lines, "urllib3 should have logged the request lines this test is about"
    assert any("retry" in r.getMessage().lower() for r in caplog.records)
    for record in caplog.records:
        assert KEY not in record.getMessage(), record.name
        assert KEY not in str(record.msg) and KEY not in repr(record.args), record.name
    assert KEY not in caplog.text


def test_no_fragment_of_the_key_leaks_when_the_quote_cuts_through_it(hub: FakeHub) -> None:
    """Wherever an echoed key falls in the body, not even a prefix of it may reach the message."""
    fragments = {KEY[i : i + 8] for i in range(len(KEY) - 7)}
    leaks: list[tuple[int, str]] = []
    for filler in range(100, 200):
        body = f'{{"result":{{"status":401,"message":"{"x" * filler}","authKey":"{KEY}"}}}}'
        hub.script.append(status(401, body.encode()))
        with pytest.raises(KMAError) as caught:
            online(hub).fetch_hours([HOUR])
        leaks.extend((filler, f) for f in fragments if f in str(caught.value))
    assert leaks == []


def test_source_is_offline_without_a_key_and_kma_with_one() -> None:
    """Run metadata must tell generated data from KMA's: `source` follows the presence of the key."""
    assert OfflineKMAClient(stations=STATIONS).source == "offline"
    assert KMAHubClient(stations=STATIONS, auth_key=KEY).source == "kma"


def forecaster(hub: FakeHub, **overrides: object) -> KMAClient:
    """A keyed client whose forecast calls go to the local hub."""
    return online(hub, forecast_url=hub.forecast_url, **overrides)


def published_issue(base_hour: int | None = None) -> datetime:
    """An issue that is out now and well within the three days KMA serves; the newest one of `base_hour` if given."""
    issue = latest_issue(kst_now()) - timedelta(hours=3)
    while base_hour is not None and issue.hour != base_hour:
        issue -= timedelta(hours=3)
    return issue


def test_forecast_points_are_the_stations_grid_points() -> None:
    """Seoul (108) and Incheon (112) lie on two different grid points of KMA's 5 km grid."""
    assert OfflineKMAClient(stations=STATIONS).forecast_points() == [(54, 125), (60, 127)]


def test_a_forecast_costs_one_call_per_point_and_matches_offline(hub: FakeHub) -> None:
    """A 05:00 issue fits one 1000-row JSON page: one getVilageFcst call per grid point; online and offline give
    the same bytes."""
    issue = published_issue(5)
    client = forecaster(hub)
    raw = client.fetch_forecast(issue, client.forecast_points())
    assert hub.endpoints() == ["getVilageFcst"] * 2
    assert urlsplit(hub.requests[0]).path == "/api/typ02/openApi/VilageFcstInfoService_2.0/getVilageFcst"
    first = hub.queries("getVilageFcst")[0]
    assert first == {
        "pageNo": "1",
        "numOfRows": "1000",
        "dataType": "JSON",
        "base_date": f"{issue:%Y%m%d}",
        "base_time": f"{issue:%H%M}",
        "nx": "54",
        "ny": "125",
        "authKey": KEY,
    }
    assert raw == OfflineKMAClient(stations=STATIONS).fetch_forecast(issue, [(54, 125), (60, 127)])
    (page,) = raw[(60, 127)]
    seoul = parse_forecast(page)
    assert len(seoul) == 66 + 8 and (seoul["issued_at"] == issue).all()  # hourly to 모레's end, 3-hourly on 글피


def test_an_issue_beyond_one_page_is_fetched_page_by_page_until_its_count(hub: FakeHub) -> None:
    """A 17:00 issue reaches 그글피: 1040 items, so page 2 is asked for and both are kept as received."""
    issue = published_issue(17)
    raw = forecaster(hub).fetch_forecast(issue, [(60, 127)])
    assert [query["pageNo"] for query in hub.queries("getVilageFcst")] == ["1", "2"]
    pages = raw[(60, 127)]
    assert pages == OfflineKMAClient(stations=STATIONS).fetch_forecast(issue, [(60, 127)])[(60, 127)]
    assert [len(read_answer(page).items) for page in pages] == [1000, read_answer(pages[0]).total_count - 1000]
    frame = parse_forecast(pages)
    assert len(frame) == 6 + 72 + 8 and frame["forecast_at"].max() == issue.replace(hour=21) + timedelta(days=4)


def test_more_pages_than_allowed_is_an_error_naming_the_count(hub: FakeHub) -> None:
    with pytest.raises(KMAForecastTooLong, match=r"totalCount 10\d\d, 2 pages.*max_forecast_pages") as caught:
        forecaster(hub, max_forecast_pages=1).fetch_forecast(published_issue(17), [(60, 127)])
    assert "nx=60, ny=127" in str(caught.value) and len(hub.requests) == 1


def test_a_page_short_of_the_count_is_an_error_not_a_loop(hub: FakeHub) -> None:
    """A second page without items (the issue changed under the pages) stops the reading."""
    empty = b'{"response":{"header":{"resultCode":"00","resultMsg":"NORMAL_SERVICE"},"body":{"totalCount":1040}}}'
    hub.script.extend([answer, status(200, empty)])
    with pytest.raises(KMAError, match="page 2 brought 1000 items") as caught:
        forecaster(hub).fetch_forecast(published_issue(17), [(60, 127)])
    assert not isinstance(caught.value, KMAForecastTooLong)  # worth a retry: the issue may have changed
    assert len(hub.requests) == 2


@pytest.mark.parametrize(
    ("code", "message"),
    [("22", "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR"), ("30", "SERVICE_KEY_IS_NOT_REGISTERED_ERROR")],
)
def test_a_gateway_error_keeps_its_code_and_message(hub: FakeHub, code: str, message: str) -> None:
    body = (
        f"<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg><returnAuthMsg>{message}"
        f"</returnAuthMsg><returnReasonCode>{code}</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>"
    ).encode()
    hub.script.append(status(200, body))
    with pytest.raises(KMAError) as caught:
        forecaster(hub).fetch_forecast(published_issue(), [(60, 127)])
    assert caught.value.code == code and message in str(caught.value) and KEY not in str(caught.value)
    assert not isinstance(caught.value, KMAForecastUnpublished)


def test_an_unpublished_issue_raises_unpublished_naming_issue_and_point(hub: FakeHub) -> None:
    """NO_DATA is no transient failure to retry at once, but the caller may ask again later."""
    issue = latest_issue(kst_now()) + timedelta(hours=3)
    with pytest.raises(KMAForecastUnpublished) as caught:
        forecaster(hub).fetch_forecast(issue, [(60, 127)])
    assert caught.value.code == "03"
    assert f"{issue:%Y-%m-%d %H:%M}" in str(caught.value) and "nx=60, ny=127" in str(caught.value)
    assert len(hub.requests) == 1


def test_an_issue_older_than_kma_serves_is_a_plain_kma_error(hub: FakeHub) -> None:
    """Code 10 ("only the last three days"): waiting will not help, so it is not `KMAForecastUnpublished`."""
    with pytest.raises(KMAError) as caught:
        forecaster(hub).fetch_forecast(published_issue() - timedelta(days=4), [(60, 127)])
    assert not isinstance(caught.value, KMAForecastUnpublished)
    assert caught.value.code == "10" and "최근 3일" in str(caught.value)


def test_a_forecast_503_then_success_is_retried(hub: FakeHub) -> None:
    hub.script.append(status(503))
    issue = published_issue(5)
    raw = forecaster(hub).fetch_forecast(issue, [(60, 127)])
    assert hub.endpoints() == ["getVilageFcst"] * 2
    assert raw == OfflineKMAClient(stations=STATIONS).fetch_forecast(issue, [(60, 127)])


@pytest.mark.parametrize(
    ("action", "visible"),
    [
        pytest.param(echo(200, ECHO_JSON), "getVilageFcst?pageNo=1", id="200-json-echoing-url"),
        pytest.param(echo(401, ECHO_HTML), "Bad request: /api/typ02/openApi", id="401-html-echoing-url"),
        pytest.param(
            echo(
                200,
                "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg><returnAuthMsg>"
                "SERVICE_KEY_IS_NOT_REGISTERED_ERROR {path}</returnAuthMsg><returnReasonCode>30</returnReasonCode>"
                "</cmmMsgHeader></OpenAPI_ServiceResponse>",
            ),
            "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
            id="200-xml-echoing-url",
        ),
    ],
)
def test_key_never_appears_in_forecast_errors(hub: FakeHub, action: Action, visible: str) -> None:
    """A forecast error answer that quotes the request is quoted with the key blanked."""
    hub.script.append(action)
    with pytest.raises(KMAError) as caught:
        forecaster(hub).fetch_forecast(published_issue(), [(60, 127)])
    assert f"authKey={KEY}" in hub.requests[0]
    assert visible in str(caught.value)
    assert KEY not in whole(caught.value)
