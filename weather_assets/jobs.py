"""Jobs over the assets, as operators launch them from the UI, the schedule or the command line."""

import dagster as dg

from weather_assets.assets.ingest import kma_observations, weather_features
from weather_assets.assets.model import comfort_model
from weather_assets.assets.predictions import weather_predictions

ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.assets(kma_observations, weather_features),
    description="Fetch KMA observations for the partition's hours and write the hourly feature files.",
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
)
