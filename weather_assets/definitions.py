"""The code location: every definition under `defs/`, with the resources the environment configures (README,
"Configuration") and the in-process executor."""

from __future__ import annotations

import dagster as dg

from weather_assets.defs.assets.forecasts import forecast_features, kma_forecasts, weather_forecasts
from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.assets.monitoring import model_monitoring
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.assets.skill import forecast_skill
from weather_assets.defs.jobs import (
    forecast_job,
    forecast_skill_job,
    ingest_and_predict_job,
    ingest_job,
    monitor_job,
    predict_job,
    train_job,
)
from weather_assets.defs.resources.kma_client import KMAClient, KMAHubClient
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.defs.resources.predictions_db import ComfortDatabase, tables_resources
from weather_assets.defs.schedules import (
    forecast_issued,
    forecast_skill_daily,
    ingest_hourly,
    model_monitoring_daily,
    train_daily,
)
from weather_assets.defs.sensors import new_feature_files, retrain_on_monitoring_error
from weather_assets.environment import Env


def _bound_to_env(**fields: Env) -> dict[str, dg.EnvVar]:
    """Resource fields bound to the environment variables that are set; unset ones keep embedded defaults.

    Only whether a variable exists is looked at here; Dagster resolves its value when a run starts, and the
    UI shows the variable's name, never its value.
    """
    return {field: dg.EnvVar(variable.value) for field, variable in fields.items() if variable.get()}


def _bound_to_int_env(**fields: Env) -> dict[str, dg.EnvVar]:
    """As `_bound_to_env`, for whole-number fields."""
    return {field: dg.EnvVar.int(variable.value) for field, variable in fields.items() if variable.get()}


def kma_client_from_env() -> KMAClient:
    """The KMA client the environment asks for: the API Hub when KMA_AUTH_KEY is set, else the offline generator.

    The one place the two are chosen between; the main command and the read API's runs use it through `defs`.
    """
    settings = _bound_to_env(stations=Env.STATIONS) | _bound_to_int_env(
        publication_poll_seconds=Env.KMA_POLL_SECONDS, publication_wait_minutes=Env.KMA_WAIT_MINUTES
    )
    if not Env.KMA_AUTH_KEY.get():
        return OfflineKMAClient(**settings)
    hub = _bound_to_env(auth_key=Env.KMA_AUTH_KEY, base_url=Env.KMA_API_URL, forecast_url=Env.KMA_FORECAST_URL)
    return KMAHubClient(**hub, **settings)


def resources_from_env() -> dict[str, dg.ConfigurableResource | dg.ConfigurableIOManager]:
    """Resources as the environment configures them (embedded defaults for every unset variable)."""
    registry = ModelRegistry(**_bound_to_env(tracking_uri=Env.TRACKING_URI, data_dir=Env.DATA_DIR))
    return {
        "kma": kma_client_from_env(),
        "lake": Lake(**_bound_to_env(url=Env.LAKE_URL, data_dir=Env.DATA_DIR)),
        "mlflow": MLflowTracking(registry=registry),
        "model_registry": registry,
        **tables_resources(ComfortDatabase(**_bound_to_env(url=Env.DB_URL, data_dir=Env.DATA_DIR))),
    }


# Listed here rather than loaded from the defs folder: `dg.load_from_defs_folder` imports every installed
# component library (dagster-aws and boto3 among them) in every process that loads the code location, and the
# package-module loader is a preview API. A test fails when a module under defs/ defines something not listed.
defs = dg.Definitions(
    assets=[
        kma_observations,
        weather_features,
        comfort_model,
        model_monitoring,
        weather_predictions,
        kma_forecasts,
        forecast_features,
        weather_forecasts,
        forecast_skill,
    ],
    jobs=[ingest_job, train_job, predict_job, ingest_and_predict_job, forecast_job, forecast_skill_job, monitor_job],
    schedules=[ingest_hourly, train_daily, forecast_issued, forecast_skill_daily, model_monitoring_daily],
    sensors=[new_feature_files, retrain_on_monitoring_error],
    resources=resources_from_env(),
    # Every run executes its steps in the run's own process. The stages form a chain, so a process per step
    # (the multiprocess default) bought no parallelism and cost seconds per step: a launched one-hour run
    # would spend most of its time importing the code location again for each step.
    executor=dg.in_process_executor,
)
