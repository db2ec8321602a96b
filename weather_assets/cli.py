"""The main command: ingest the latest days, train the comfort model, predict every hour, report each step.

    python -m weather_assets [--days 14] [--no-train]

Ingestion and predictions run as single-run backfills of all the hours; training uses them all.

It runs the same job the UI launches, in this process, on whatever the environment configures (embedded
defaults when nothing is set). Runs are recorded in ``$DAGSTER_HOME`` when it is set, so ``dagster dev``
with the same ``DAGSTER_HOME`` shows them; otherwise in a throwaway instance.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from weather_assets.definitions import defs
from weather_assets.defs.assets.model import ComfortModelConfig
from weather_assets.defs.jobs import ingest_job, predict_job, train_job
from weather_assets.defs.partitions import hourly, range_tags
from weather_assets.defs.resources.lake import features_key
from weather_assets.defs.resources.mysql_io_manager import DatabaseWriteError
from weather_assets.domain import comfort, features
from weather_assets.domain.hours import KST, partition_key
from weather_assets.domain.predictions_table import predictions_table
from weather_assets.domain.stations import all_stations

MIN_TRAINING_HOURS = ComfortModelConfig().min_hours
CHUNK_HOURS = 31 * 24


def latest_hours(count: int, now: datetime | None = None) -> list[datetime]:
    """The `count` KST hours that end with the last complete one (KMA has surely published it)."""
    current = (now or datetime.now(KST)).astimezone(KST).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    return [current - timedelta(hours=offset) for offset in range(count, 0, -1)]


def run(
    selection: dg.AssetSelection, instance: dg.DagsterInstance, tags: dict[str, str] | None = None
) -> dg.ExecuteInProcessResult:
    """A job's assets and checks, materialized in this process (the UI shows the run when DAGSTER_HOME is shared).

    Through `materialize`, not the job itself: the jobs' step retry policies wait minutes for a late KMA hour,
    which suits the schedule, not a person waiting at a terminal.
    """
    return dg.materialize(
        list(defs.assets),
        selection=selection,
        resources=defs.resources,
        instance=instance,
        tags=tags,
        # The command prints its own summary and errors; the run's full log is in the instance (and the UI).
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        raise_on_error=False,
    )


def failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """The failed steps' messages, without Dagster's stack traces."""
    return [
        f"{event.step_key} failed: {(event.step_failure_data.error.cause or event.step_failure_data.error).message}"
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_FAILURE
    ]


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    """The last materialization metadata of `asset` in a run, as plain values."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {key: value.value for key, value in events[-1].materialization.metadata.items()}


def summarize(hours: list[datetime]) -> tuple[pd.DataFrame, str]:
    """Per-station summary of the hours' feature files, read back from the lake, and the lake's root."""
    with dg.build_resources({"lake": defs.resources["lake"]}) as resources:
        frame = features.from_parquet_files(resources.lake.read(features_key(hour)) for hour in hours)
        root = resources.lake.root
    summary = (
        frame.groupby(["station_id", "station_name", "region"])
        .agg(
            hours=("observed_at", "size"),
            temp_min=("temperature", "min"),
            temp_mean=("temperature", "mean"),
            temp_max=("temperature", "max"),
            humidity=("humidity", "mean"),
            rain_mm=("precipitation", "sum"),
            pm10=("pm10", "mean"),
            wind_max=("wind_speed", "max"),
            pressure=("pressure", "mean"),
        )
        .round(1)
        .reset_index()
    )
    return summary, root


def latest_scores(hour: datetime) -> pd.DataFrame:
    """The hour's predictions per station, read back from the predictions table."""
    with dg.build_resources({"db": defs.resources["mysql_io_manager"]}) as resources:
        table = predictions_table(resources.db.table)
        query = sa.select(table).where(table.c.prediction_datetime == hour).order_by(table.c.station_id)
        with resources.db.engine().connect() as connection:
            rows = pd.read_sql(query, connection)
    names = {station_id: station.station_name for station_id, station in all_stations().items()}
    return pd.DataFrame(
        {
            "station_id": rows["station_id"],
            "station": rows["station_id"].map(names),
            "region": rows["region"],
            "comfort": rows["comfort_score"].round(1),
            "label": rows["comfort_score"].map(comfort.label),
            "temperature": rows["temperature"],
            "humidity": rows["humidity"],
            "rain_mm": rows["precipitation"],
            "pm10": rows["pm10"].round(0),
            "wind": rows["wind_speed"],
            "model": rows["model_name"],
        }
    )


def report_training(meta: dict[str, object]) -> str:
    """The champion's story of a training run, for people."""
    rmse = ", ".join(
        f"{key.removeprefix('val_rmse_')} {value:.2f}" for key, value in meta.items() if key.startswith("val_rmse_")
    )
    return "\n".join(
        [
            f"Trained on {meta['hours']} hours ({meta['window']}), {meta['dagster/row_count']} rows.",
            f"Validation RMSE by candidate: {rmse}.",
            f"Registered comfort-model v{meta['registered_version']} ({meta['winner']}, MAE {meta['val_mae']:.2f}, "
            f"R2 {meta['val_r2']:.3f}): {meta['decision']}.",
            f"Champion: comfort-model v{meta['champion_version']}.",
            f"MLflow: {meta['mlflow_run']}",
        ]
    )


def days_problem(days: int, train: bool, hours: list[datetime]) -> str | None:
    """What is wrong with `--days`, checked before anything is written: the first partition, the training minimum."""
    if days < 1:
        return "--days must be at least 1"
    first = hourly.start.astimezone(KST).replace(tzinfo=None)
    if hours[0] < first:
        most = (hours[-1] - first) // timedelta(days=1)
        return (
            f"--days {days} reaches back to {partition_key(hours[0])} KST, before the first partition "
            f"{partition_key(first)} (WEATHER_PARTITIONS_START): use at most --days {most}"
        )
    if train and len(hours) < MIN_TRAINING_HOURS:
        return (
            f"--days {days} gives {len(hours)} hours and training needs {MIN_TRAINING_HOURS}: use --days "
            f"{-(-MIN_TRAINING_HOURS // 24)} or more, or --no-train"
        )
    return None


def database_problem() -> str | None:
    """Whether predictions can be written, proved before ingest and training spend minutes (nothing is written)."""
    with dg.build_resources({"db": defs.resources["mysql_io_manager"]}) as resources:
        try:
            resources.db.check_writable()
        except DatabaseWriteError as error:
            return f"the predictions database is not writable, so nothing was started: {error} (WEATHER_DB_URL)"
    return None


def ingest(hours: list[datetime], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The hours, as single-run backfills of at most 31 days (KMA's longest range call), with a line per run."""
    chunks = [hours[start : start + CHUNK_HOURS] for start in range(0, len(hours), CHUNK_HOURS)]
    done = 0
    for chunk in chunks:
        result = run(ingest_job.selection, instance, range_tags(chunk[0], chunk[-1]))
        if not result.success:
            return result
        done += len(chunk)
        if len(chunks) > 1:
            print(f"  ingested {done}/{len(hours)} hours (to {partition_key(chunk[-1])})", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weather_assets", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--days",
        type=int,
        default=14,
        help=f"days of the latest complete hours to ingest (14); at least {-(-MIN_TRAINING_HOURS // 24)} to train "
        f"({MIN_TRAINING_HOURS} hours), and none before the first partition (WEATHER_PARTITIONS_START)",
    )
    parser.add_argument("--no-train", action="store_true", help="ingest and summarize only")
    args = parser.parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its store set-up chatter; the report says what matters
    hours = latest_hours(max(args.days, 1) * 24)
    problem = days_problem(args.days, not args.no_train, hours)
    if problem:
        parser.error(problem)
    problem = None if args.no_train else database_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    instance = dg.DagsterInstance.get() if os.getenv("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()

    print(f"Ingesting {partition_key(hours[0])} .. {partition_key(hours[-1])} KST ({len(hours)} hours)", flush=True)
    ingested = ingest(hours, instance)
    if not ingested.success:
        print("\n".join(failures(ingested)), file=sys.stderr)
        return 1
    summary, lake_root = summarize(hours[-24:])
    print(f"Source: {metadata(ingested, 'kma_observations')['source']}. Lake: {lake_root}\n")
    print(f"The last {min(24, len(hours))} hours per station:")
    print(summary.to_string(index=False))
    if args.no_train:
        return 0

    print("\nTraining comfort_model", flush=True)
    trained = run(train_job.selection, instance)
    if not trained.success:
        print("\n".join(failures(trained)), file=sys.stderr)
        return 1
    print(report_training(metadata(trained, "comfort_model")))

    print("\nPredicting", flush=True)
    predicted = run(predict_job.selection, instance, range_tags(hours[0], hours[-1]))
    if not predicted.success:
        print("\n".join(failures(predicted)), file=sys.stderr)
        return 1
    written = metadata(predicted, "weather_predictions")
    print(
        f"{written['dagster/row_count']} predictions upserted ({written['rows_inserted']} new, "
        f"{written['rows_updated']} updated) into {written['table']}.\n"
    )
    print(f"Comfort at {partition_key(hours[-1])} KST:")
    print(latest_scores(hours[-1]).to_string(index=False))
    return 0
