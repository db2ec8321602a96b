"""MLflow tracking for Dagster runs: dagster-mlflow's resource, configured from the environment.

Embedded default: a SQLite tracking and registry store in ``$WEATHER_DATA_DIR/mlflow.db`` with artifacts in
``$WEATHER_DATA_DIR/mlartifacts``. ``MLFLOW_TRACKING_URI`` points it at a tracking server instead.

dagster-mlflow and MLflow are imported when the resource starts, in the runs that train, not when the code
location loads (together about 1.6 s that every process would pay).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from weather_assets.defs.resources.model_registry import ModelRegistry, display_uri
from weather_assets.environment import artifacts_uri

if TYPE_CHECKING:
    from dagster_mlflow.resources import MlFlow

EXPERIMENT = "comfort-model"


def ensure_experiment(uri: str, name: str, data_dir: str) -> None:
    """Create the experiment with its artifacts under `data_dir` when the store is local.

    A local store would otherwise put artifacts in ``./mlruns`` of whatever directory the run starts in; a
    tracking server has its own artifact root.
    """
    if not uri.startswith(("sqlite:", "file:", "/")):
        return
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    if client.get_experiment_by_name(name) is None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        client.create_experiment(name, artifact_location=artifacts_uri(data_dir))


def run_link(uri: str, experiment_id: str, run_id: str) -> str:
    """Where a person opens the run: the server's page, or the command that serves the local store."""
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"mlflow ui --backend-store-uri {display_uri(uri)}  (then http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id})"


@contextlib.contextmanager
def run_closed(run: MlFlow) -> Iterator[MlFlow]:
    """The MLflow run of dagster-mlflow's resource, ended when the block ends (FAILED when it raises).

    dagster-mlflow opens the run when its resource starts and unregisters MLflow's own atexit `end_run`,
    expecting a job-level hook to close it; asset jobs take no such hook, so the asset that logs closes it here.
    """
    try:
        yield run
    except BaseException:
        run.end_run(status="FAILED")
        raise
    run.end_run()


class MLflowTracking(dg.ConfigurableResource):
    """dagster-mlflow's `mlflow_tracking` resource: one MLflow run per Dagster run, tagged with its run id.

    Hands the asset dagster-mlflow's `MlFlow` object (all of mlflow's API plus the active run). Its only
    addition is the embedded default store and the experiment's local artifact root, set up before
    dagster-mlflow opens the run.
    """

    registry: ModelRegistry = Field(default_factory=ModelRegistry, description="Where MLflow tracks and registers.")
    experiment_name: str = Field(default=EXPERIMENT, description="MLflow experiment of the training runs.")

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[MlFlow]:
        """dagster-mlflow's generator resource, entered with this resource's store and experiment."""
        import mlflow
        from dagster_mlflow import mlflow_tracking

        uri = self.registry.uri()
        ensure_experiment(uri, self.experiment_name, self.registry.data_dir)
        mlflow.set_registry_uri(uri)
        config = {
            "experiment_name": self.experiment_name,
            "mlflow_tracking_uri": uri,
            "parent_run_id": None,
            "mlflow_run_id": None,
            "env": {},
            "env_to_tag": None,
            "extra_tags": {},
        }
        with contextlib.contextmanager(mlflow_tracking.resource_fn)(context.replace_config(config)) as tracking:
            yield tracking
