"""Model stage: the comfort model, trained on the lake's feature hours and tracked in MLflow."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd
from pydantic import Field

from weather_assets.defs.assets.ingest import REWRITE, weather_features
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.mlflow_tracking import run_closed, run_link
from weather_assets.defs.resources.model_registry import MODEL_NAME, promote_if_better, register
from weather_assets.domain import comfort, monitoring
from weather_assets.domain.hours import KEY_FORMAT, current_hour, partition_key
from weather_assets.domain.training import FEATURES, Fitted, feature_matrix, fit_candidates, time_split

if TYPE_CHECKING:
    from dagster_mlflow.resources import MlFlow
else:
    # Dagster reads the asset's signature when the code location loads; dagster-mlflow is imported only when the
    # `mlflow` resource starts (`mlflow_tracking`), so at run time the annotation names no class.
    MlFlow = Any


class ComfortModelConfig(dg.Config):
    """Training window and inputs; the defaults are what the daily retrain uses."""

    window_days: int = Field(default=30, description="Days of feature hours, ending at the newest materialized one.")
    min_hours: int = Field(default=72, description="Fewest materialized hours in the window to train at all.")
    validation_share: float = Field(default=0.2, description="Share of the newest hours that validate.")
    features: list[str] = Field(default=list(FEATURES), description="Model inputs (a subset, for experiments).")


def training_hours(materialized: set[str], window_days: int) -> list[datetime]:
    """The materialized KST hours of the window that ends at the newest one; hours never materialized are skipped."""
    hours = sorted(datetime.strptime(key, KEY_FORMAT) for key in materialized)
    if not hours:
        return []
    start = hours[-1] - timedelta(days=window_days)
    return [hour for hour in hours if hour > start]


@dg.asset(deps=[weather_features], group_name="ml", kinds={"scikitlearn", "mlflow"})
def comfort_model(
    context: dg.AssetExecutionContext, config: ComfortModelConfig, lake: Lake, mlflow: dg.ResourceParam[MlFlow]
) -> dg.MaterializeResult:
    """The comfort regressor, trained on a trailing window of `weather_features` and registered in MLflow.

    Labels come from the comfort rule. The newest hours validate; a linear baseline, a random forest and
    histogram gradient boosting compete and the lowest validation RMSE wins. The winner is registered as
    `comfort-model`, with the window's reference for `model_monitoring` (`domain.monitoring.reference`); the
    `champion` alias, which predictions load, moves to it only when it beats the current champion on the same
    validation rows. An hour whose feature file cannot be read is left out, with a warning:
    `unreadable_hours` counts those hours and `unreadable_objects` names each with its object and error.
    """
    with run_closed(mlflow):
        return _train(context, config, lake, mlflow)


def _train(
    context: dg.AssetExecutionContext, config: ComfortModelConfig, lake: Lake, mlflow: MlFlow
) -> dg.MaterializeResult:
    materialized = context.instance.get_materialized_partitions(weather_features.key)
    window = training_hours(materialized, config.window_days)
    read = lake.read_feature_hours(window)
    for error in read.unreadable.values():
        context.log.warning(f"{error}: left out of training. {REWRITE}.")
    hours = [hour for hour in window if hour not in read.unreadable]
    frame = read.frame
    if len(hours) < config.min_hours:
        raise dg.Failure(_too_little_data(hours, len(frame), len(read.unreadable), config), allow_retries=False)
    labels = comfort.score(frame)
    matrix = feature_matrix(frame, config.features)
    train, validation = time_split(frame, config.validation_share)
    fitted = fit_candidates(matrix[train], labels[train], matrix[validation], labels[validation])
    winner = fitted[0]

    _log_training(mlflow, config, hours, len(read.unreadable), len(frame), train, validation, fitted)
    version = register(
        winner.model,
        matrix[validation],
        example_x=matrix[train].head(5),
        reference=monitoring.reference(frame, winner.scores.mae),
    )
    decision = promote_if_better(
        mlflow.tracking_uri, version, frame[validation.to_numpy()], labels[validation.to_numpy()]
    )
    mlflow.set_tags({"champion_changed": str(decision.promoted), "registered_version": version})
    context.log.info(f"{MODEL_NAME} v{version} ({winner.name}): {decision.reason}")

    run = mlflow.active_run()
    return dg.MaterializeResult(
        metadata={
            "mlflow_run_id": run.info.run_id,
            "mlflow_run": _link(run_link(mlflow.tracking_uri, run.info.experiment_id, run.info.run_id)),
            "registered_version": version,
            "winner": winner.name,
            "champion_changed": decision.promoted,
            "champion_version": version if decision.promoted else decision.previous_version,
            "decision": decision.reason,
            **({"champion_val_rmse": round(decision.previous_rmse, 4)} if decision.previous_rmse is not None else {}),
            **{f"val_rmse_{item.name}": round(item.scores.rmse, 4) for item in fitted},
            "val_mae": round(winner.scores.mae, 4),
            "val_r2": round(winner.scores.r2, 4),
            "window": f"{partition_key(hours[0])} .. {partition_key(hours[-1])}",
            "hours": len(hours),
            "unreadable_hours": len(read.unreadable),
            "unreadable_objects": dg.MetadataValue.json(read.unreadable_by_partition()),
            "dagster/row_count": len(frame),
        }
    )


def _log_training(
    mlflow: MlFlow,
    config: ComfortModelConfig,
    hours: list[datetime],
    unreadable: int,
    rows: int,
    train: pd.Series,
    validation: pd.Series,
    fitted: list[Fitted],
) -> None:
    """The run's window (its readable hours, and how many could not be read), split and candidates as MLflow params,
    and every candidate's validation scores."""
    mlflow.log_params(
        {
            "window_start": partition_key(hours[0]),
            "window_end": partition_key(hours[-1]),
            "window_days": config.window_days,
            "hours": len(hours),
            "unreadable_hours": unreadable,
            "rows": rows,
            "train_rows": int(train.sum()),
            "validation_rows": int(validation.sum()),
            "features": ",".join(config.features),
            "candidates": ",".join(item.name for item in fitted),
            "winner": fitted[0].name,
        }
    )
    mlflow.log_metrics(
        {f"{item.name}_val_{metric}": value for item in fitted for metric, value in vars(item.scores).items()}
    )


def _link(link: str) -> dg.MetadataValue:
    return dg.MetadataValue.url(link) if link.startswith("http") else dg.MetadataValue.text(link)


def _too_little_data(hours: list[datetime], rows: int, unreadable: int, config: ComfortModelConfig) -> str:
    found = (
        f"{len(hours)} materialized hours with {rows} rows ({partition_key(hours[0])} .. {partition_key(hours[-1])})"
        if hours
        else "no materialized hour"
    )
    if unreadable:
        found += f" that can be read, and {unreadable} whose feature files cannot (the run's warnings name them)"
    end = hours[-1] if hours else current_hour()
    start = end - timedelta(hours=max(config.min_hours, 14 * 24) - 1)
    return (
        f"comfort_model needs at least {config.min_hours} materialized hours of weather_features in its "
        f"{config.window_days}-day window and found {found}. Backfill kma_observations and weather_features, "
        f"e.g. {partition_key(start)} .. {partition_key(end)}, then materialize comfort_model again."
    )
