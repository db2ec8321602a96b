"""The KMA client resource: hours of ASOS and PM10 text, and short-term forecast issues.

`KMAClient` is the interface the assets use and the checks every answer goes through; `KMAHubClient` asks KMA's
API Hub. The offline generator's client is `offline_kma_client.OfflineKMAClient`, which this module does not import:
`definitions.kma_client_from_env` chooses one of the two, once.
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg
import requests
from pydantic import Field

from weather_assets.domain.stations import DEFAULT_STATIONS, all_stations, parse_station_ids
from weather_assets.environment import KMA_POLL_SECONDS, KMA_WAIT_MINUTES, Env, within
from weather_assets.kma import forecast, wire
from weather_assets.kma.grid import to_grid

DEFAULT_BASE_URL = "https://apihub.kma.go.kr/api/typ01/url"
# VilageFcstInfoService_2.0 on the API Hub (typ02: KMA's public-data services, keyed by authKey like typ01)
DEFAULT_FORECAST_URL = "https://apihub.kma.go.kr/api/typ02/openApi/VilageFcstInfoService_2.0/getVilageFcst"
_KEY_IN_TEXT = re.compile(r"(authKey=)[^&\s\"'<>]+", re.IGNORECASE)
_KEY_IN_BYTES = re.compile(rb"(authKey=)[^&\s\"'<>]+", re.IGNORECASE)
_PM10_LEAD = timedelta(minutes=55)  # the 09:00 hour's readings run from 08:05 to 09:00

Ask = Callable[[str, dict[str, str]], bytes]  # an endpoint's name and query to its answer's body


class KMAError(RuntimeError):
    """KMA could not be reached, or answered with something other than what was asked for.

    `code` is KMA's result code when the answer carried one (forecast calls), else None.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class KMAForecastUnpublished(KMAError):
    """KMA answered NO_DATA (03) for a forecast issue: not published yet, so asking again later may succeed.

    Any other result code (10 for an issue older than KMA serves, 22 for a spent quota, 30 for an unknown key)
    is a plain `KMAError` with that `code`: the caller decides what waiting can fix.
    """


class KMAForecastTooLong(KMAError):
    """An issue at one grid point announces more pages than `max_forecast_pages`: asking again cannot help."""


class _RedactKeyFilter(logging.Filter):
    """Blanks ``authKey=...`` in urllib3's debug lines, which print every request's URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _KEY_IN_TEXT.sub(r"\1***", str(record.msg))
        record.args = tuple(_KEY_IN_TEXT.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args or ())
        return True


_urllib3_log = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _RedactKeyFilter) for f in _urllib3_log.filters):
    _urllib3_log.addFilter(_RedactKeyFilter())


@dataclass(frozen=True)
class RawHours:
    """The canonical raw objects of some hours (see `wire.regroup_by_hour`) and how they were got."""

    asos: dict[datetime, bytes]
    pm10: dict[datetime, bytes]
    calls: int
    malformed: list[tuple[int, bytes]]
    reported: dict[datetime, set[int]]  # the configured stations with an ASOS line, per hour

    def unpublished(self) -> list[datetime]:
        """Hours without a single ASOS data line: KMA has not published them (yet)."""
        return [hour for hour, stations in self.reported.items() if not stations]

    def updated(self, newer: RawHours) -> RawHours:
        """These hours with `newer`'s answers for the hours it holds (a second ask for the unpublished ones)."""
        return RawHours(
            asos={**self.asos, **newer.asos},
            pm10={**self.pm10, **newer.pm10},
            calls=self.calls + newer.calls,
            malformed=self.malformed + newer.malformed,
            reported={**self.reported, **newer.reported},
        )


class KMAClient(dg.ConfigurableResource, ABC):
    """KMA's observations (``kma_sfctm2``, ``kma_sfctm3``, ``kma_pm10``) and short-term forecast (``getVilageFcst``):
    the calls the assets make, and the checks every answer goes through.

    `KMAHubClient` asks the API Hub and `OfflineKMAClient` the offline generator; both speak the same bytes, so
    everything downstream runs the same code, and only `source` tells them apart.
    """

    stations: str = Field(default=DEFAULT_STATIONS, description="Comma-separated ASOS ids (WEATHER_STATIONS).")
    max_range_days: int = Field(default=31, description="Longest span of one range call (KMA allows 31 days).")
    max_forecast_pages: int = Field(
        default=5, description="Most getVilageFcst pages (1000 rows each) read for one issue and grid point."
    )
    publication_wait_minutes: int = Field(
        default=KMA_WAIT_MINUTES,
        description="How long after an hour's observation time KMA may still publish it; a run waits until then.",
    )
    publication_poll_seconds: int = Field(
        default=KMA_POLL_SECONDS,
        description="While waiting for KMA to publish an hour, how often to ask again (seconds).",
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Refuses a wait or poll out of its range when a run starts, the first moment Dagster has resolved them."""
        within(Env.KMA_POLL_SECONDS, self.publication_poll_seconds)
        within(Env.KMA_WAIT_MINUTES, self.publication_wait_minutes)

    @property
    @abstractmethod
    def source(self) -> str:
        """Where the answers come from, for run metadata: ``kma`` or ``offline``."""

    @abstractmethod
    def _connection(self) -> AbstractContextManager[Ask]:
        """A way to ask the endpoints for the span of one fetch."""

    def still_due(self, hours: Sequence[datetime], now: datetime) -> bool:
        """Whether KMA may still publish every one of these (naive KST) hours at `now`, so waiting makes sense."""
        return bool(hours) and now < min(hours) + timedelta(minutes=self.publication_wait_minutes)

    def station_ids(self) -> list[int]:
        """The configured stations, validated against the shipped station table."""
        return parse_station_ids(self.stations)

    def fetch_hours(self, hours: Sequence[datetime]) -> RawHours:
        """Raw ASOS and PM10 objects for consecutive KST hours, with as few calls as the endpoints allow.

        A few hours cost one ``kma_sfctm2`` call each (all stations at once) and one all-station PM10 call.
        Longer spans cost one ``kma_sfctm3`` and one ``kma_pm10`` call per station and 31-day chunk, which
        is fewer calls and far fewer bytes than every station's 5-minute dust readings.
        """
        hours = sorted(hours)
        stations = self.station_ids()
        tm = wire.tm
        with self._connection() as ask:
            get = lambda endpoint, **params: self._checked(endpoint, ask(endpoint, params), params)  # noqa: E731
            if len(hours) <= len(stations):
                asos = [get("kma_sfctm2.php", tm=tm(hour), stn="0", help="0") for hour in hours]
                pm10 = [
                    get("kma_pm10.php", tm1=tm(first - _PM10_LEAD), tm2=tm(last), stn="0")
                    for first, last in self._spans(hours)
                ]
            else:
                spans = [(first, last, str(stn)) for stn in stations for first, last in self._spans(hours)]
                asos = [get("kma_sfctm3.php", tm1=tm(a), tm2=tm(b), stn=stn, help="0") for a, b, stn in spans]
                pm10 = [get("kma_pm10.php", tm1=tm(a - _PM10_LEAD), tm2=tm(b), stn=stn) for a, b, stn in spans]
        asos_blocks = [wire.split_block(body) for body in asos]
        pm10_blocks = [wire.split_block(body) for body in pm10]
        reported: dict[datetime, set[int]] = {hour: set() for hour in hours}
        for block in asos_blocks:
            for hour, station in block.keys:
                if hour in reported and station in stations:
                    reported[hour].add(station)
        return RawHours(
            asos=wire.regroup_by_hour(asos_blocks, hours, stations),
            pm10=wire.regroup_by_hour(pm10_blocks, hours, stations),
            calls=len(asos) + len(pm10),
            malformed=[line for block in asos_blocks + pm10_blocks for line in block.malformed],
            reported=reported,
        )

    def forecast_points(self) -> list[tuple[int, int]]:
        """The distinct forecast grid points (nx, ny) of the configured stations, sorted."""
        known = all_stations()
        return sorted({to_grid(known[s].latitude, known[s].longitude) for s in self.station_ids()})

    def fetch_forecast(
        self, issued_at: datetime, points: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], list[bytes]]:
        """KMA's raw ``getVilageFcst`` JSON of one issue (naive KST base time) per grid point: its pages as received.

        Page 1 asks for 1000 rows; while the items got fall short of its ``totalCount`` the next page is asked
        for, up to `max_forecast_pages` (since 2024-11-28 an issue reaching five days can exceed 1000 rows).
        Transient failures are retried as for the hours; an error answer raises `KMAError` naming the issue and
        the point (`KMAForecastUnpublished` for NO_DATA), and so does a count the pages do not reach.
        """
        with self._connection() as ask:
            return {point: self._forecast_pages(ask, issued_at, point) for point in points}

    def _forecast_pages(self, ask: Ask, issued_at: datetime, point: tuple[int, int]) -> list[bytes]:
        """Every page of one issue at one point, fetched in order until the items reach ``totalCount``."""
        query = {"numOfRows": str(forecast.PAGE_ROWS), "dataType": "JSON"}
        query |= {"base_date": f"{issued_at:%Y%m%d}", "base_time": f"{issued_at:%H%M}"}
        query |= {"nx": str(point[0]), "ny": str(point[1])}
        pages: list[bytes] = []
        got, total = 0, 1
        while got < total:
            body = ask(forecast.ENDPOINT, {"pageNo": str(len(pages) + 1), **query})
            page = self._checked_forecast(body, issued_at, point)
            total = page.total_count if not pages else total  # the count page 1 announced
            pages.append(body)
            got += len(page.items)
            needed = -(-total // forecast.PAGE_ROWS)
            where = f"issue {issued_at:%Y-%m-%d %H:%M} KST, grid point nx={point[0]}, ny={point[1]}"
            if needed > self.max_forecast_pages:
                raise KMAForecastTooLong(
                    f"getVilageFcst ({where}) announced totalCount {total}, {needed} pages of "
                    f"{forecast.PAGE_ROWS} rows, and at most {self.max_forecast_pages} pages are read "
                    "(max_forecast_pages)"
                )
            if got < total and not page.items:  # the issue may have changed under the pages: worth a retry
                raise KMAError(
                    f"getVilageFcst ({where}) announced totalCount {total}, and page {len(pages)} brought {got} "
                    "items in all"
                )
        return pages

    def _checked_forecast(self, body: bytes, issued_at: datetime, point: tuple[int, int]) -> forecast.Page:
        """The page of a forecast body; the check reads a scrubbed copy, so its message quotes no key."""
        try:
            page = forecast.read_answer(self._scrub(body), issued_at, point)
        except forecast.KMAForecastError as error:
            kind = KMAForecastUnpublished if isinstance(error, forecast.KMAForecastNoData) else KMAError
            problem = kind(str(error), error.code)
        else:
            return page
        raise problem  # raised outside the except block: no chained exception carries the body

    def _spans(self, hours: Sequence[datetime]) -> Iterator[tuple[datetime, datetime]]:
        """(first, last) hour of consecutive chunks no longer than `max_range_days`."""
        per_call = self.max_range_days * 24
        for start in range(0, len(hours), per_call):
            chunk = hours[start : start + per_call]
            yield chunk[0], chunk[-1]

    def _checked(self, endpoint: str, body: bytes, params: dict[str, str]) -> bytes:
        """The body, if it is KMA's text format; the check reads a scrubbed copy, so its message quotes no key."""
        try:
            wire.check_block(self._scrub(body))
        except wire.KMAFormatError as error:
            message = f"{endpoint} ({self._describe(params)}): {error}"
        else:
            return body
        raise KMAError(message)  # raised outside the except block: no chained exception carries the body

    def _describe(self, params: dict[str, str]) -> str:
        return ", ".join(f"{k}={v}" for k, v in params.items() if k.lower() != "authkey")

    def _scrub(self, body: bytes) -> bytes:
        """The body with any ``authKey=...`` blanked, before any part of it is quoted."""
        return _KEY_IN_BYTES.sub(rb"\1***", body)


class KMAHubClient(KMAClient):
    """KMA's API Hub, keyed by `auth_key`.

    Transient failures (timeouts, connection errors, HTTP 5xx and 429) are retried with exponential backoff. The
    key never leaves this class: URLs and bodies are redacted before they reach a log line or an error.
    """

    auth_key: str = Field(description="API Hub key (KMA_AUTH_KEY).")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API Hub base URL (KMA_API_URL).")
    forecast_url: str = Field(
        default=DEFAULT_FORECAST_URL, description="getVilageFcst URL on the API Hub (KMA_FORECAST_URL)."
    )
    timeout_seconds: float = Field(default=30.0, description="Connect and read timeout of one request.")
    max_attempts: int = Field(default=4, description="Attempts per request before giving up.")
    backoff_seconds: float = Field(default=2.0, description="First retry delay; doubles on each attempt.")

    @property
    def source(self) -> str:
        return "kma"

    @contextmanager
    def _connection(self) -> Iterator[Ask]:
        """One HTTP session for the fetch's calls."""
        with requests.Session() as session:
            yield lambda endpoint, params: self._fetch(session, endpoint, params)

    def _url(self, endpoint: str) -> str:
        return self.forecast_url if endpoint == forecast.ENDPOINT else f"{self.base_url.rstrip('/')}/{endpoint}"

    def _fetch(self, session: requests.Session, endpoint: str, params: dict[str, str]) -> bytes:
        """One answer's body; retries transient failures, never lets the key into a message."""
        log = dg.get_dagster_logger()
        url = self._url(endpoint)
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = session.get(url, params={**params, "authKey": self.auth_key}, timeout=self.timeout_seconds)
            except (requests.Timeout, requests.ConnectionError) as error:
                problem = f"{type(error).__name__}: {self._redact(str(error))}"
            else:
                code = response.status_code
                if code < 500 and code != 429:  # 5xx and "too many requests" pass; other errors do not
                    if code >= 400:
                        raise KMAError(
                            f"{endpoint} ({self._describe(params)}) answered HTTP {code}: "
                            f"{wire.snippet(self._scrub(response.content))!r}"
                        )
                    return response.content
                problem = f"HTTP {code}"
            if attempt < self.max_attempts:
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                log.warning(f"{endpoint} attempt {attempt}/{self.max_attempts} failed ({problem}); retry in {delay:g}s")
                time.sleep(delay)
        raise KMAError(f"{endpoint} ({self._describe(params)}) failed after {self.max_attempts} attempts: {problem}")

    def _scrub(self, body: bytes) -> bytes:
        """The body with the key blanked, before any part of it is quoted (a cut could split the key)."""
        body = super()._scrub(body)
        return body.replace(self.auth_key.encode(), b"***") if self.auth_key else body

    def _redact(self, text: str) -> str:
        text = _KEY_IN_TEXT.sub(r"\1***", text)
        return text.replace(self.auth_key, "***") if self.auth_key else text
