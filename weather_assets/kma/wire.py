"""KMA API Hub text format, in one place: recognising, splitting, regrouping, parsing and writing it.

ASOS answers (``kma_sfctm2.php``/``kma_sfctm3.php``) are blocks between ``#START7777`` and ``#7777END``:
``#`` lines are headers and data lines hold 46 fields separated by runs of spaces (a field may be ``-``,
so lines are split, never sliced). PM10 answers (``kma_pm10.php``) hold comma-separated
``TM, STN, PM10, FLAG, MQC, =`` lines, one reading every 5 minutes, and may be EUC-KR. Times are KST.

What each field means and how it writes a missing value is `fields`'s; what RN_DAY and IR make of an hour's
precipitation is `features.precipitation`'s. A line with a token `fields.value` refuses is malformed.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from weather_assets.kma import fields

START = b"#START7777"
END = b"#7777END"
TM_FORMAT = "%Y%m%d%H%M"

_TM = re.compile(rb"^\d{12}$")


class KMAFormatError(ValueError):
    """A body that is not KMA's text format, or a block with no usable data line."""


@dataclass(frozen=True)
class Block:
    """One answer split into header lines, data lines (bytes as received, no line ends) and unreadable lines.

    `malformed` holds (1-based line number in the answer, line) of data lines without a readable time or
    station: they cannot be filed under an hour, so they are reported instead of stored. `keys` holds the
    (hour, station) of each data line.
    """

    headers: tuple[bytes, ...]
    lines: tuple[bytes, ...]
    malformed: tuple[tuple[int, bytes], ...] = ()
    keys: tuple[tuple[datetime, int], ...] = ()


@dataclass
class Parsed:
    """Rows parsed from one body, and the data lines skipped as malformed (1-based line number, reason)."""

    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]
    skipped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (build one frame from many bodies' `rows` instead, when parsing many)."""
        return pd.DataFrame(self.rows, columns=list(self.columns))


def tm(moment: datetime) -> str:
    """KMA's ``YYYYMMDDHHMI`` for a naive KST datetime."""
    return moment.strftime(TM_FORMAT)


def decode(body: bytes) -> str:
    """Text of a body: UTF-8 when it is, else EUC-KR (CP949, its superset), which KMA still serves."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp949", errors="replace")


def _body_lines(body: bytes) -> list[bytes]:
    return [line.rstrip(b"\r") for line in body.removeprefix(b"\xef\xbb\xbf").split(b"\n")]


def _first_token(line: bytes) -> bytes:
    return line.replace(b",", b" ").split(None, 1)[0] if line.strip() else b""


def check_block(body: bytes) -> None:
    """Raise `KMAFormatError` quoting the body's start unless it is a KMA text block.

    KMA answers errors (bad key, quota, maintenance) with HTTP 200 and a JSON or HTML body, so the status
    code proves nothing: the body must open with ``#START7777`` (or, for PM10, with header or data lines)
    and, when it opens with the marker, close with ``#7777END``, which a truncated answer lacks.
    """
    text = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise KMAFormatError("KMA answered with an empty body instead of a #START7777 text block")
    if text.startswith(START):
        if END not in text:
            raise KMAFormatError(
                f"KMA answer has #START7777 but no #7777END (truncated?); it starts with: {snippet(body)!r}"
            )
        return
    first = _body_lines(text)[0]
    if not (first.startswith(b"#") or _TM.match(_first_token(first))):
        raise KMAFormatError(f"KMA answered with something that is not its text format: {snippet(body)!r}")


def snippet(body: bytes, limit: int = 160) -> str:
    """The start of a body, decoded and on one line, for error messages.

    Only the first bytes are decoded, incrementally, so a cut inside a multi-byte character drops that
    character instead of garbling the rest (UTF-8 first, then EUC-KR/CP949).
    """
    prefix = body[: limit * 4]
    for encoding in ("utf-8", "cp949"):
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(prefix)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = prefix.decode("latin-1")
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit or len(body) > len(prefix) else "")


def split_block(body: bytes) -> Block:
    """Header and data lines of a checked body; the markers and blank lines are dropped."""
    check_block(body)
    headers: list[bytes] = []
    lines: list[bytes] = []
    malformed: list[tuple[int, bytes]] = []
    keys: list[tuple[datetime, int]] = []
    for number, line in enumerate(_body_lines(body), start=1):
        stripped = line.strip()
        if not stripped or stripped in (START, END):
            continue
        if stripped.startswith(b"#"):
            headers.append(line)
            continue
        hour, station = line_hour(line), line_station(line)
        if hour is None or station is None:
            malformed.append((number, line))
        else:
            lines.append(line)
            keys.append((hour, station))
    return Block(tuple(headers), tuple(lines), tuple(malformed), tuple(keys))


def parse_tm(token: str | bytes) -> datetime:
    """A naive KST datetime from KMA's ``YYYYMMDDHHMI``; ValueError when it is not one.

    Int slices, not strptime: this runs for every line of a month-long backfill.
    """
    if len(token) != 12 or not (token.isascii() and token.isdigit()):
        raise ValueError(f"time {token!r} is not YYYYMMDDHHMI")
    return datetime(int(token[:4]), int(token[4:6]), int(token[6:8]), int(token[8:10]), int(token[10:12]))


def line_hour(line: bytes) -> datetime | None:
    """The KST observation hour a data line belongs to, or None for a line without a valid TM.

    An ASOS line is stamped on the hour. A PM10 reading stamped HH:MM belongs to the hour that ends at or
    after it: 08:05 ... 09:00 make the 09:00 hour, as KMA's own hourly values cover the hour before.
    """
    try:
        moment = parse_tm(_first_token(line))
    except ValueError:
        return None
    return _hour_ending(moment)


def _hour_ending(moment: datetime) -> datetime:
    hour = moment.replace(minute=0)
    return hour + timedelta(hours=1) if moment.minute else hour


def line_station(line: bytes) -> int | None:
    """The station id (second field) of a data line, or None."""
    parts = line.replace(b",", b" ").split()
    try:
        return station_number(parts[1])
    except (IndexError, ValueError):
        return None


def station_number(token: str | bytes) -> int:
    """A station id from its token: ASCII digits only (int() also takes `1_0` and non-ASCII digits)."""
    if not (token.isascii() and token.isdigit()):
        raise ValueError(f"station {token!r} is not a number")
    return int(token)


def regroup_by_hour(
    blocks: Iterable[Block], hours: Sequence[datetime], stations: Iterable[int]
) -> dict[datetime, bytes]:
    """One canonical block per requested hour, from any number of answers (one hour, or ranges per station).

    Each hour's block keeps the first answer's header lines and the data lines of that hour and of the given
    stations, byte for byte as received, ordered by (time, station) and, for a station KMA reported twice, in
    the answer's order. A one-hour call and a range call thus leave the same object for the same hour. Lines
    outside the hours or stations are not kept. A line KMA repeats byte for byte is kept twice, so the duplicate
    count (`duplicate_lines`, the materialization's `duplicate_station_lines`) sees it.
    """
    wanted = set(stations)
    by_hour: dict[datetime, list[tuple[bytes, int, bytes]]] = {hour: [] for hour in hours}
    headers: tuple[bytes, ...] = ()
    for block in blocks:
        headers = headers or block.headers
        for line, (hour, station) in zip(block.lines, block.keys, strict=True):
            if hour in by_hour and station in wanted:
                by_hour[hour].append((_first_token(line), station, line))
    return {
        hour: b"\n".join([START, *headers, *(line for *_, line in sorted(rows, key=_time_and_station)), END]) + b"\n"
        for hour, rows in by_hour.items()
    }


def _time_and_station(row: tuple[bytes, int, bytes]) -> tuple[bytes, int]:
    return row[0], row[1]


def duplicate_lines(body: bytes) -> int:
    """How many data lines of a body repeat a (time, station) of an earlier line: KMA reporting a station twice."""
    keys = split_block(body).keys
    return len(keys) - len(set(keys))


def _data_lines(body: bytes) -> Iterator[tuple[int, str]]:
    """The data lines of a checked block, decoded and stripped, with their 1-based line numbers in the body."""
    check_block(body)
    for number, raw in enumerate(_body_lines(body), start=1):
        line = decode(raw).strip()
        if line and not line.startswith("#"):
            yield number, line


def parse_asos(body: bytes) -> Parsed:
    """Rows of an ASOS block: ``station_id, observed_at`` and the columns of `ASOS_COLUMNS`.

    A data line that cannot be read (too few fields, a bad TM or station, a non-number) is skipped and
    reported with its 1-based line number in the body; a body that yields no row at all raises.
    """
    rows: list[tuple[object, ...]] = []
    skipped: list[tuple[int, str]] = []
    for number, line in _data_lines(body):
        parts = line.split()
        try:
            if len(parts) < fields.MIN_ASOS_FIELDS:
                raise ValueError(f"{len(parts)} fields, at least {fields.MIN_ASOS_FIELDS} needed")
            columns = fields.ASOS_COLUMNS.items()
            values = {column: fields.value(parts[fields.ASOS_INDEX[name]], name) for name, column in columns}
            rows.append((station_number(parts[1]), parse_tm(parts[0]), *values.values()))
        except ValueError as error:
            skipped.append((number, f"{error}: {line[:80]!r}"))
    if not rows:
        raise KMAFormatError(_no_rows("ASOS", skipped, body))
    return Parsed(fields.ASOS_ROW, rows, skipped)


def parse_pm10(body: bytes) -> Parsed:
    """Readings of a PM10 block: ``station_id, measured_at, observed_at, pm10``.

    ``observed_at`` is the hour the reading counts in (see `line_hour`); sentinels and negative values
    are NaN. FLAG and MQC stay in the raw object for replay: KMA's help text does not define their codes,
    so they do not filter readings. An empty block (no dust sensor at the station) gives an empty frame.
    """
    rows: list[tuple[object, ...]] = []
    skipped: list[tuple[int, str]] = []
    for number, line in _data_lines(body):
        parts = [part.strip() for part in line.split(",")]
        try:
            if len(parts) < 3:
                raise ValueError(f"{len(parts)} fields, at least 3 needed")
            moment = parse_tm(parts[0])
            rows.append((station_number(parts[1]), moment, _hour_ending(moment), fields.value(parts[2], "PM10")))
        except ValueError as error:
            skipped.append((number, f"{error}: {line[:80]!r}"))
    if skipped and not rows:
        raise KMAFormatError(_no_rows("PM10", skipped, body))
    return Parsed(fields.PM10_ROW, rows, skipped)


def hourly_pm10(readings: pd.DataFrame) -> pd.DataFrame:
    """Hourly PM10 per station (``observed_at, station_id, pm10``): the mean of the hour's valid readings.

    The hour of 09:00 averages the readings of 08:05 to 09:00, the window of KMA's own hourly values. A
    station whose readings are all missing gets NaN, which the model tolerates; a station without a dust
    sensor has no row at all.
    """
    return readings.groupby(["observed_at", "station_id"], as_index=False)["pm10"].mean()


def _no_rows(kind: str, skipped: list[tuple[int, str]], body: bytes) -> str:
    where = "; ".join(f"line {n}: {reason}" for n, reason in skipped[:3]) or "no data lines"
    return f"{kind} block has no readable data line ({where}); it starts with: {snippet(body)!r}"


def _field(value: float | int | None, fmt: str, missing: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, fmt)


def render_asos(rows: Iterable[dict[str, float | int | datetime | None]]) -> bytes:
    """An ASOS block as ``kma_sfctm2.php?help=0`` writes it, for the rows' fields (others are -9 sentinels).

    Missing readings are written with KMA's missing code of each field (-99.0 for TA and TD, -9.0 for fields that
    cannot be negative, RN, RN_JUN and RN_DAY included, where KMA writes -9.0 for "nothing fell"), IR as given.
    """
    out = [
        START.decode(),
        "# YYMMDDHHMI STN  WD   WS GST  GST  GST     PA     PS PT    PR    TA    TD    HM    PV     RN  RN  RN  RN"
        "     SD     SD     SD WC WP WW                  CA  CA CH CT  CT  CT  CT    VS  SS    SI ST    TS    TE"
        "    TE    TE    TE  ST  WH BF IR IX",
        "#        KST  ID  16  m/s  WD   WS   TM    hPa    hPa  -   hPa     C     C     %   hPa     mm DAY JUN INT"
        "    HR3    DAY    TOT -- -- --                 TOT MID MIN --  TOP MID LOW    --  --    --  --     C"
        "   005    01    02    03  --   m  -- -- --",
    ]
    for row in rows:
        out.append(
            f"{tm(row['TM'])} {row['STN']:>3} {_field(row.get('WD'), '>3d', ' -9')}"
            f" {_field(row.get('WS'), '>4.1f', '-9.0')}"
            f"  -9 -9.0   -9 {_field(row.get('PA'), '>6.1f', '  -9.0')} {_field(row.get('PS'), '>6.1f', '  -9.0')}"
            f" -9  -9.0 {_field(row.get('TA'), '>5.1f', '-99.0')} {_field(row.get('TD'), '>5.1f', '-99.0')}"
            f" {_field(row.get('HM'), '>5.1f', ' -9.0')} {_field(row.get('PV'), '>5.1f', ' -9.0')}"
            f" {_field(row.get('RN'), '>6.1f', '  -9.0')} {_field(row.get('RN_DAY'), '>6.1f', '  -9.0')}"
            f" {_field(row.get('RN_JUN'), '>6.1f', '  -9.0')} -9.0   -9.0   -9.0   -9.0 -9 -9 -"
            f"  -9  -9 -9 -  -9  -9  -9  -9  -9 -9.0 -9 -99.0 -99.0 -99.0 -99.0 -99.0 -9.0 -9.0 -9"
            f" {_field(row.get('IR'), 'd', '-')} -9"
        )
    out.append(END.decode())
    return ("\n".join(out) + "\n").encode()


def render_pm10(readings: Iterable[tuple[datetime, int, float | None]]) -> bytes:
    """A PM10 block as ``kma_pm10.php`` writes it: EUC-KR, ``TM,STN,PM10,FLAG,MQC,=`` lines."""
    out = [START.decode(), "# 황사 PM10 관측자료", "# TM, STN, PM10, FLAG, MQC"]
    for moment, station, value in readings:
        out.append(f"{tm(moment)},{station},{_field(value, '.0f', '-99')},0,0,=")
    out.append(END.decode())
    return ("\n".join(out) + "\n").encode("cp949")
