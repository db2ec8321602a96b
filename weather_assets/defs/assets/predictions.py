"""Prediction stage: the champion model's comfort score for every station-hour, upserted into MySQL."""

from collections.abc import Iterator
from datetime import datetime

import dagster as dg
import numpy as np
import pandas as pd

from weather_assets.defs import checks
from weather_assets.defs.assets.ingest import REWRITE, weather_features
from weather_assets.defs.assets.metadata import bar_chart, comfort_row
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.failures import materialize_first
from weather_assets.defs.partitions import hourly, kst_hours, kst_window
from weather_assets.defs.resources.lake import Lake, LakeObjectMissingError, Source
from weather_assets.defs.resources.model_registry import Champion, ModelRegistry
from weather_assets.defs.resources.predictions_db import ComfortDatabase, stored_in
from weather_assets.domain.features import MEASUREMENTS
from weather_assets.domain.hours import partition_key
from weather_assets.domain.stations import station_names
from weather_assets.domain.tables import PREDICTIONS


@dg.asset(
    deps=[weather_features, comfort_model],
    partitions_def=hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ml",
    io_manager_key="tables_io_manager",
    metadata=stored_in(PREDICTIONS),
    kinds={"mysql", "pandas"},
    pool="mysql_writes",  # bounds parallel writes to MySQL; set its limit on the instance (docs/operating.md)
    check_specs=checks.PREDICTIONS_CHECKS,
)
def weather_predictions(
    context: dg.AssetExecutionContext,
    lake: Lake,
    model_registry: ModelRegistry,
    database: ComfortDatabase,
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    """The comfort score (0 to 100) of each station and KST hour, from the champion model, in MySQL.

    Table `weather_predictions`, one row per `(prediction_datetime, station_id)`: the score, the six
    measurements it was computed from, the region and the model's name and version, and the row's lineage: the
    model's MLflow run, the feature file and the SHA-256 of the bytes scored (the run id is the IO manager's).
    Materializing an hour again updates its rows (the tables IO manager upserts); a range of hours is one run and
    one transaction.
    Its checks (`checks.PREDICTIONS_CHECKS`) read the hours' rows back once they are written: Dagster hands a
    yielded output to the IO manager before this function resumes. An hour whose feature file cannot be read costs
    that hour: the others are predicted and written, then the run fails naming each unreadable hour and its object
    (Dagster still records the whole range as materialized: a single-run range has one output).
    """
    hours = kst_hours(context.partition_time_window)
    try:
        read = lake.read_feature_hours(hours)
    except LakeObjectMissingError as missing:
        raise materialize_first("weather_features", missing) from None
    if len(read.unreadable) < len(hours):
        rows = read.frame
        champion = model_registry.champion_for_run()
        scores = champion.comfort(rows)
        context.log.info(f"{len(rows)} predictions for {len(hours)} hours with {champion.model_name}")
        predictions = predictions_frame(rows, scores, champion, read.sources)
        metadata = {"comfort_now": comfort_chart(predictions), "unreadable_hours": len(read.unreadable)}
        yield dg.Output(predictions, metadata=metadata)
        written = database.rows(PREDICTIONS, *kst_window(context.partition_time_window))
        yield from checks.predictions_results(context, written, rows)
    if read.unreadable:
        errors = "; ".join(map(str, read.unreadable.values()))
        raise dg.Failure(
            f"{len(read.unreadable)} of {len(hours)} hours were not predicted: their feature files cannot be read "
            f"({errors}). {REWRITE}; the new_feature_files sensor then predicts it.",
            metadata={"unreadable_objects": dg.MetadataValue.json(read.unreadable_by_partition())},
            allow_retries=False,
        )


def predictions_frame(
    rows: pd.DataFrame, scores: np.ndarray, champion: Champion, sources: dict[datetime, Source]
) -> pd.DataFrame:
    """Rows for the predictions table from feature rows, their scores, the model and the file each hour was read
    from."""
    hours = rows["observed_at"]
    keys = {pd.Timestamp(hour): source.key for hour, source in sources.items()}
    hashes = {pd.Timestamp(hour): source.sha256 for hour, source in sources.items()}
    return pd.DataFrame(
        {
            "prediction_datetime": hours,
            "station_id": rows["station_id"],
            "region": rows["region"],
            "comfort_score": scores,
            **{name: rows[name] for name in MEASUREMENTS},
            "model_name": champion.model_name,
            **champion.lineage,
            "input_object": hours.map(keys),  # a dict per hour: no Python call per row of a long range
            "input_sha256": hours.map(hashes),
        }
    )[list(PREDICTIONS.given)]


def comfort_chart(predictions: pd.DataFrame) -> dg.MetadataValue:
    """A Markdown bar chart of the newest hour's scores by station: "how comfortable is it now" at a glance."""
    newest = predictions["prediction_datetime"].max()
    hour = predictions[predictions["prediction_datetime"] == newest].sort_values("comfort_score", ascending=False)
    names = station_names()
    rows = [
        comfort_row([f"{names.get(row.station_id, row.station_id)} ({row.station_id})", row.region], row.comfort_score)
        for row in hour.itertuples()
    ]
    columns = ["station", "region", "score", "label"]
    return bar_chart(columns, rows, right={"score"}, title=f"**{partition_key(newest)} KST**")
