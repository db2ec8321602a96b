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
import sys
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from weather_assets import runs
from weather_assets.definitions import defs
from weather_assets.defs.assets.model import ComfortModelConfig
from weather_assets.defs.jobs import ingest_job, predict_job, train_job
from weather_assets.defs.partitions import hourly, range_tags
from weather_assets.defs.resources.predictions_db import DatabaseWriteError
from weather_assets.domain import comfort
from weather_assets.domain.hours import KST, current_hour, partition_key
from weather_assets.domain.stations import all_stations
from weather_assets.environment import Env

MIN_TRAINING_HOURS = ComfortModelConfig().min_hours
CHUNK_HOURS = 31 * 24


def latest_hours(count: int, now: datetime | None = None) -> list[datetime]:
    """The `count` KST hours that end with the last complete one (KMA has surely published it)."""
    current = now.astimezone(KST).replace(minute=0, second=0, microsecond=0, tzinfo=None) if now else current_hour()
    return [current - timedelta(hours=offset) for offset in range(count, 0, -1)]


def summarize(hours: list[datetime]) -> tuple[pd.DataFrame, str]:
    """Per-station summary of the hours' feature files, read back from the lake, and the lake's root."""
    with dg.build_resources({"lake": defs.resources["lake"]}) as resources:
        frame = resources.lake.read_features(hours)
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
    with dg.build_resources({"db": defs.resources["predictions_io_manager"]}) as resources:
        rows = resources.db.rows(hour, hour + timedelta(hours=1))
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
    with dg.build_resources({"db": defs.resources["predictions_io_manager"]}) as resources:
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
        result = runs.materialize(ingest_job.selection, instance, tags=range_tags(chunk[0], chunk[-1]))
        if not result.success:
            return result
        done += len(chunk)
        if len(chunks) > 1:
            print(f"  ingested {done}/{len(hours)} hours (to {partition_key(chunk[-1])})", flush=True)
    return result


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[datetime]]:
    """The arguments and the hours they name, checked before anything is written (argparse exits on a problem)."""
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
    hours = latest_hours(max(args.days, 1) * 24)
    problem = days_problem(args.days, not args.no_train, hours)
    if problem:
        parser.error(problem)
    return args, hours


def succeeded(result: dg.ExecuteInProcessResult) -> bool:
    """Whether a step's run succeeded; its failures go to stderr when not."""
    if not result.success:
        print("\n".join(runs.failures(result)), file=sys.stderr)
    return result.success


def main(argv: list[str] | None = None) -> int:
    args, hours = parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its store set-up chatter; the report says what matters
    problem = None if args.no_train else database_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    instance = dg.DagsterInstance.get() if Env.DAGSTER_HOME.get() else dg.DagsterInstance.ephemeral()

    print(f"Ingesting {partition_key(hours[0])} .. {partition_key(hours[-1])} KST ({len(hours)} hours)", flush=True)
    if not succeeded(ingested := ingest(hours, instance)):
        return 1
    summary, lake_root = summarize(hours[-24:])
    print(f"Source: {runs.metadata(ingested, 'kma_observations')['source']}. Lake: {lake_root}\n")
    print(f"The last {min(24, len(hours))} hours per station:")
    print(summary.to_string(index=False))
    if args.no_train:
        return 0

    print("\nTraining comfort_model", flush=True)
    if not succeeded(trained := runs.materialize(train_job.selection, instance)):
        return 1
    print(report_training(runs.metadata(trained, "comfort_model")))

    print("\nPredicting", flush=True)
    predicted = runs.materialize(predict_job.selection, instance, tags=range_tags(hours[0], hours[-1]))
    if not succeeded(predicted):
        return 1
    written = runs.metadata(predicted, "weather_predictions")
    print(
        f"{written['dagster/row_count']} predictions upserted ({written['rows_inserted']} new, "
        f"{written['rows_updated']} updated) into {written['table']}.\n"
    )
    print(f"Comfort at {partition_key(hours[-1])} KST:")
    print(latest_scores(hours[-1]).to_string(index=False))
    return 0
