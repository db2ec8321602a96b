"""The code location: every definition under `defs/`, loaded from the folder, with the resources the environment
configures (README, "Configuration") and the in-process executor."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource

from weather_assets.defs.resources.kma_client import KMAClient, KMAHubClient
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.defs.resources.predictions_db import ComfortDatabase, tables_resources
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
        "lake": Lake(**_bound_to_env(url=Env.LAKE_URL, data_dir=Env.DATA_DIR), s3=S3Resource()),
        "mlflow": MLflowTracking(registry=registry),
        "model_registry": registry,
        **tables_resources(ComfortDatabase(**_bound_to_env(url=Env.DB_URL, data_dir=Env.DATA_DIR))),
    }


# Every asset, check, job, schedule and sensor a module under defs/ defines is loaded, so one added there (by hand
# or with `dg scaffold defs`) needs no line here; the resources and the executor are the code location's own.
defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(
        resources=resources_from_env(),
        # Every run executes its steps in the run's own process. The stages form a chain, so a process per step
        # (the multiprocess default) bought no parallelism and cost seconds per step: a launched one-hour run
        # would spend most of its time importing the code location again for each step.
        executor=dg.in_process_executor,
    ),
)
