"""Forecast skill: how far the comfort forecasts were from the comfort of what was then observed, by lead time."""

from datetime import timedelta

import dagster as dg
import pandas as pd
from pydantic import Field

from weather_assets.defs.assets.forecasts import weather_forecasts
from weather_assets.defs.assets.metadata import bar_chart
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.resources.predictions_db import ComfortDatabase
from weather_assets.domain.hours import current_hour
from weather_assets.domain.tables import FORECASTS, PREDICTIONS
from weather_assets.kma.forecast import REACH

BUCKET_HOURS = 6


class SkillConfig(dg.Config):
    """The window of forecast hours judged."""

    days: int = Field(default=14, description="Days of forecast hours, ending at the current hour.")


def skill_by_lead(forecasts: pd.DataFrame, observed: pd.DataFrame) -> pd.DataFrame:
    """MAE of forecast comfort against the comfort predicted from the observation, per 6-hour lead bucket.

    Only hours both forecast and observed count; each issue's forecast of an hour is one sample.
    """
    joined = forecasts.merge(
        observed[["prediction_datetime", "station_id", "comfort_score"]].rename(
            columns={"prediction_datetime": "forecast_datetime", "comfort_score": "observed_score"}
        ),
        on=["forecast_datetime", "station_id"],
    )
    joined["error"] = (joined["comfort_score"] - joined["observed_score"]).abs()
    joined["lead_bucket"] = joined["lead_hours"] // BUCKET_HOURS * BUCKET_HOURS
    return (
        joined.groupby("lead_bucket")
        .agg(mae=("error", "mean"), samples=("error", "size"))
        .reset_index()
        .assign(leads=lambda frame: [f"{start}-{start + BUCKET_HOURS - 1} h" for start in frame["lead_bucket"]])
    )


@dg.asset(deps=[weather_forecasts, weather_predictions], group_name="forecast", kinds={"pandas"})
def forecast_skill(config: SkillConfig, database: ComfortDatabase) -> dg.MaterializeResult:
    """Forecast skill over the last `days`: for every forecast hour that has since been observed, the comfort
    forecast against the comfort the champion computed from the observation (`weather_predictions`), as the mean
    absolute error per 6-hour lead bucket. The chart shows how fast the forecast loses its edge; forecast rows
    of hours no prediction exists for (not ingested, or not predicted yet) are counted, not judged.
    """
    end = current_hour() + timedelta(hours=1)
    start = end - timedelta(days=config.days)
    forecasts = database.rows(FORECASTS, start - REACH, end)
    forecasts = forecasts[(forecasts["forecast_datetime"] >= start) & (forecasts["forecast_datetime"] < end)]
    observed = database.rows(PREDICTIONS, start, end)
    skill = skill_by_lead(forecasts, observed)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(skill["samples"].sum()) if len(skill) else 0,
            "unobserved_forecast_rows": len(forecasts) - (int(skill["samples"].sum()) if len(skill) else 0),
            "mae_by_lead": _chart(skill),
            **{f"mae_{row.lead_bucket:02d}h": round(float(row.mae), 3) for row in skill.itertuples()},
        }
    )


def _chart(skill: pd.DataFrame) -> dg.MetadataValue:
    if skill.empty:
        return dg.MetadataValue.md("No forecast hour has been observed yet.")
    rows = [([row.leads, f"{row.mae:.2f}", str(row.samples)], max(1, round(row.mae))) for row in skill.itertuples()]
    return bar_chart(["lead", "MAE (points)", "samples"], rows, right={"MAE (points)", "samples"})
