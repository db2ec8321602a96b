"""The comfort rule: the 0-100 score of one station-hour that the model learns (DESIGN.md, "The comfort rule").

Steps 1 to 3 are the rule of the system this project grew from; steps 4 and 5 add humidity (through the
discomfort index), rain and wind, which it ignored. Vectorised over a feature frame, so the same code labels
a month of training data and a single hand-computed test case.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RUSH_HOURS = (7, 8, 9, 18, 19, 20)
LABELS = ((80, "excellent"), (60, "good"), (40, "fair"))


def _bands(values: pd.Series, bands: list[tuple[pd.Series, float]], otherwise: float, missing: float) -> np.ndarray:
    conditions = [condition.to_numpy() for condition, _ in bands]
    scores = np.select(conditions, [score for _, score in bands], default=otherwise)
    return np.where(values.isna().to_numpy(), missing, scores)


def score(frame: pd.DataFrame) -> pd.Series:
    """Comfort score per row of a frame with ``observed_at`` (KST) and the six measurements.

    Missing temperature or PM10 scores the neutral 50 in its band step; a step that needs a missing value
    (the discomfort index, the temperature penalty, the rain or wind deduction) is skipped: a missing
    precipitation deducts nothing, as a missing PM10 costs nothing beyond its neutral band.
    """
    t, pm10 = frame["temperature"], frame["pm10"]
    humidity, rain, wind = frame["humidity"], frame["precipitation"].fillna(0.0), frame["wind_speed"]
    observed = pd.to_datetime(frame["observed_at"])

    temperature_score = _bands(
        t,
        [(t.between(15, 22), 90), (t.between(10, 25), 70), (t.between(5, 30), 50), (t.between(0, 35), 20)],
        otherwise=10,
        missing=50,
    )
    s = 0.5 * 50 + 0.5 * temperature_score  # 1. start at 50, half of it the temperature band
    pm10_score = _bands(
        pm10, [(pm10 <= 15, 90), (pm10 <= 35, 70), (pm10 <= 75, 50), (pm10 <= 150, 30)], otherwise=10, missing=50
    )
    s = 0.7 * s + 0.3 * pm10_score  # 2. PM10 weighs 30 %

    s = s - 10 * observed.dt.hour.isin(RUSH_HOURS).to_numpy()  # 3. rush hours, weekends, extreme heat or cold
    s = s + 5 * (observed.dt.weekday >= 5).to_numpy()
    s = s - 20 * ((t < 0) | (t > 30)).to_numpy()

    di = 0.81 * t + 0.01 * humidity * (0.99 * t - 14.3) + 46.3  # 4. discomfort index (NaN when T or RH is)
    s = s - np.select([(di >= 80).to_numpy(), (di >= 75).to_numpy()], [15, 8], default=0)

    s = s - np.where(rain > 0, np.minimum(20, 5 + 2 * rain), 0)  # 5. rain and wind
    s = s - np.select([(wind >= 14).to_numpy(), (wind >= 9).to_numpy()], [20, 10], default=0)

    return pd.Series(np.clip(s, 0, 100), index=frame.index, name="comfort_score")  # 6.


def label(comfort: float) -> str:
    """The word for people: excellent (80+), good (60+), fair (40+), else poor."""
    return next((word for floor, word in LABELS if comfort >= floor), "poor")
