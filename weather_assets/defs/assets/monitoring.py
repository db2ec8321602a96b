"""Monitoring stage: each KST day, how far the champion is from the comfort rule and how far the measurements are
from what it was trained on."""

import dagster as dg

from weather_assets.defs import checks
from weather_assets.defs.assets.ingest import weather_features
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.failures import materialize_first
from weather_assets.defs.partitions import daily, kst_hours
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.domain import comfort, monitoring


@dg.asset(
    deps=[weather_features, comfort_model],
    partitions_def=daily,
    group_name="ml",
    kinds={"pandas"},
    check_specs=checks.MONITORING_CHECKS,
)
def model_monitoring(
    context: dg.AssetExecutionContext, lake: Lake, model_registry: ModelRegistry
) -> dg.MaterializeResult:
    """The champion on one KST day: its live error against the comfort rule on the day's observed hours (MAE, RMSE,
    the worst station), and each measurement's drift from the champion's training window (PSI, the change of the
    missing rate, the share of values outside the training range, stuck sensors), as numbers the UI plots per day,
    with a table per station. Days, not hours: an hour of ten stations is too few values to judge a distribution.

    The label is the rule applied to the same features, so the error is exact, not a proxy. The training window's
    reference is stored with the model when it is trained. Its checks (`checks.MONITORING_CHECKS`) grade the day;
    an ERROR makes the `retrain_on_monitoring_error` sensor request a `train` run.
    """
    hours = kst_hours(context.partition_time_window)
    frame = lake.read_feature_hours(hours, skip_missing=True).frame
    if frame.empty:
        raise materialize_first("weather_features", f"no feature hours of {context.partition_key}")
    champion = model_registry.champion_for_run()
    if champion.reference is None:
        raise materialize_first("comfort_model", f"champion {champion.model_name} carries no monitoring reference")
    reference = champion.reference
    error = monitoring.live_error(frame, champion.comfort(frame), comfort.score(frame))
    drift = monitoring.drift(frame, reference)
    context.log.info(f"{context.partition_key}: {champion.model_name} live MAE {error.mae:.3f}")
    return dg.MaterializeResult(
        metadata={
            "champion": champion.model_name,
            "hours": int(frame["observed_at"].nunique()),
            "dagster/row_count": len(frame),
            "live_mae": round(error.mae, 4),
            "live_rmse": round(error.rmse, 4),
            "validation_mae": round(reference.validation_mae, 4),
            "worst_station": error.worst_station,
            "worst_station_mae": round(error.worst_station_mae, 4),
            **{f"psi_{name}": round(item.psi, 4) for name, item in drift.items()},
            **{f"missing_rate_change_{name}": round(item.missing_rate_change, 4) for name, item in drift.items()},
            **{f"out_of_range_{name}": round(item.out_of_range_share, 4) for name, item in drift.items()},
            "stuck_sensors": sum(len(item.stuck_stations) for item in drift.values()),
            "by_station": dg.MetadataValue.md(monitoring.station_table(frame, error, reference)),
        },
        check_results=checks.monitoring_results(context, error, drift, reference),
    )
