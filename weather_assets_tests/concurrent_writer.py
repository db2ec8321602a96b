"""Run in separate processes by the concurrency tests: materialize (or upsert) one predictions hour, all at the same
moment."""

from __future__ import annotations

from threading import Barrier


def materialize_hour(lake_dir: str, registry_dir: str, db_url: str, partition: str, start: Barrier) -> str:
    """Materialize `weather_predictions` for `partition` once every process is ready; '' or the failure."""
    import dagster as dg

    from weather_assets import runs
    from weather_assets.defs.assets.predictions import weather_predictions
    from weather_assets.defs.resources.lake import Lake
    from weather_assets.defs.resources.model_registry import ModelRegistry
    from weather_assets.defs.resources.predictions_db import ComfortDatabase, tables_resources

    resources = {
        "lake": Lake(data_dir=lake_dir),
        "model_registry": ModelRegistry(data_dir=registry_dir),
        **tables_resources(ComfortDatabase(url=db_url, backoff_seconds=0.05, max_attempts=8)),
    }
    ModelRegistry(data_dir=registry_dir).champion()  # load the model before the start line, as a warm worker has
    start.wait()
    result = dg.materialize(
        [weather_predictions],
        resources=resources,
        partition_key=partition,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config=runs.QUIET,
    )
    return "" if result.success else "; ".join(runs.failures(result)) or "run failed"


def upsert_hour(db_url: str, hour: str, run_id: str, start: Barrier) -> str:
    """Upsert station 108's row of `hour` (ISO) as run `run_id` once every process is ready; '' or the error.

    Into a table created before the lineage columns, every writer finds them missing and races to add them."""
    from datetime import datetime

    from weather_assets.defs.resources.predictions_db import ComfortDatabase, DatabaseWriteError
    from weather_assets.domain.tables import PREDICTIONS
    from weather_assets_tests.helpers import prediction_rows

    rows = prediction_rows([datetime.fromisoformat(hour)])
    database = ComfortDatabase(url=db_url, backoff_seconds=0.05, max_attempts=8)
    start.wait()
    try:
        database.upsert(PREDICTIONS, rows, run_id=run_id)
    except DatabaseWriteError as error:
        return str(error)
    return ""
