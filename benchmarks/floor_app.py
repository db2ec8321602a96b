"""The floor for api_latency.py: the read API's framework and response model, answering a constant Comfort.

No database, no work: what uvicorn and FastAPI themselves cost per request on this machine.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI

from weather_assets.api.models import Comfort, Lineage

ANSWER = Comfort(
    station_id=108,
    station_name="Seoul",
    region="Seoul",
    prediction_datetime=datetime(2026, 11, 26, 9),
    score=61.5,
    label="good",
    temperature=12.0,
    humidity=55.0,
    precipitation=0.0,
    pm10=30.0,
    wind_speed=2.0,
    pressure=1015.0,
    model_name="comfort-model",
    model_version="1",
    age_seconds=60.0,
    lineage=Lineage(
        model_version="1",
        mlflow_run_id="5d1f0c9e2b7a4c3d8e6f1a2b3c4d5e6f",
        dagster_run_id="0b9e3f4a-6c1d-4e2f-9a8b-7c6d5e4f3a2b",
        input_object="features/202611260900.parquet",
        input_sha256="9f2c" * 16,
    ),
)
app = FastAPI()


@app.get("/comfort", response_model=Comfort)
async def comfort(station_id: int = 108, at: datetime | None = None) -> Comfort:
    """The same parameters and response model as the read API's /comfort, answered without a read."""
    return ANSWER
