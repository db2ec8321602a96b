"""Model monitoring: 30 days x 10 stations, one model_monitoring run per KST day, in process.

    python -m benchmarks.monitoring [--days 30]

Ingests the days on the offline generator and trains a champion on them (not timed), then materializes
model_monitoring for each day in turn, as a backfill of days does (one run per day), and prints the seconds in all
and per day, the first run apart (it loads the champion from MLflow). Target: the 30 days within 10 s.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from datetime import datetime, timedelta

import dagster as dg

from weather_assets import runs
from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.assets.monitoring import model_monitoring
from weather_assets.defs.partitions import range_tags
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient

END = datetime(2026, 11, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    start = END - timedelta(days=args.days)
    with tempfile.TemporaryDirectory() as root, dg.DagsterInstance.ephemeral() as instance:
        lake, registry = Lake(data_dir=root), ModelRegistry(data_dir=root)
        ingested = runs.materialize_here(
            [kma_observations, weather_features],
            instance,
            resources={"kma": OfflineKMAClient(), "lake": lake},
            tags=range_tags(start, END - timedelta(hours=1)),
        )
        assert ingested.success, runs.failures(ingested)
        resources = {"lake": lake, "mlflow": MLflowTracking(registry=registry), "model_registry": registry}
        trained = runs.materialize_here([comfort_model], instance, resources=resources)
        assert trained.success, runs.failures(trained)
        seconds = []
        for day in range(args.days):
            key = (start + timedelta(days=day)).strftime("%Y-%m-%d")
            started = time.perf_counter()
            monitored = runs.materialize_here([model_monitoring], instance, partition_key=key, resources=resources)
            seconds.append(time.perf_counter() - started)
            assert monitored.success, runs.failures(monitored)
    print(
        f"monitoring {args.days} days x 10 stations: {sum(seconds):.1f} s in all (target: within 10 s); first day "
        f"{seconds[0]:.2f} s (loads the champion), then median {statistics.median(seconds[1:]):.2f} s a day"
    )


if __name__ == "__main__":
    main()
