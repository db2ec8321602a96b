"""Weather comfort platform: KMA observations to hourly comfort scores, as a Dagster code location."""
