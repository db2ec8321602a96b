"""The main command: ingest the latest days, train the comfort model, predict every hour, forecast the next
commute windows, and report each step.

    python -m weather_assets [--days 14] [--no-train]

Ingestion and predictions run as single-run backfills of all the hours; training uses them all; the forecast
scores KMA's newest settled short-term forecast issue.

It runs the jobs' assets the UI launches, in this process, on whatever the environment configures (embedded
defaults when nothing is set). Runs are recorded in ``$DAGSTER_HOME`` when it is set (the repository, whose
dagster.yaml is the embedded instance ``dg dev`` uses, shows them in the UI); otherwise in a throwaway instance.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from weather_assets import runs
from weather_assets.definitions import defs
from weather_assets.defs.assets.model import ComfortModelConfig
from weather_assets.defs.jobs import forecast_job, ingest_job, predict_job, train_job
from weather_assets.defs.partitions import hourly, range_tags
from weather_assets.defs.resources.predictions_db import DatabaseWriteError
from weather_assets.domain import comfort
from weather_assets.domain.commute import WINDOWS, newest_per_hour, next_window, window_start, worst_hour
from weather_assets.domain.hours import KST, current_hour, kst_now, partition_key
from weather_assets.domain.stations import station_names
from weather_assets.domain.tables import FORECASTS, PREDICTIONS
from weather_assets.environment import KMA_POLL_SECONDS, KMA_WAIT_MINUTES, Env, whole_number
from weather_assets.kma.forecast import REACH, settled_issue

MIN_TRAINING_HOURS = ComfortModelConfig().min_hours
CHUNK_HOURS = 31 * 24


@contextmanager
def built_resource(key: str) -> Iterator[Any]:
    """The code location's resource `key`, built as a run builds it (its settings resolved), for one block."""
    with dg.build_resources({key: defs.resources[key]}) as built:
        yield getattr(built, key)


def latest_hours(count: int, now: datetime | None = None) -> list[datetime]:
    """The `count` KST hours that end with the last complete one (KMA has surely published it)."""
    current = current_hour(now)
    return [current - timedelta(hours=offset) for offset in range(count, 0, -1)]


def rounded(values: pd.Series, decimals: int = 1) -> pd.Series:
    """`values` rounded for print, never as -0.0 (a mean of -0.04 to one decimal): adding 0.0 makes it 0.0."""
    return values.round(decimals) + 0.0


def summarize(hours: list[datetime]) -> tuple[pd.DataFrame, str]:
    """Per-station summary of the hours' feature files, read back from the lake, and the lake's root."""
    with built_resource("lake") as lake:
        frame = lake.read_features(hours)
        root = lake.root
    return station_summary(frame), root


def station_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per station of feature rows: their hours, and their measurements' extremes, means and rain, to 0.1."""
    figures = frame.groupby(["station_id", "station_name", "region"]).agg(
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
    measured = figures.columns.drop("hours")
    return figures.assign(**{column: rounded(figures[column]) for column in measured}).reset_index()


def latest_scores(hour: datetime) -> pd.DataFrame:
    """The hour's predictions per station, read back from the predictions table."""
    with built_resource("database") as database:
        rows = database.rows(PREDICTIONS, hour, hour + timedelta(hours=1))
    names = station_names()
    return pd.DataFrame(
        {
            "station_id": rows["station_id"],
            "station": rows["station_id"].map(names),
            "region": rows["region"],
            "comfort": rounded(rows["comfort_score"]),
            "label": rows["comfort_score"].map(comfort.label),
            "temperature": rows["temperature"],
            "humidity": rows["humidity"],
            "rain_mm": rows["precipitation"],
            "pm10": rounded(rows["pm10"], 0),
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


def settings_problem() -> str | None:
    """What is wrong with the KMA settings, found before anything is written (a run would find it later, and
    Dagster's own message for a wait that is no whole number omits the range)."""
    try:
        whole_number(Env.KMA_POLL_SECONDS, KMA_POLL_SECONDS)
        whole_number(Env.KMA_WAIT_MINUTES, KMA_WAIT_MINUTES)
        with built_resource("kma") as kma:
            kma.station_ids()
    except ValueError as error:
        return f"{error}; nothing was started"
    return None


def database_problem() -> str | None:
    """Whether predictions can be written, proved before ingest and training spend minutes (nothing is written)."""
    with built_resource("database") as database:
        try:
            database.check_writable()
        except DatabaseWriteError as error:
            return f"the predictions database is not writable, so nothing was started: {error} (WEATHER_DB_URL)"
    return None


def chunked(hours: list[datetime]) -> list[list[datetime]]:
    """The hours in runs of at most 31 days: KMA's longest range call, and a progress line per run."""
    return [hours[start : start + CHUNK_HOURS] for start in range(0, len(hours), CHUNK_HOURS)]


def ingest(hours: list[datetime], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The hours, as single-run backfills of at most 31 days, with a line per run when there are several."""
    chunks = chunked(hours)
    done = 0
    for chunk in chunks:
        result = runs.materialize_here(ingest_job.selection, instance, tags=range_tags(chunk[0], chunk[-1]))
        if not result.success:
            return result
        done += len(chunk)
        if len(chunks) > 1:
            print(f"  ingested {done}/{len(hours)} hours (to {partition_key(chunk[-1])})", flush=True)
    return result


def predict(hours: list[datetime], instance: dg.DagsterInstance) -> bool:
    """Every hour scored into the predictions table (31 days per run, a line per run when there are several),
    and the newest hour's comfort per station printed."""
    print("\nPredicting", flush=True)
    chunks = chunked(hours)
    counts = {"dagster/row_count": 0, "rows_inserted": 0, "rows_updated": 0}
    for done, chunk in enumerate(chunks, start=1):
        predicted = runs.materialize_here(predict_job.selection, instance, tags=range_tags(chunk[0], chunk[-1]))
        if not succeeded(predicted):
            return False
        written = runs.metadata(predicted, "weather_predictions")
        counts = {key: count + written[key] for key, count in counts.items()}
        if len(chunks) > 1:
            hours_done = sum(len(chunk) for chunk in chunks[:done])
            print(f"  predicted {hours_done}/{len(hours)} hours (to {partition_key(chunk[-1])})", flush=True)
    print(
        f"{counts['dagster/row_count']} predictions upserted ({counts['rows_inserted']} new, "
        f"{counts['rows_updated']} updated) into {written['table']}.\n"
    )
    print(f"Comfort at {partition_key(hours[-1])} KST:")
    print(latest_scores(hours[-1]).to_string(index=False))
    return True


def forecast(instance: dg.DagsterInstance) -> bool:
    """KMA's newest settled forecast issue scored, and each station's next commute windows printed.

    Settled (`kma.forecast.settled_issue`): KMA should have served it for all of the publication wait, so a run
    never polls in this process for a late issue, and its first hour has begun, so it forecasts the current hour.
    """
    with built_resource("kma") as kma:
        wait = timedelta(minutes=kma.publication_wait_minutes)
    issue = settled_issue(kst_now(), wait)
    print(f"\nForecasting (KMA's issue of {partition_key(issue)} KST)", flush=True)
    if not succeeded(runs.materialize_here(forecast_job.selection, instance, partition_key=partition_key(issue))):
        return False
    print("The next commute windows (the worst hour decides):")
    print(commute_windows(kst_now()).to_string(index=False))
    return True


def commute_windows(now: datetime) -> pd.DataFrame:
    """Per station, the next morning and evening windows judged by the worst hour, each hour from the newest
    stored issue that forecasts it (`commute.newest_per_hour`, the read API's rule)."""
    windows = sorted((next_window(kind, now), kind) for kind in WINDOWS)  # the sooner window first
    reach = windows[0][0][0] - REACH  # the oldest issue that may forecast a window's hour
    with built_resource("database") as database:
        rows = newest_per_hour(database.rows(FORECASTS, reach))
    names = station_names()
    lines = []
    for hours, kind in windows:
        window = f"{kind} {window_start(kind, hours):%a %m-%d %H}-{hours[-1] + timedelta(hours=1):%H}"
        for station_id, station_rows in rows[rows["forecast_datetime"].isin(hours)].groupby("station_id"):
            worst = worst_hour(station_rows.to_dict("records"))
            lines.append(
                {
                    "station_id": station_id,
                    "station": names.get(station_id, station_id),
                    "window": window,
                    "comfort": round(worst["comfort_score"], 1),
                    "label": comfort.label(worst["comfort_score"]),
                    "worst_hour": f"{worst['forecast_datetime']:%H}:00",
                    "temperature": worst["temperature"],
                    "rain_mm": worst["precipitation"],
                }
            )
    return pd.DataFrame(lines)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[datetime]]:
    """The arguments and the hours they name, checked before anything is written (argparse exits on a problem)."""
    summary = " ".join(__doc__.split("\n\n")[0].split())  # the docstring's first paragraph, unwrapped
    parser = argparse.ArgumentParser(prog="python -m weather_assets", description=summary)
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
    # MLflow sets its loggers' level from this when it loads (lazily, to train): its store set-up chatter off, as
    # the report says what matters; its warnings still show, and a user's own setting wins.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    problem = settings_problem() or (None if args.no_train else database_problem())
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
    if not succeeded(trained := runs.materialize_here(train_job.selection, instance)):
        return 1
    print(report_training(runs.metadata(trained, "comfort_model")))

    return 0 if predict(hours, instance) and forecast(instance) else 1
