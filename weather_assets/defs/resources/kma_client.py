"""The KMA API Hub client resource: one hour or a range of hours of ASOS and PM10 text, online or offline."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg
import requests
from pydantic import Field

from weather_assets.domain import kma_format
from weather_assets.domain.offline_kma import OfflineKMA
from weather_assets.domain.stations import DEFAULT_STATIONS, parse_station_ids

DEFAULT_BASE_URL = "https://apihub.kma.go.kr/api/typ01/url"
_KEY_IN_TEXT = re.compile(r"(authKey=)[^&\s\"'<>]+", re.IGNORECASE)
_KEY_IN_BYTES = re.compile(rb"(authKey=)[^&\s\"'<>]+", re.IGNORECASE)
_PM10_LEAD = timedelta(minutes=55)  # the 09:00 hour's readings run from 08:05 to 09:00


class KMAError(RuntimeError):
    """KMA could not be reached, or answered with something other than its text format."""


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
    """The canonical raw objects of some hours (see `kma_format.regroup_by_hour`) and how they were got."""

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


class KMAClient(dg.ConfigurableResource):
    """KMA API Hub (``kma_sfctm2``, ``kma_sfctm3``, ``kma_pm10``), or the offline generator when no key is set.

    Both speak the same bytes, so everything downstream runs the same code; only `source` tells them apart.
    Transient failures (timeouts, connection errors, HTTP 5xx and 429) are retried with exponential backoff. The
    key never leaves this class: URLs and bodies are redacted before they reach a log line or an error.
    """

    auth_key: str | None = Field(default=None, description="API Hub key (KMA_AUTH_KEY); unset: offline generator.")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API Hub base URL (KMA_API_URL).")
    stations: str = Field(default=DEFAULT_STATIONS, description="Comma-separated ASOS ids (WEATHER_STATIONS).")
    timeout_seconds: float = Field(default=30.0, description="Connect and read timeout of one request.")
    max_attempts: int = Field(default=4, description="Attempts per request before giving up.")
    backoff_seconds: float = Field(default=2.0, description="First retry delay; doubles on each attempt.")
    max_range_days: int = Field(default=31, description="Longest span of one range call (KMA allows 31 days).")
    publication_wait_minutes: int = Field(
        default=50,
        description="How long after an hour's observation time KMA may still publish it; a run waits until then.",
    )
    publication_poll_seconds: int = Field(
        default=30, description="While waiting for KMA to publish an hour, how often to ask again (seconds)."
    )

    @property
    def source(self) -> str:
        """``kma`` for the API Hub, ``offline`` for the generator."""
        return "kma" if self.auth_key else "offline"

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
        tm = kma_format.tm
        with requests.Session() as session:
            get = lambda endpoint, **params: self._get(session, endpoint, params)  # noqa: E731
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
        asos_blocks = [kma_format.split_block(body) for body in asos]
        pm10_blocks = [kma_format.split_block(body) for body in pm10]
        reported: dict[datetime, set[int]] = {hour: set() for hour in hours}
        for block in asos_blocks:
            for hour, station in block.keys:
                if hour in reported and station in stations:
                    reported[hour].add(station)
        return RawHours(
            asos=kma_format.regroup_by_hour(asos_blocks, hours, stations),
            pm10=kma_format.regroup_by_hour(pm10_blocks, hours, stations),
            calls=len(asos) + len(pm10),
            malformed=[line for block in asos_blocks + pm10_blocks for line in block.malformed],
            reported=reported,
        )

    def _spans(self, hours: Sequence[datetime]) -> Iterator[tuple[datetime, datetime]]:
        """(first, last) hour of consecutive chunks no longer than `max_range_days`."""
        per_call = self.max_range_days * 24
        for start in range(0, len(hours), per_call):
            chunk = hours[start : start + per_call]
            yield chunk[0], chunk[-1]

    def _get(self, session: requests.Session, endpoint: str, params: dict[str, str]) -> bytes:
        """One checked body; retries transient failures, never lets the key into a message."""
        if not self.auth_key:
            return self._checked(endpoint, OfflineKMA().respond(endpoint, params))
        url = f"{self.base_url.rstrip('/')}/{endpoint}"
        log = dg.get_dagster_logger()
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
                            f"{kma_format.snippet(self._scrub(response.content))!r}"
                        )
                    return self._checked(endpoint, response.content, params)
                problem = f"HTTP {code}"
            if attempt < self.max_attempts:
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                log.warning(f"{endpoint} attempt {attempt}/{self.max_attempts} failed ({problem}); retry in {delay:g}s")
                time.sleep(delay)
        raise KMAError(f"{endpoint} ({self._describe(params)}) failed after {self.max_attempts} attempts: {problem}")

    def _checked(self, endpoint: str, body: bytes, params: dict[str, str] | None = None) -> bytes:
        """The body, if it is KMA's text format; the check reads a scrubbed copy, so its message quotes no key."""
        try:
            kma_format.check_block(self._scrub(body))
        except kma_format.KMAFormatError as error:
            message = f"{endpoint} ({self._describe(params or {})}): {error}"
        else:
            return body
        raise KMAError(message)  # raised outside the except block: no chained exception carries the body

    def _describe(self, params: dict[str, str]) -> str:
        return ", ".join(f"{k}={v}" for k, v in params.items() if k.lower() != "authkey")

    def _scrub(self, body: bytes) -> bytes:
        """The body with the key blanked, before any part of it is quoted (a cut could split the key)."""
        body = _KEY_IN_BYTES.sub(rb"\1***", body)
        return body.replace(self.auth_key.encode(), b"***") if self.auth_key else body

    def _redact(self, text: str) -> str:
        text = _KEY_IN_TEXT.sub(r"\1***", text)
        return text.replace(self.auth_key, "***") if self.auth_key else text
