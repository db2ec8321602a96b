"""Comfort model: training time on 30 days x 10 stations, and warm champion predictions for 10 rows.

    python -m benchmarks.training [--days 30] [--repeats 200]

Ingests the days on the offline generator, materializes comfort_model once with a SQLite MLflow store
(a cold store: the first run also creates the database), then times a second materialization, and
`load_champion(...).predict` on one hour's 10 rows after a first, loading call. Targets: training within
60 s; a warm prediction for 10 rows within 50 ms.
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
from weather_assets.defs.partitions import range_tags
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import ModelRegistry, load_champion
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient

END = datetime(2026, 11, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as root, dg.DagsterInstance.ephemeral() as instance:
        lake = Lake(data_dir=root)
        tracking = MLflowTracking(registry=ModelRegistry(data_dir=root))
        ingested = runs.materialize_here(
            [kma_observations, weather_features],
            instance,
            resources={"kma": OfflineKMAClient(), "lake": lake},
            tags=range_tags(END - timedelta(days=args.days), END - timedelta(hours=1)),
        )
        assert ingested.success, runs.failures(ingested)
        seconds = []
        for _ in range(2):
            started = time.perf_counter()
            trained = runs.materialize_here([comfort_model], instance, resources={"lake": lake, "mlflow": tracking})
            seconds.append(time.perf_counter() - started)
            assert trained.success, runs.failures(trained)
        meta = trained.get_asset_materialization_events()[0].materialization.metadata

        rows = lake.read_features([END - timedelta(hours=1)])
        uri = tracking.registry.uri()
        started = time.perf_counter()
        load_champion(uri).predict(rows)
        cold = time.perf_counter() - started
        warm = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            load_champion(uri).predict(rows)
            warm.append(time.perf_counter() - started)

    rmse = meta["val_rmse_hist_gradient_boosting"].value
    print(
        f"training on {args.days} days x 10 stations: {seconds[0]:.1f} s with a new MLflow store, "
        f"{seconds[1]:.1f} s warm (target: within 60 s); champion validation RMSE {rmse:.2f} (target: at most 2.0)"
    )
    warm.sort()
    print(
        f"champion predict for {len(rows)} rows: first call {cold * 1000:.0f} ms (loads the model); warm "
        f"median {statistics.median(warm) * 1000:.1f} ms, p95 {warm[int(len(warm) * 0.95)] * 1000:.1f} ms "
        f"over {args.repeats} calls (target: within 50 ms)"
    )


if __name__ == "__main__":
    main()
