"""What the comfort model learns from and how candidates are fitted and compared (no MLflow, no Dagster here).

scikit-learn (about 1.5 s to import) is imported by the functions that fit and score, not with the module: the
code location reads `FEATURES` and `feature_matrix` when it loads, and only training runs fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from weather_assets.domain.features import MEASUREMENTS

if TYPE_CHECKING:
    from sklearn.base import RegressorMixin

CALENDAR = ("hour", "weekday")  # KST; rush hours and weekends move the score
MAY_BE_MISSING = MEASUREMENTS  # every measurement, precipitation included, may be missing: each gets a flag
FEATURES: tuple[str, ...] = (*MEASUREMENTS, *CALENDAR, *(f"{name}_missing" for name in MAY_BE_MISSING))


def feature_matrix(frame: pd.DataFrame, features: Sequence[str] = FEATURES) -> pd.DataFrame:
    """Model inputs from feature rows: the measurements, KST hour and weekday, and missing-value flags.

    All float64, so the MLflow signature has one type and a served model accepts what this builds.
    """
    observed = pd.to_datetime(frame["observed_at"])
    matrix = frame[list(MEASUREMENTS)].astype("float64").assign(hour=observed.dt.hour, weekday=observed.dt.weekday)
    for name in MAY_BE_MISSING:
        matrix[f"{name}_missing"] = frame[name].isna()
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown model features {unknown}; choose from {list(FEATURES)}")
    return matrix[list(features)].astype("float64").reset_index(drop=True)


def time_split(frame: pd.DataFrame, validation_share: float) -> tuple[pd.Series, pd.Series]:
    """Boolean masks (train, validation): the newest `validation_share` of the hours validate, never a shuffle."""
    hours = np.sort(frame["observed_at"].unique())
    first_validation_hour = hours[min(len(hours) - 1, int(len(hours) * (1 - validation_share)))]
    validation = (frame["observed_at"] >= first_validation_hour).reset_index(drop=True)
    return ~validation, validation


def candidates(features: Sequence[str]) -> dict[str, RegressorMixin]:
    """The models that compete: a linear baseline, a random forest and histogram gradient boosting.

    Forest and baseline need imputed inputs; gradient boosting takes NaN natively and treats hour and
    weekday as categories, which suits the rule's rush-hour and weekend steps. Seeds are fixed, so the
    same data always trains the same model.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    categorical = [name for name in CALENDAR if name in features]
    return {
        "linear": make_pipeline(SimpleImputer(strategy="median"), LinearRegression()),
        "random_forest": make_pipeline(
            SimpleImputer(strategy="median"), RandomForestRegressor(n_estimators=200, random_state=0, n_jobs=-1)
        ),
        "hist_gradient_boosting": HistGradientBoostingRegressor(
            max_iter=1000,
            learning_rate=0.1,
            max_leaf_nodes=15,
            categorical_features=categorical or None,
            early_stopping=False,
            random_state=0,
        ),
    }


@dataclass(frozen=True)
class Scores:
    """Validation metrics of one model, on the 0-100 comfort scale."""

    rmse: float
    mae: float
    r2: float

    @classmethod
    def of(cls, truth: pd.Series, predicted: np.ndarray) -> Scores:
        from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

        return cls(
            rmse=float(root_mean_squared_error(truth, predicted)),
            mae=float(mean_absolute_error(truth, predicted)),
            r2=float(r2_score(truth, predicted)),
        )


@dataclass(frozen=True)
class Fitted:
    """A fitted candidate and its validation scores."""

    name: str
    model: RegressorMixin
    scores: Scores


def fit_candidates(
    train_x: pd.DataFrame, train_y: pd.Series, validation_x: pd.DataFrame, validation_y: pd.Series
) -> list[Fitted]:
    """Every candidate fitted on the training hours and scored on the validation hours, best first."""
    fitted = []
    for name, model in candidates(list(train_x.columns)).items():
        model.fit(train_x, train_y)
        fitted.append(Fitted(name, model, Scores.of(validation_y, model.predict(validation_x))))
    return sorted(fitted, key=lambda item: item.scores.rmse)
