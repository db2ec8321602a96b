"""Model monitoring, in plain Python: the champion's live error against the comfort rule and each measurement's drift
from the champion's training window (no Dagster, no MLflow here).

The reference of a training window (`Reference`) is computed when the model is trained and stored with it, so a
day is judged without reading the training data again. Drift per measurement: the population stability index (PSI)
over the training window's quantile bins, the change of the missing rate, the share of values outside the training
range, and the stations whose readings did not change all day while that was rare in training (a stuck sensor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from weather_assets.domain.features import MEASUREMENTS

QUANTILES = np.linspace(0.1, 0.9, 9)  # deciles: the PSI's bins
PSI_FLOOR = 1e-4  # an empty bin's share, so that the logarithm stays finite
STUCK_MIN_READINGS = 18  # a station-day judged stuck needs this many present readings of the measurement
STUCK_RARE = 0.05  # ... and constant days must have been rarer than this in training (not so for precipitation)


@dataclass(frozen=True)
class MeasurementReference:
    """One measurement in the training window: its decile edges and the share of values per bin, its range, its
    missing rate, and the share of station-days on which it never changed."""

    edges: list[float]
    shares: list[float]
    low: float
    high: float
    missing_rate: float
    constant_day_share: float


@dataclass(frozen=True)
class Reference:
    """What the champion was trained on, as monitoring needs it, with the champion's validation MAE."""

    validation_mae: float
    measurements: dict[str, MeasurementReference]

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able values, to store with the model."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Reference:
        measurements = {name: MeasurementReference(**value) for name, value in dict(data["measurements"]).items()}
        return cls(float(data["validation_mae"]), measurements)


def _bin_shares(values: pd.Series, edges: list[float]) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values.to_numpy(), side="left"), minlength=len(edges) + 1)
    return counts / max(1, counts.sum())


def _constant_days(frame: pd.DataFrame, name: str) -> pd.Series:
    """Per station and KST day with enough readings of `name`: whether they never changed."""
    day = pd.to_datetime(frame["observed_at"]).dt.floor("D")
    grouped = frame.groupby(["station_id", day])[name].agg(["min", "max", "count"])
    judged = grouped[grouped["count"] >= STUCK_MIN_READINGS]
    return judged["min"] == judged["max"]


def reference(frame: pd.DataFrame, validation_mae: float) -> Reference:
    """The reference of a training window's feature rows."""
    measurements = {}
    for name in MEASUREMENTS:
        present = frame[name].dropna()
        edges = sorted(set(np.quantile(present, QUANTILES).round(6).tolist())) if len(present) else []
        constant = _constant_days(frame, name)
        measurements[name] = MeasurementReference(
            edges=edges,
            shares=_bin_shares(present, edges).round(6).tolist(),
            low=float(present.min()) if len(present) else float("nan"),
            high=float(present.max()) if len(present) else float("nan"),
            missing_rate=float(frame[name].isna().mean()) if len(frame) else 0.0,
            constant_day_share=float(constant.mean()) if len(constant) else 0.0,
        )
    return Reference(validation_mae, measurements)


def psi(values: pd.Series, measurement: MeasurementReference) -> float:
    """Population stability index of present `values` against the training bins (0 when there are none)."""
    present = values.dropna()
    if present.empty or not measurement.shares:
        return 0.0
    actual = np.maximum(_bin_shares(present, measurement.edges), PSI_FLOOR)
    expected = np.maximum(np.asarray(measurement.shares), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class Drift:
    """One measurement's drift on a day against the training window."""

    psi: float
    missing_rate_change: float
    out_of_range_share: float
    stuck_stations: list[int]


def drift(frame: pd.DataFrame, ref: Reference) -> dict[str, Drift]:
    """Every measurement's drift in a day's feature rows."""
    result = {}
    for name, measurement in ref.measurements.items():
        present = frame[name].dropna()
        outside = (present < measurement.low) | (present > measurement.high)
        constant = _constant_days(frame, name)
        stuck = (
            constant[constant].index.get_level_values("station_id")
            if measurement.constant_day_share < STUCK_RARE
            else []
        )
        result[name] = Drift(
            psi=psi(present, measurement),
            missing_rate_change=float(frame[name].isna().mean()) - measurement.missing_rate if len(frame) else 0.0,
            out_of_range_share=float(outside.mean()) if len(present) else 0.0,
            stuck_stations=sorted({int(station) for station in stuck}),
        )
    return result


@dataclass(frozen=True)
class LiveError:
    """The champion's error against the comfort rule on a day's rows: overall and per station."""

    mae: float
    rmse: float
    worst_station: int
    by_station: pd.DataFrame  # station_id, rows, mae, rmse

    @property
    def worst_station_mae(self) -> float:
        return float(self.by_station.loc[self.by_station["station_id"] == self.worst_station, "mae"].iloc[0])


def live_error(frame: pd.DataFrame, predicted: np.ndarray, truth: pd.Series) -> LiveError:
    """MAE and RMSE of `predicted` against `truth` (the rule's scores) for feature rows, and the worst station."""
    error = pd.DataFrame({"station_id": frame["station_id"].to_numpy(), "error": predicted - truth.to_numpy()})
    by_station = (
        error.assign(absolute=error["error"].abs(), squared=error["error"] ** 2)
        .groupby("station_id")
        .agg(rows=("error", "size"), mae=("absolute", "mean"), rmse=("squared", "mean"))
        .assign(rmse=lambda table: np.sqrt(table["rmse"]))
        .reset_index()
    )
    return LiveError(
        mae=float(error["error"].abs().mean()),
        rmse=float(np.sqrt((error["error"] ** 2).mean())),
        worst_station=int(by_station.loc[by_station["mae"].idxmax(), "station_id"]),
        by_station=by_station,
    )


def station_table(frame: pd.DataFrame, error: LiveError, ref: Reference) -> str:
    """A markdown table, one row per station: live MAE and RMSE, each measurement's mean and out-of-range share."""
    names = list(ref.measurements)
    header = ["station", "rows", "MAE", "RMSE", *(f"{name} mean (out of range)" for name in names)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    by_station = error.by_station.set_index("station_id")
    for station, rows in frame.groupby("station_id"):
        cells = [str(station), str(int(by_station.at[station, "rows"]))]
        cells += [f"{by_station.at[station, 'mae']:.2f}", f"{by_station.at[station, 'rmse']:.2f}"]
        for name in names:
            present, measurement = rows[name].dropna(), ref.measurements[name]
            outside = ((present < measurement.low) | (present > measurement.high)).mean() if len(present) else 0.0
            cells.append(f"{present.mean():.1f} ({outside:.0%})" if len(present) else "missing")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
