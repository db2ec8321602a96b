"""The comfort rule against hand-computed cases: every band edge, missing values, calendar, DI, rain, wind."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
import pytest

from weather_assets.domain import training
from weather_assets.domain.comfort import label, score

WEDNESDAY_NOON = datetime(2026, 11, 25, 12)
NAN = math.nan


def case(
    expected: float,
    t: float = 18.0,
    pm10: float = 10.0,
    rh: float = 50.0,
    rain: float = 0.0,
    wind: float = 2.0,
    at: datetime = WEDNESDAY_NOON,
) -> tuple[dict[str, object], float]:
    """A station-hour (defaults score 76: T 18 -> 90, PM10 10 -> 90, DI 62.6, dry, calm, weekday noon)."""
    row = {"observed_at": at, "temperature": t, "pm10": pm10, "humidity": rh, "precipitation": rain}
    return {**row, "wind_speed": wind, "pressure": 1015.0}, expected


# With PM10 10 (band 90) the score before steps 3-5 is 0.7 * (25 + 0.5 * temperature_band) + 27.
CASES = {
    "ideal": case(76),
    # 1. temperature bands, edges included; high temperatures with dry air (RH 10) or no RH keep DI out
    "T 15 lower edge of 90": case(76, t=15),
    "T 22 upper edge of 90": case(76, t=22),
    "T 14.9 falls to 70": case(69, t=14.9),
    "T 10 lower edge of 70": case(69, t=10),
    "T 25 upper edge of 70": case(69, t=25),
    "T 25.1 falls to 50": case(62, t=25.1),
    "T 9.9 falls to 50": case(62, t=9.9),
    "T 5 lower edge of 50": case(62, t=5),
    "T 30 upper edge of 50, not too hot": case(62, t=30, rh=10),
    "T 4.9 falls to 20": case(51.5, t=4.9),
    "T 0 lower edge of 20, not too cold": case(51.5, t=0),
    "T 30.1 band 20 and too hot": case(31.5, t=30.1, rh=10),
    "T 35 upper edge of 20 and too hot": case(31.5, t=35, rh=NAN),
    "T 35.1 band 10 and too hot": case(28, t=35.1, rh=NAN),
    "T -0.1 band 10 and too cold": case(28, t=-0.1),
    "T missing scores 50, no penalty": case(62, t=NAN),
    # 2. PM10 bands (T 18: 0.7 * 70 + 0.3 * band)
    "PM10 15 upper edge of 90": case(76, pm10=15),
    "PM10 15.1 falls to 70": case(70, pm10=15.1),
    "PM10 35 upper edge of 70": case(70, pm10=35),
    "PM10 35.1 falls to 50": case(64, pm10=35.1),
    "PM10 75 upper edge of 50": case(64, pm10=75),
    "PM10 75.1 falls to 30": case(58, pm10=75.1),
    "PM10 150 upper edge of 30": case(58, pm10=150),
    "PM10 150.1 falls to 10": case(52, pm10=150.1),
    "PM10 missing scores 50": case(64, pm10=NAN),
    # 3. rush hours (7-9, 18-20) and weekends, in KST
    "06:00 is not rush hour": case(76, at=datetime(2026, 11, 25, 6)),
    "07:00 rush hour": case(66, at=datetime(2026, 11, 25, 7)),
    "09:00 rush hour": case(66, at=datetime(2026, 11, 25, 9)),
    "10:00 is not rush hour": case(76, at=datetime(2026, 11, 25, 10)),
    "17:00 is not rush hour": case(76, at=datetime(2026, 11, 25, 17)),
    "18:00 rush hour": case(66, at=datetime(2026, 11, 25, 18)),
    "20:00 rush hour": case(66, at=datetime(2026, 11, 25, 20)),
    "21:00 is not rush hour": case(76, at=datetime(2026, 11, 25, 21)),
    "Friday is a weekday": case(76, at=datetime(2026, 11, 27, 12)),
    "Saturday +5": case(81, at=datetime(2026, 11, 28, 12)),
    "Sunday +5": case(81, at=datetime(2026, 11, 29, 12)),
    "Saturday rush hour": case(71, at=datetime(2026, 11, 28, 8)),
    # 4. discomfort index at T 27 (band 50, score 62): DI = 68.17 + 0.1243 * RH
    "DI 74.88 no penalty": case(62, t=27, rh=54),
    "DI 75.01 -8": case(54, t=27, rh=55),
    "DI 75.13 -8": case(54, t=27, rh=56),
    "DI 79.98 -8": case(54, t=27, rh=95),
    "DI 80.10 -15": case(47, t=27, rh=96),
    "DI needs humidity": case(62, t=27, rh=NAN),
    "DI 84.5 -15 on top of too hot": case(16.5, t=31, rh=80),
    # 5. rain and wind
    "rain 0.1 mm -5.2": case(70.8, rain=0.1),
    "rain 5 mm -15": case(61, rain=5),
    "rain 7.5 mm reaches the cap -20": case(56, rain=7.5),
    "rain 10 mm capped at -20": case(56, rain=10),
    "wind 8.9 m/s no penalty": case(76, wind=8.9),
    "wind 9 m/s -10": case(66, wind=9),
    "wind 13.9 m/s -10": case(66, wind=13.9),
    "wind 14 m/s -20, not -30": case(56, wind=14),
    "wind missing no penalty": case(76, wind=NAN),
    "rain missing no deduction": case(76, rain=NAN),
    "rain missing with wind still -10": case(66, rain=NAN, wind=9),
    # 6. clipped at 0: 0.7 * (25 + 5) + 3 - 20 - 10 - 20 - 20 = -46
    "clipped at 0": case(0, t=-5, pm10=200, rain=10, wind=14, at=datetime(2026, 11, 25, 8)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_comfort_rule_case(name: str) -> None:
    row, expected = CASES[name]
    assert score(pd.DataFrame([row])).iloc[0] == pytest.approx(expected)


def test_whole_table_scores_at_once_as_row_by_row() -> None:
    """Vectorised scoring of many rows gives each row's own score (no leakage between rows)."""
    frame = pd.DataFrame([row for row, _ in CASES.values()])
    assert score(frame).tolist() == pytest.approx([expected for _, expected in CASES.values()])


@pytest.mark.parametrize(
    ("value", "word"),
    [
        (100, "excellent"),
        (80, "excellent"),
        (79.9, "good"),
        (60, "good"),
        (59.9, "fair"),
        (40, "fair"),
        (39.9, "poor"),
        (0, "poor"),
    ],
)
def test_label_bands(value: float, word: str) -> None:
    assert label(value) == word


def test_every_candidate_model_scores_a_row_with_missing_precipitation() -> None:
    """A missing precipitation reaches the model as NaN plus its flag, as a missing PM10 does: every candidate
    predicts a finite score for it."""
    rows = pd.DataFrame([row for row, _ in CASES.values()] * 4)
    rows = rows.assign(precipitation=rows["precipitation"].mask(rows.index % 5 == 0))
    x, y = training.feature_matrix(rows), score(rows).reset_index(drop=True)
    dry_and_unknown = training.feature_matrix(pd.DataFrame([case(76, rain=NAN)[0], case(76)[0]]))
    assert dry_and_unknown["precipitation_missing"].tolist() == [1.0, 0.0]
    for name, model in training.candidates(list(x.columns)).items():
        predicted = model.fit(x, y).predict(dry_and_unknown)
        assert all(math.isfinite(value) for value in predicted), name
