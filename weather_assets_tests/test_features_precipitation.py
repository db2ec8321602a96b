"""An hour's precipitation from RN_DAY and IR (`features.precipitation`): table tests on constructed and real lines."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from weather_assets.domain import features
from weather_assets_tests.test_kma_format import HELP, block, hourly_rain, rain_line

DAY = datetime(2024, 1, 15)


def at(hour: int) -> datetime:
    return DAY + timedelta(hours=hour)


def same(got: list[float], want: list[float]) -> bool:
    """Equal lists of amounts, NaN equal to NaN."""
    return len(got) == len(want) and all(
        (math.isnan(g) and math.isnan(w)) or g == w for g, w in zip(got, want, strict=True)
    )


@pytest.mark.parametrize(
    ("ir", "want"),
    [
        ("3", 0.0),  # no precipitation, and the day had none yet (01:00 starts it)
        ("1", math.nan),  # precipitation reported, but no amount
        ("2", math.nan),
        ("4", math.nan),  # KMA's missing
        ("-", math.nan),  # no code at all
        ("-9", math.nan),  # a missing code where a code belongs
        ("7", math.nan),  # not a code of table 1819
    ],
)
def test_a_missing_rn_day_is_zero_only_on_a_dry_line_of_a_day_without_rain(ir: str, want: float) -> None:
    """01:00 with RN_DAY -9.0: 0.0 so far only when IR says 3; with any other IR the day total is unknown, and so
    is the next hour's amount."""
    rain = hourly_rain(rain_line(at(1), "-9.0", "-9.0", ir), rain_line(at(2), "-9.0", "0.5", "1"))
    assert same(rain, [want, 0.5 if want == 0.0 else math.nan])


def test_a_dry_hour_without_rn_day_carries_the_days_total_forward() -> None:
    """05:00 wrote 4.0 mm so far; 06:00 is dry (IR 3) with RN_DAY missing; 07:00 writes 5.0: 1.0 mm fell at 07:00,
    not 5.0. Two dry hours in a row carry it as well."""
    four = rain_line(at(4), "-9.0", "3.0", "1")
    rain = hourly_rain(
        rain_line(at(5), "-9.0", "4.0", "1"),
        rain_line(at(6), "-9.0", "-9.0", "3"),
        rain_line(at(7), "-9.0", "5.0", "1"),
        rain_line(at(8), "-9.0", "-9.0", "3"),
        rain_line(at(9), "-9.0", "-9.0", "3"),
        rain_line(at(10), "-9.0", "5.5", "1"),
        before=[four],
    )
    assert rain == [1.0, 0.0, 1.0, 0.0, 0.0, 0.5]


def test_the_carried_total_comes_from_the_days_earlier_hours_and_is_unknown_without_them() -> None:
    """One hour built alone (the hourly schedule) needs the day's earlier hours, as `weather_features` reads them."""
    earlier = [rain_line(at(5), "-9.0", "4.0", "1"), rain_line(at(6), "-9.0", "-9.0", "3")]
    seven = rain_line(at(7), "-9.0", "5.0", "1")
    assert hourly_rain(seven, before=earlier) == [1.0]
    assert math.isnan(hourly_rain(seven, before=earlier[1:])[0])  # 06:00 alone: the total it carries is unknown
    dry_morning = [rain_line(at(h), "-9.0", "-9.0", "3") for h in range(1, 7)]
    assert hourly_rain(seven, before=dry_morning) == [5.0]  # nothing fell from 01:00 to 06:00


def test_a_carried_total_does_not_cross_a_gap_or_the_day_start() -> None:
    """An hour that was never ingested breaks the carry; 01:00 starts the day at 0.0 whatever the day before had."""
    assert math.isnan(
        hourly_rain(rain_line(at(7), "-9.0", "5.0", "1"), before=[rain_line(at(5), "-9.0", "4.0", "1")])[0]
    )
    late = rain_line(at(23), "-9.0", "8.0", "1")
    next_day = [rain_line(at(h), "-9.0", "-9.0", "3") for h in (24, 25)] + [rain_line(at(26), "-9.0", "0.3", "1")]
    assert hourly_rain(*next_day, before=[late]) == [0.0, 0.0, 0.3]


def test_ir_3_against_a_rising_rn_day_takes_the_difference_and_counts_the_conflict() -> None:
    """IR 3 says no precipitation, RN_DAY says 1.0 mm fell: the measured amount is kept, and the run counts it."""
    lines = [rain_line(at(4), "-9.0", "3.0", "1"), rain_line(at(5), "-9.0", "4.0", "3")]
    raw = {hour: (block(*HELP, line), block()) for hour, line in zip((at(4), at(5)), lines, strict=True)}
    built = features.build(raw, [108])
    assert built.frame["precipitation"].tolist()[1] == 1.0
    assert built.precipitation_conflicts == {at(5): 1}
    quiet = features.build({at(5): (block(*HELP, rain_line(at(5), "-9.0", "3.0", "3")), block())}, [108])
    assert quiet.frame["precipitation"].tolist() == [0.0] and quiet.precipitation_conflicts == {}


# Seoul (108), 2015-12-11 01:00 to 11:00: real kma_sfctm2.php lines of a dry winter morning, copied verbatim from a
# Korean blog post kept as Markdown on GitHub, "국내 기상청 Weather Display 만들기" (section "기상청의 API 구조"; the
# public code index did not name its repository). Every hour, 3-hourly or not, writes RN -9.0, RN_DAY -9.0, IR 3.
REAL_DRY_WINTER_MORNING = [
    "201512110100 108  29  1.7  -9 -9.0   -9 1002.1 1012.7 -9  -9.0   5.2   3.0  86.0   7.6   -9.0   -9.0   -9.0   -9.0"
    "   -9.0   -9.0   -9.0 -9 -9 19                      -9  -9   -9 -         -9  -9  -9   800 -9.0 -9.00 -9   4.0"
    "   4.6   5.7   6.5   6.5  -9 -9.0 -9  3 -9",
    "201512110200 108  29  2.2  -9 -9.0   -9 1001.9 1012.5 -9  -9.0   4.6   2.4  86.0   7.3   -9.0   -9.0   -9.0   -9.0"
    "   -9.0   -9.0   -9.0 -9 -9 19                      -9  -9   -9 -         -9  -9  -9   900 -9.0 -9.00 -9   3.7"
    "   4.2   5.4   6.5   6.5  -9 -9.0 -9  3 -9",
    "201512110300 108  29  2.4  -9 -9.0   -9 1002.0 1012.6  5  -0.6   4.1   1.6  84.0   6.9   -9.0   -9.0   -9.0   -9.0"
    "   -9.0   -9.0   -9.0 10 11 19                       3   2   30 AcCi       1   3   0   900 -9.0 -9.00  1   3.5"
    "   4.0   5.2   6.4   6.5  -9 -9.0 -9  3  1",
    "201512110400 108  29  1.4  -9 -9.0   -9 1002.1 1012.7 -9  -9.0   3.6   1.4  86.0   6.8   -9.0   -9.0   -9.0   -9.0"
    "   -9.0   -9.0   -9.0 10 21 19                       4   2   10 ScAc       0   3   5   900 -9.0 -9.00 -9   3.3"
    "   3.6   5.0   6.3   6.4  -9 -9.0 -9  3  1",
    "201512110500 108  29  2.2  -9 -9.0   -9 1002.6 1013.2 -9  -9.0   3.4   1.1  85.0   6.6   -9.0   -9.0   -9.0   -9.0"
    "   -9.0   -9.0   -9.0 10 10 19                       3   1   10 ScAc       0   3   5   900 -9.0 -9.00 -9   3.3"
    "   3.5   4.8   6.2   6.4  -9 -9.0 -9  3  1",
    "201512110600 108  27  1.8  -9 -9.0   -9 1003.0 1013.6  2   1.0   3.4   0.9  84.0   6.5   -9.0   -9.0   -9.0   -9.0"
    "   -9.0   -9.0   -9.0 -9 -9 19                       6   3   10 ScAc       0   3   5  1200 -9.0 -9.00 -9   3.0"
    "   3.3   4.7   6.1   6.4  -9 -9.0 -9  3  2",
]


def test_a_real_dry_winter_morning_is_dry_at_every_hour_and_its_day_total_stays_known() -> None:
    """Real lines: each IR 3 hour is 0.0 mm, and RN_DAY's -9.0 on them is 0.0 so far from 01:00 on, so a (constructed)
    07:00 line that writes RN_DAY 0.5 gets 0.5 mm when built alone with the real morning before it (the hourly
    schedule)."""
    hours = [datetime(2015, 12, 11, h) for h in range(1, 7)]
    assert all(len(line.split()) == 46 for line in REAL_DRY_WINTER_MORNING)
    raw = {hour: (block(*HELP, line), block()) for hour, line in zip(hours, REAL_DRY_WINTER_MORNING, strict=True)}
    assert features.build(raw, [108]).frame["precipitation"].tolist() == [0.0] * 6
    seven = datetime(2015, 12, 11, 7)
    first_rain = {seven: (block(*HELP, rain_line(seven, "-9.0", "0.5", "1")), block())}
    alone = features.build(first_rain, [108], before=[block(*HELP, line) for line in REAL_DRY_WINTER_MORNING])
    assert alone.frame["precipitation"].tolist() == [0.5]
