"""The offline observations: ASOS and PM10 answers in KMA's text format, deterministically.

Every value is a pure function of (station, hour): smooth value noise whose knots are seeded by a hash of the
station (or its region, so neighbours share weather) and the knot's index. Hence the same hour and station
give the same bytes in any call, alone or inside a range, on any machine, and still weather is coherent in
time: seasonal and daily temperature cycles, rain spells with damp air and wind, sea-level pressure that
drops in storms, PM10 episodes (worse in spring, washed out by rain) and an occasional missing reading.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

from weather_assets.domain.stations import Station, all_stations
from weather_assets.kma import wire

EPOCH = datetime(2000, 1, 1)
_MASK = (1 << 64) - 1
_MISSING_RATE = 0.004  # share of readings written as a missing code, as real stations sometimes do
_HOUR = timedelta(hours=1)


def mix(*keys: int) -> int:
    """splitmix64 over the keys: a fast, stable hash (Python's hash() is salted per process)."""
    state = 0x9E3779B97F4A7C15
    for key in keys:
        state = (state ^ (key & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & _MASK
        state ^= state >> 29
    return state


def unit(*keys: int) -> float:
    """A uniform number in [0, 1) determined by the keys."""
    return mix(*keys) / 2.0**64


def smooth_noise(seed: int, hours: float, period: float) -> float:
    """Smooth noise in [-1, 1]: random knots every `period` hours, cosine-interpolated between them."""
    knot, frac = divmod(hours / period, 1.0)
    left, right = unit(seed, int(knot)) * 2 - 1, unit(seed, int(knot) + 1) * 2 - 1
    weight = (1 - math.cos(math.pi * frac)) / 2
    return left + (right - left) * weight


def name_seed(name: str) -> int:
    return mix(*name.encode())


_NATION = name_seed("korea")
_FIELDS = {name: name_seed(name) for name in ("TA", "HM", "WS", "PS", "PM10", "RN", "WD", "miss")}


@lru_cache(maxsize=1 << 16)
def observe(station_id: int, hour: datetime) -> dict[str, float | int | datetime | None]:
    """The ASOS fields of one station-hour (naive KST), with None where the reading is missing."""
    station = all_stations().get(station_id) or Station.unknown(station_id)
    region = name_seed(station.region)
    t = (hour - EPOCH).total_seconds() / 3600
    day_of_year = hour.timetuple().tm_yday
    season = math.cos(2 * math.pi * (day_of_year - 20) / 365.25)  # +1 mid-January, -1 mid-July
    summer = (1 - season) / 2
    spring = max(0.0, math.cos(2 * math.pi * (day_of_year - 100) / 365.25))  # yellow-dust season
    daily = math.cos(2 * math.pi * (hour.hour - 15) / 24)  # +1 at 15:00 KST

    wet, _ = wet_and_rain(station_id, hour)

    mean = 13.5 - 1.3 * (station.latitude - 36) - 0.0065 * station.elevation_m
    amplitude = 13 + 0.9 * (station.latitude - 36)
    temperature = (
        mean
        - amplitude * season
        + (4.5 - 2.5 * min(wet * 4, 1)) * daily
        + 3.5 * smooth_noise(region ^ _FIELDS["TA"], t, 40)
        + 0.8 * smooth_noise(station_id ^ _FIELDS["TA"], t, 6)
    )
    humidity = 62 + 14 * summer - 14 * daily + 30 * min(wet * 3, 1) + 12 * smooth_noise(region ^ _FIELDS["HM"], t, 20)
    humidity = min(100.0, max(12.0, humidity))
    exposed = 2.5 if station.elevation_m > 500 or station.station_id in (102, 115, 169, 185, 188) else 0.0
    wind = 2.2 + exposed + 1.2 * daily + 1.8 * smooth_noise(station_id ^ _FIELDS["WS"], t, 5) + 22 * wet
    pressure = (
        1013.5
        + 8 * season
        - 25 * wet
        + 5 * smooth_noise(_NATION ^ _FIELDS["PS"], t, 60)
        + 1.5 * smooth_noise(region ^ _FIELDS["PS"], t, 20)
    )
    dew_point = _dew_point(temperature, humidity)

    def present(name: str, value: float) -> float | None:
        return None if unit(station_id, int(t), _FIELDS["miss"], _FIELDS[name]) < _MISSING_RATE else value

    return {
        "TM": hour,
        "STN": station_id,
        "WD": int(unit(station_id, int(t), _FIELDS["WD"]) * 36) * 10,
        "WS": present("WS", round(max(0.0, wind), 1)),
        "PA": round(pressure - station.elevation_m / 8.3, 1),
        "PS": present("PS", round(pressure, 1)),
        "TA": present("TA", round(temperature, 1)),  # -9.0 deg C included: KMA's missing TA is -99.0
        "TD": round(dew_point, 1),
        "HM": present("HM", round(humidity, 1)),
        "PV": round(6.112 * math.exp(17.62 * dew_point / (243.12 + dew_point)), 1),
        **_precipitation(station_id, hour),
        "_pm10_level": _pm10_level(station_id, region, t, spring, wet),
    }


@lru_cache(maxsize=1 << 16)
def wet_and_rain(station_id: int, hour: datetime) -> tuple[float, float]:
    """How stormy the station-hour is (0 dry; anything above is a wet hour, up to ~1), and the precipitation of that
    one hour in mm (0.0 for a trace: a wet hour with less than 0.05 mm)."""
    station = all_stations().get(station_id) or Station.unknown(station_id)
    region = name_seed(station.region)
    t = (hour - EPOCH).total_seconds() / 3600
    summer = (1 - math.cos(2 * math.pi * (hour.timetuple().tm_yday - 20) / 365.25)) / 2
    storm = smooth_noise(region ^ _FIELDS["RN"], t, 7) + 0.6 * smooth_noise(_NATION ^ _FIELDS["RN"], t, 30)
    threshold = 0.95 - 0.35 * summer  # the summer monsoon rains most
    wet = max(0.0, storm - threshold)
    rain = round(wet * 18 * (1 + 0.5 * smooth_noise(station_id ^ _FIELDS["RN"], t, 3)), 1)
    return wet, max(rain, 0.0)


def _precipitation(station_id: int, hour: datetime) -> dict[str, float | int | None]:
    """RN, RN_JUN, RN_DAY and IR as KMA writes them (None where KMA writes -9.0), after its real answers
    (docs/kma-data.md; a test compares the shapes).

    A wet hour is one where anything fell (`wet_and_rain` > 0), a trace (0.0 mm) included. IR: 3 on a dry hour, 1 on a
    wet hour at 09:00 and 21:00 KST, 4 on every other wet hour. RN_DAY (and RN_JUN, which real answers write equal
    to it): the day's running total, the day running from 01:00 to the 00:00 line that closes it; -9.0 until the
    day's first wet hour, 0.0 after traces only, kept on later dry hours. RN: the hour's amount on wet hours from
    April to October (KMA's summer; its help text names no dates); from November to March the last three hours'
    amount at 00, 03, ..., 21 when any of them was wet, -9.0 between and when all three were dry.
    """
    wet = lambda moment: wet_and_rain(station_id, moment)[0] > 0  # noqa: E731
    rain = lambda moment: wet_and_rain(station_id, moment)[1]  # noqa: E731
    day_start = (hour - timedelta(hours=1)).replace(hour=0) + timedelta(hours=1)
    today = [day_start + timedelta(hours=h) for h in range((hour - day_start) // _HOUR + 1)]
    so_far = round(sum(rain(moment) for moment in today), 1) if any(wet(moment) for moment in today) else None
    if hour.month in (11, 12, 1, 2, 3):
        last_three = [hour - timedelta(hours=h) for h in range(3)]
        wet_then = hour.hour % 3 == 0 and any(wet(moment) for moment in last_three)
        reported = round(sum(rain(moment) for moment in last_three), 1) if wet_then else None
    else:
        reported = rain(hour) if wet(hour) else None
    code = (1 if hour.hour in (9, 21) else 4) if wet(hour) else 3
    return {"RN": reported, "RN_DAY": so_far, "RN_JUN": so_far, "IR": code}


def _dew_point(temperature: float, humidity: float) -> float:
    gamma = math.log(humidity / 100) + 17.62 * temperature / (243.12 + temperature)
    return 243.12 * gamma / (17.62 - gamma)


def _pm10_level(station_id: int, region: int, t: float, spring: float, wet: float) -> float:
    episode = math.exp(
        1.1 * smooth_noise(_NATION ^ _FIELDS["PM10"], t, 50) + 0.5 * smooth_noise(region ^ _FIELDS["PM10"], t, 10)
    )
    return (22 + 28 * spring) * episode * (1 - 0.6 * min(wet * 4, 1)) + 3 * unit(station_id, _FIELDS["PM10"])


def pm10_reading(station_id: int, moment: datetime) -> float | None:
    """One 5-minute PM10 reading (ug/m3) of a station with a dust sensor, or None when it is missing."""
    hour = moment.replace(minute=0) + (timedelta(hours=1) if moment.minute else timedelta())
    level = float(observe(station_id, hour)["_pm10_level"])
    minute_key = int((moment - EPOCH).total_seconds() // 60)
    if unit(station_id, minute_key, _FIELDS["miss"]) < _MISSING_RATE:
        return None
    return max(1.0, level * (0.85 + 0.3 * unit(station_id, minute_key, _FIELDS["PM10"])))


def _hours(first: datetime, last: datetime) -> list[datetime]:
    start = first.replace(minute=0) + (timedelta(hours=1) if first.minute else timedelta())
    return [start + timedelta(hours=i) for i in range(int((last - start) / timedelta(hours=1)) + 1)]


def _stations(stn: str, pm10_only: bool = False) -> list[int]:
    """Station ids a call covers: ``stn=0`` means all (with a dust sensor, for PM10)."""
    known = all_stations()
    if int(stn) != 0:
        station = known.get(int(stn))
        return [] if pm10_only and not (station and station.has_pm10) else [int(stn)]
    return [s.station_id for s in known.values() if s.has_pm10 or not pm10_only]


@dataclass(frozen=True)
class Fault:
    """A broken sensor, to test monitoring with: from `start` (naive KST) on, the ASOS field `field` (``TA``, ``HM``,
    ``WS``, ``PS``) of `station_id` reads its value plus `value` (``shift``; a missing reading stays missing) or
    `value` itself (``stuck``)."""

    station_id: int
    field: str
    kind: Literal["shift", "stuck"]
    value: float
    start: datetime

    def apply(self, fields: dict[str, float | int | datetime | None]) -> dict[str, float | int | datetime | None]:
        """The station-hour's fields as the broken sensor reports them (a copy; `observe` caches its dicts)."""
        reading = fields[self.field]
        if fields["STN"] != self.station_id or fields["TM"] < self.start or (self.kind == "shift" and reading is None):
            return fields
        return {**fields, self.field: round(self.value if self.kind == "stuck" else reading + self.value, 1)}


def _observed(rows: Iterable[tuple[int, datetime]], faults: Sequence[Fault]) -> Iterable[dict]:
    for station_id, hour in rows:
        fields = observe(station_id, hour)
        for fault in faults:
            fields = fault.apply(fields)
        yield fields


ENDPOINTS = ("kma_sfctm2.php", "kma_sfctm3.php", "kma_pm10.php")


def respond(endpoint: str, params: Mapping[str, str], faults: Sequence[Fault] = ()) -> bytes:
    """The body the API Hub would send for one of `ENDPOINTS` and these query parameters, with `faults` if any."""
    when = lambda name: datetime.strptime(params[name], wire.TM_FORMAT)  # noqa: E731
    if endpoint == "kma_sfctm2.php":
        hour = when("tm")
        return wire.render_asos(_observed(((stn, hour) for stn in _stations(params.get("stn", "0"))), faults))
    if endpoint == "kma_sfctm3.php":
        stations = _stations(params.get("stn", "0"))
        rows = ((stn, hour) for hour in _hours(when("tm1"), when("tm2")) for stn in stations)
        return wire.render_asos(_observed(rows, faults))
    if endpoint == "kma_pm10.php":
        first, last = when("tm1"), when("tm2")
        first += timedelta(minutes=-first.minute % 5)
        steps = int((last - first) / timedelta(minutes=5)) + 1
        stations = _stations(params.get("stn", "0"), pm10_only=True)
        moments = [first + timedelta(minutes=5 * i) for i in range(max(steps, 0))]
        return wire.render_pm10((moment, stn, pm10_reading(stn, moment)) for moment in moments for stn in stations)
    raise ValueError(f"the offline observations do not serve {endpoint!r}")
