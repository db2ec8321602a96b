"""An hour's precipitation from RN_DAY and IR (`features.precipitation`) on constructed lines and real ones (the
real excerpts of `data/kma_real/` run whole in `test_kma_real`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from weather_assets.domain import features
from weather_assets.kma import wire
from weather_assets_tests.helpers import HELP, asos_line, block

DAY = datetime(2024, 1, 15)


def at(hour: int) -> datetime:
    return DAY + timedelta(hours=hour)


def same(got: list[float], want: list[float]) -> bool:
    """Equal lists of amounts, NaN equal to NaN."""
    return len(got) == len(want) and all(
        (math.isnan(g) and math.isnan(w)) or g == w for g, w in zip(got, want, strict=True)
    )


def rain_line(hour: datetime, rn: str, rn_day: str, ir: str, station: int = 108) -> str:
    """A 46-field line of `station` at `hour` with the given RN (16), RN_DAY (17) and IR (45) tokens."""
    fields = asos_line().split()
    fields[0], fields[1], fields[15], fields[16], fields[44] = wire.tm(hour), str(station), rn, rn_day, ir
    return " ".join(fields)


def built(*lines: str, before: Sequence[str] = ()) -> features.Features:
    """`features.build` of station 108's lines, one raw object per hour, with `before` as the hours before them."""
    hours = sorted({wire.parse_tm(line.split()[0]) for line in lines})
    raw = {hour: (block(*HELP, *(line for line in lines if line.startswith(wire.tm(hour)))), block()) for hour in hours}
    return features.build(raw, [108], before=[block(*HELP, line) for line in before])


def hourly_rain(*lines: str, before: Sequence[str] = ()) -> list[float]:
    """The precipitation column `features.build` makes of the lines."""
    return built(*lines, before=before).frame["precipitation"].tolist()


@pytest.mark.parametrize(
    ("ir", "want"),
    [
        ("3", 0.0),  # a dry hour: nothing yet today (01:00 starts the day)
        ("1", math.nan),  # a wet hour without a day total
        ("2", math.nan),
        ("4", math.nan),
        ("-", 0.0),  # no code: the -9.0 alone says nothing fell yet
        ("-9", 0.0),
        ("7", 0.0),  # not a code of table 1819: says nothing
    ],
)
def test_a_missing_rn_day_is_nothing_yet_today_except_on_a_wet_line(ir: str, want: float) -> None:
    """01:00 with RN_DAY -9.0 is 0.0 so far, unless IR says the hour was wet: then its total, and so the next
    hour's amount, is unknown."""
    rain = hourly_rain(rain_line(at(1), "-9.0", "-9.0", ir), rain_line(at(2), "-9.0", "0.5", "4"))
    assert same(rain, [want, 0.5 if want == 0.0 else math.nan])


def test_ir_4_and_ir_1_lines_carry_valid_amounts() -> None:
    """Real answers write IR 4 on every wet hour but 09:00 and 21:00 (IR 1): RN_DAY's difference is the hour's
    amount on all of them, and a trace (RN_DAY 0.0) is 0.0 mm."""
    rain = hourly_rain(
        rain_line(at(7), "0.0", "0.0", "4"),
        rain_line(at(8), "0.3", "0.3", "4"),
        rain_line(at(9), "0.7", "1.0", "1"),
        rain_line(at(10), "2.5", "3.5", "4"),
        before=[rain_line(at(6), "-9.0", "-9.0", "3")],
    )
    assert rain == [0.0, 0.3, 0.7, 2.5]


def test_a_winter_three_hour_rn_is_split_into_its_hours_by_rn_day() -> None:
    """Winter: RN is written only at 03:00, as the last three hours' 3.0 mm; RN_DAY accumulates 0.5, 1.5, 3.0."""
    rain = hourly_rain(
        rain_line(at(1), "-9.0", "0.5", "4"),
        rain_line(at(2), "-9.0", "1.5", "4"),
        rain_line(at(3), "3.0", "3.0", "4"),
        rain_line(at(4), "-9.0", "3.0", "3"),
    )
    assert rain == [0.5, 1.0, 1.5, 0.0]


def test_midnight_closes_the_previous_day_and_one_starts_the_next() -> None:
    """The real sequence of 2024-07-02 23:00 to 07-03 01:00 at Seoul: 63.5, 65.1 (00:00 closes the day), 0.8."""
    rain = hourly_rain(
        rain_line(at(24), "1.6", "65.1", "4"),
        rain_line(at(25), "0.8", "0.8", "4"),
        before=[rain_line(at(23), "0.3", "63.5", "4")],
    )
    assert rain == [1.6, 0.8]


def test_only_the_previous_hour_is_needed_and_a_wet_hour_without_it_is_unknown_and_counted() -> None:
    """One hour built alone (the hourly schedule) reads the hour before; without it a wet hour has no amount (NaN,
    counted as previous_hour_unread), while an IR 3 hour is dry whatever the day's total."""
    seven = rain_line(at(7), "-9.0", "5.0", "4")
    assert hourly_rain(seven, before=[rain_line(at(6), "-9.0", "4.0", "3")]) == [1.0]
    alone = built(seven)
    assert math.isnan(alone.frame["precipitation"][0])
    assert alone.precipitation_unknown == {at(7): {"previous_hour_unread": 1}}
    dry = built(rain_line(at(7), "-9.0", "5.0", "3"))
    assert dry.frame["precipitation"].tolist() == [0.0] and dry.precipitation_unknown == {}


def test_a_day_total_that_goes_down_is_no_usable_figure_and_is_counted() -> None:
    went_down = built(rain_line(at(6), "-9.0", "3.5", "4"), before=[rain_line(at(5), "2.0", "4.0", "4")])
    assert math.isnan(went_down.frame["precipitation"][0])
    assert went_down.precipitation_unknown == {at(6): {"day_total_fell": 1}}


def test_a_wet_line_without_a_day_total_is_unknown_and_so_is_the_next_hour() -> None:
    result = built(rain_line(at(5), "-9.0", "-9.0", "4"), rain_line(at(6), "-9.0", "4.0", "4"))
    assert result.frame["precipitation"].isna().all()
    assert result.precipitation_unknown == {at(5): {"wet_without_total": 1}, at(6): {"previous_hour_unread": 1}}


def test_ir_3_against_a_rising_rn_day_takes_the_difference_and_counts_the_conflict() -> None:
    """IR 3 says no precipitation, RN_DAY says 1.0 mm fell: the measured amount is kept, and the run counts it."""
    result = built(rain_line(at(5), "-9.0", "4.0", "3"), before=[rain_line(at(4), "-9.0", "3.0", "4")])
    assert result.frame["precipitation"].tolist() == [1.0]
    assert result.precipitation_conflicts == {at(5): 1}
    quiet = built(rain_line(at(5), "-9.0", "3.0", "3"), before=[rain_line(at(4), "-9.0", "3.0", "4")])
    assert quiet.frame["precipitation"].tolist() == [0.0] and quiet.precipitation_conflicts == {}


def test_ir_is_kept_in_the_features() -> None:
    result = built(rain_line(at(1), "-9.0", "-9.0", "3"), rain_line(at(2), "0.2", "0.2", "4"))
    assert result.frame["ir"].tolist() == [3.0, 4.0]


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
