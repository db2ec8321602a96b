"""Jobs over the assets, as operators launch them from the UI, the schedules, the sensor or the read API."""

import dagster as dg

from weather_assets.defs.assets.forecasts import forecast_features, kma_forecasts, weather_forecasts
from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.assets.monitoring import model_monitoring
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.assets.skill import forecast_skill

# Runs of these jobs retry failed steps: KMA or MySQL briefly away. The KMA client and the IO manager retry
# single calls within seconds first, and kma_observations itself waits for an hour KMA has not published yet.
KMA_RETRIES = dg.RetryPolicy(max_retries=3, delay=300, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
MYSQL_RETRIES = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.assets(kma_observations, weather_features),
    description="Fetch KMA observations for the partition's hours and write the hourly feature files.",
    op_retry_policy=KMA_RETRIES,
)

train_job = dg.define_asset_job(
    "train",
    selection=dg.AssetSelection.assets(comfort_model),
    description="Train the comfort model on the latest feature hours; promote it if it beats the champion.",
)

predict_job = dg.define_asset_job(
    "predict",
    selection=dg.AssetSelection.assets(weather_predictions),
    description="Score the partition's hours with the champion model and upsert them into weather_predictions.",
    op_retry_policy=MYSQL_RETRIES,
)

ingest_and_predict_job = dg.define_asset_job(
    "ingest_and_predict",
    selection=dg.AssetSelection.assets(kma_observations, weather_features, weather_predictions),
    description=(
        "One hour from KMA to the predictions table in one run: the hourly schedule's job (it waits while KMA "
        "has not published the hour yet), and the read API's for a missing recent hour."
    ),
    op_retry_policy=MYSQL_RETRIES,
)

forecast_job = dg.define_asset_job(
    "forecast",
    selection=dg.AssetSelection.assets(kma_forecasts, forecast_features, weather_forecasts),
    description=(
        "One KMA forecast issue to comfort forecasts per station and hour (it waits while KMA does not serve the "
        "issue yet)."
    ),
    op_retry_policy=MYSQL_RETRIES,
)

forecast_skill_job = dg.define_asset_job(
    "skill",
    selection=dg.AssetSelection.assets(forecast_skill),
    description="Forecast comfort against observed comfort, by lead time, over the last two weeks.",
)

monitor_job = dg.define_asset_job(
    "monitor",
    selection=dg.AssetSelection.assets(model_monitoring),
    description="A KST day's live error of the champion and drift of the measurements, with their checks.",
)
