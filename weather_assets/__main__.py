"""The main command: ingest the latest hours as one single-run backfill and print a per-station summary.

    python -m weather_assets [--hours 24]

It runs the same job the UI launches, in this process, on whatever the environment configures (embedded
defaults when nothing is set). Runs are recorded in ``$DAGSTER_HOME`` when it is set, so ``dagster dev``
with the same ``DAGSTER_HOME`` shows them; otherwise in a throwaway instance.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

warnings.filterwarnings("ignore", category=dg.BetaWarning)  # single-run backfill policy: stable in use here

from weather_assets import features  # noqa: E402
from weather_assets.definitions import defs  # noqa: E402
from weather_assets.lake import features_key  # noqa: E402
from weather_assets.partitions import KST, partition_key, range_tags  # noqa: E402


def latest_hours(count: int, now: datetime | None = None) -> list[datetime]:
    """The `count` KST hours that end with the last complete one (KMA has surely published it)."""
    current = (now or datetime.now(KST)).astimezone(KST).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    return [current - timedelta(hours=offset) for offset in range(count, 0, -1)]


def ingest(hours: list[datetime], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Materialize the ingest assets for consecutive hours in one run, as a single-run backfill does."""
    return defs.resolve_job_def("ingest").execute_in_process(
        instance=instance,
        tags=range_tags(hours[0], hours[-1]),
        # The command prints its own summary and errors; the run's full log is in the instance (and the UI).
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        raise_on_error=False,
    )


def summarize(hours: list[datetime]) -> tuple[pd.DataFrame, str]:
    """Per-station summary of the hours' feature files, read back from the lake, and the lake's root."""
    with dg.build_resources({"lake": defs.resources["lake"]}) as resources:
        frame = pd.concat([features.from_parquet(resources.lake.read(features_key(hour))) for hour in hours])
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weather_assets", description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24, help="how many of the latest complete hours (default 24)")
    args = parser.parse_args(argv)
    if args.hours < 1:
        parser.error("--hours must be at least 1")
    hours = latest_hours(args.hours)
    instance = dg.DagsterInstance.get() if os.getenv("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    print(f"Ingesting {partition_key(hours[0])} .. {partition_key(hours[-1])} KST ({len(hours)} hours)")
    result = ingest(hours, instance)
    if not result.success:
        for event in result.all_events:
            if event.event_type == dg.DagsterEventType.STEP_FAILURE:
                error = event.step_failure_data.error
                print(f"{event.step_key} failed: {(error.cause or error).message.strip()}", file=sys.stderr)
        return 1
    source = next(
        event.materialization.metadata["source"].value
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("kma_observations")
    )
    summary, lake_root = summarize(hours)
    print(f"Source: {source}. Lake: {lake_root}\n")
    print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
