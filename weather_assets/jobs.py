"""Jobs over the assets, as operators launch them from the UI, the schedule or the command line."""

import dagster as dg

from weather_assets.assets.ingest import kma_observations, weather_features

ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.assets(kma_observations, weather_features),
    description="Fetch KMA observations for the partition's hours and write the hourly feature files.",
)
