"""The offline KMA generator: deterministic bytes per (hour, station), and weather that looks like Korea's."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import pytest

from weather_assets.domain import features
from weather_assets.domain.stations import DEFAULT_STATIONS, all_stations, parse_station_ids
from weather_assets.kma import wire
from weather_assets.offline.hub import OfflineKMA
from weather_assets.offline.observations import observe
from weather_assets_tests import kma_real

HOUR = datetime(2024, 7, 10, 14)


def line_of(body: bytes, station: int, hour: datetime) -> bytes:
    """The single data line of one station-hour in an answer."""
    found = [
        line
        for line in wire.split_block(body).lines
        if wire.line_station(line) == station and wire.line_hour(line) == hour
    ]
    assert len(found) == 1, found
    return found[0]


def sfctm2(hour: datetime) -> bytes:
    """The all-station answer of one hour."""
    return OfflineKMA().respond("kma_sfctm2.php", {"tm": wire.tm(hour), "stn": "0", "help": "0"})


def test_same_station_hour_gives_same_line_alone_or_inside_a_range() -> None:
    """Hourly runs and range backfills must store the same bytes, so a line cannot depend on its call."""
    ranged = OfflineKMA().respond(
        "kma_sfctm3.php",
        {"tm1": wire.tm(HOUR - timedelta(days=3)), "tm2": wire.tm(HOUR + timedelta(hours=5)), "stn": "108"},
    )
    assert line_of(sfctm2(HOUR), 108, HOUR) == line_of(ranged, 108, HOUR)


def test_fresh_instances_give_the_same_bytes() -> None:
    """Nothing is remembered between instances: recomputing from scratch gives the same answer."""
    params = {"tm1": wire.tm(HOUR - timedelta(hours=6)), "tm2": wire.tm(HOUR), "stn": "108"}
    first = OfflineKMA().respond("kma_sfctm3.php", params), OfflineKMA().respond("kma_pm10.php", params)
    observe.cache_clear()
    second = OfflineKMA().respond("kma_sfctm3.php", params), OfflineKMA().respond("kma_pm10.php", params)
    assert first == second
    assert wire.split_block(first[0]).lines and wire.split_block(first[1]).lines


def test_same_bytes_in_another_process_with_another_hash_seed() -> None:
    """Values come from a stable hash, not Python's salted hash(), so any machine regenerates the same lake."""
    code = (
        "import sys; from weather_assets.offline.hub import OfflineKMA; "
        "sys.stdout.buffer.write(OfflineKMA().respond('kma_sfctm2.php', {'tm': '202407101400', 'stn': '0'}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True).stdout
    assert other == sfctm2(HOUR)


def test_a_different_hour_gives_different_values() -> None:
    """The generator must not repeat one hour's readings: the fields after TM differ from the next hour's."""
    now = line_of(sfctm2(HOUR), 108, HOUR).split()[1:]
    later = line_of(sfctm2(HOUR + timedelta(hours=1)), 108, HOUR + timedelta(hours=1)).split()[1:]
    assert now != later


def test_stations_without_a_dust_sensor_get_an_empty_pm10_block() -> None:
    """Such stations have no PM10 at all (NaN downstream), and that is a valid answer, not an error."""
    without = next(s.station_id for s in all_stations().values() if not s.has_pm10)
    body = OfflineKMA().respond("kma_pm10.php", {"tm1": "202404010805", "tm2": "202404010900", "stn": str(without)})
    block = wire.split_block(body)
    assert block.lines == () and block.malformed == ()
    assert wire.parse_pm10(body).frame.empty


@dataclass(frozen=True)
class Sample:
    """Parsed generator output: ASOS rows, hourly PM10 means, and how many lines could not be read."""

    asos: pd.DataFrame
    pm10_hourly: pd.DataFrame
    skipped: int


# 30 days in all, at the 10 default stations: mid-winter, the yellow-dust spring and the monsoon summer.
WINDOWS = [
    (datetime(2024, 1, 6, 0), datetime(2024, 1, 15, 23)),
    (datetime(2024, 4, 6, 0), datetime(2024, 4, 15, 23)),
    (datetime(2024, 8, 1, 0), datetime(2024, 8, 10, 23)),
]


@pytest.fixture(scope="module")
def sample() -> Sample:
    """Generated text parsed by the real parser, the way the ingest assets read it."""
    hub = OfflineKMA()
    asos: list[pd.DataFrame] = []
    readings: list[pd.DataFrame] = []
    skipped = 0
    for first, last in WINDOWS:
        for station in parse_station_ids(DEFAULT_STATIONS):
            params = {"tm1": wire.tm(first), "tm2": wire.tm(last), "stn": str(station), "help": "0"}
            parsed = wire.parse_asos(hub.respond("kma_sfctm3.php", params))
            asos.append(parsed.frame)
            pm10_params = {**params, "tm1": wire.tm(first - timedelta(minutes=55))}
            dust = wire.parse_pm10(hub.respond("kma_pm10.php", pm10_params))
            if not dust.frame.empty:
                readings.append(dust.frame)
            skipped += len(parsed.skipped) + len(dust.skipped)
    return Sample(pd.concat(asos, ignore_index=True), wire.hourly_pm10(pd.concat(readings)), skipped)


def test_sample_covers_30_days_at_10_stations_without_unreadable_lines(sample: Sample) -> None:
    """The plausibility checks below only mean something if every generated line was read."""
    assert sample.skipped == 0
    assert len(sample.asos) == 30 * 24 * 10
    assert sample.asos["station_id"].nunique() == 10


def test_seoul_is_colder_in_january_than_in_august(sample: Sample) -> None:
    """Seoul's January mean is below freezing-ish and August's in the mid-20s: the gap is well over 15 deg C."""
    seoul = sample.asos[sample.asos["station_id"] == 108]
    month = seoul["observed_at"].dt.month
    january, august = seoul.loc[month == 1, "temperature"].mean(), seoul.loc[month == 8, "temperature"].mean()
    assert august - january > 15


def test_afternoon_is_warmer_than_dawn(sample: Sample) -> None:
    """A daily cycle: 15:00 KST is on average several degrees warmer than 05:00 KST."""
    hour = sample.asos["observed_at"].dt.hour
    afternoon = sample.asos.loc[hour == 15, "temperature"].mean()
    dawn = sample.asos.loc[hour == 5, "temperature"].mean()
    assert afternoon - dawn > 3


def test_humidity_wind_and_pressure_are_physical(sample: Sample) -> None:
    """Humidity is a percentage, wind is never negative, sea-level pressure stays within 950-1050 hPa."""
    frame = sample.asos
    assert frame["humidity"].dropna().between(0, 100).all()
    assert (frame["wind_speed"].dropna() >= 0).all()
    assert frame["pressure"].dropna().between(950, 1050).all()


def test_some_hours_rain_and_most_are_dry(sample: Sample) -> None:
    """Rain is an occasional event: present, but far from every hour; every hour's amount is known (a window's
    first hour lacks the hour before, and is dry by IR 3 or missing)."""
    rain = features.precipitation(sample.asos, sample.asos.iloc[:0]).amount
    assert (rain > 0).sum() >= 20
    assert (rain == 0).mean() > 0.6
    firsts = sample.asos["observed_at"].isin([first for first, _ in WINDOWS])
    assert rain[~firsts].notna().all()


def test_winter_rn_is_a_three_hour_figure_at_three_hourly_observations_and_rn_day_accumulates(sample: Sample) -> None:
    """What KMA's help text says RN is in winter, and what RN_DAY is, as the generator writes them: the hours' amounts
    add up to each 3-hourly RN and to the day's RN_DAY."""
    winter = sample.asos[sample.asos["observed_at"].dt.month == 1]
    assert winter.loc[winter["observed_at"].dt.hour % 3 != 0, "rn"].isna().all()
    rain = features.precipitation(sample.asos, sample.asos.iloc[:0]).amount[winter.index]
    three_hourly = winter[winter["rn"].notna()]
    assert len(three_hourly) >= 3
    by_key = pd.Series(rain.to_numpy(), index=pd.MultiIndex.from_frame(winter[["station_id", "observed_at"]]))
    for row in three_hourly.itertuples():
        last_three = [by_key.get((row.station_id, row.observed_at - timedelta(hours=h))) for h in range(3)]
        if all(value == value for value in last_three):  # all in the sample
            assert row.rn == pytest.approx(sum(last_three), abs=0.11)
    days = winter.assign(day=(winter["observed_at"] - timedelta(hours=1)).dt.date, rain=rain)
    totals = days.groupby(["station_id", "day"]).agg(rain=("rain", "sum"), last=("rn_day", "last"), n=("rain", "count"))
    complete = totals[totals["n"] == 24]
    wet = complete[complete["rain"] > 0]
    assert len(wet) and wet["rain"].to_numpy() == pytest.approx(wet["last"].to_numpy(), abs=0.001)


def test_pm10_is_positive_with_some_bad_hours(sample: Sample) -> None:
    """Dust is always present in some amount, and episodes push hours above the 75 ug/m3 'bad' grade."""
    pm10 = sample.pm10_hourly["pm10"].dropna()
    assert len(pm10) > 1000
    assert (pm10 > 0).all()
    assert (pm10 > 75).sum() >= 5


def test_missing_readings_occur_but_rarely(sample: Sample) -> None:
    """Real stations sometimes miss a reading; the model must see a few NaNs, but only a few (< 2 %)."""
    cells = sample.asos[["temperature", "humidity", "wind_speed", "pressure"]]
    share = cells.isna().to_numpy().mean()
    assert cells.isna().to_numpy().sum() > 0
    assert share < 0.02


def test_a_generated_minus_nine_degrees_is_written_and_read_as_minus_nine() -> None:
    """The generator writes -9.0 deg C as it is (KMA does), and the parser keeps it: no nudge hides the case."""
    hours = [datetime(2026, 1, 1) + timedelta(hours=h) for h in range(24 * 60)]
    station, hour = next((s, h) for h in hours for s in (100, 101, 105, 108) if observe(s, h)["TA"] == -9.0)
    body = OfflineKMA().respond("kma_sfctm2.php", {"tm": wire.tm(hour), "stn": str(station)})

    assert line_of(body, station, hour).split()[11] == b"-9.0"
    assert wire.parse_asos(body).frame.set_index("station_id").loc[station, "temperature"] == -9.0


def test_a_missing_temperature_is_written_as_minus_99() -> None:
    """KMA's missing TA is -99.0 (the signed fields' code), not -9.0."""
    hours = [datetime(2026, 1, 1) + timedelta(hours=h) for h in range(24 * 365)]
    hour = next(h for h in hours if observe(108, h)["TA"] is None)
    body = OfflineKMA().respond("kma_sfctm2.php", {"tm": wire.tm(hour), "stn": "108"})

    assert line_of(body, 108, hour).split()[11] == b"-99.0"
    assert wire.parse_asos(body).frame["temperature"].isna().all()


def test_the_generator_writes_precipitation_as_kmas_real_answers_do(sample: Sample) -> None:
    """The real excerpts (`data/kma_real/`) and the generator's 30 days show the same cases of RN, RN_DAY and IR (IR 3
    dry, 1 wet at 09:00 and 21:00, 4 wet otherwise; RN hourly in summer and 3-hourly in winter; RN_DAY from -9.0 to a
    running total with traces as 0.0, through the midnights), and neither breaks the rules the real answers keep."""
    real = pd.concat([kma_real.parsed(path) for path in kma_real.EXCERPTS], ignore_index=True)
    assert kma_real.shape_violations(real) == []
    assert kma_real.shape_violations(sample.asos) == []
    assert kma_real.shapes(sample.asos) == kma_real.shapes(real)
    assert len(kma_real.shapes(real)) == 9
    assert not features.precipitation(sample.asos, sample.asos.iloc[:0]).conflict.any()
