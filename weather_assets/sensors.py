"""The sensor that follows the data: each new or replaced feature file in the lake requests a predict run for its hour.

A tick costs what is new, not what the bucket holds: feature keys sort in time order, so the tick lists from
a bounded window of recent hours before the newest key it has seen (S3's ``StartAfter``), which covers the
new files and the recent ones that may have been replaced. ``run_key`` is the key with its version (ETag on
S3, size and modification time locally): a replaced file runs once more, an unchanged one never again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import dagster as dg

from weather_assets.jobs import predict_job
from weather_assets.lake import FEATURES_PREFIX, Lake, features_key, hour_of_features_key
from weather_assets.partitions import partition_key

RECHECK_HOURS = 48  # recent hours re-checked for replaced files on every tick
MAX_REQUESTS = 200  # per tick; the rest follows on the next ticks, in key order


@dataclass
class Scan:
    """What one tick found: runs to request (key, version, partition), keys that name no hour, the new cursor."""

    requests: list[tuple[str, str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    listed: int = 0
    cursor: dict[str, object] = field(default_factory=dict)


def scan(lake: Lake, cursor: dict[str, object] | None, max_requests: int = MAX_REQUESTS) -> Scan:
    """One tick's work: list from the re-check window on, compare versions with the cursor, advance it.

    The cursor holds the newest key handled and the versions of the keys in the re-check window. On the
    first tick (no cursor) the whole prefix is listed once.
    """
    cursor = cursor or {}
    last_key = str(cursor.get("last_key", ""))
    seen: dict[str, str] = dict(cursor.get("seen", {}))  # type: ignore[arg-type]
    last_hour = hour_of_features_key(last_key)
    start_after = features_key(last_hour - timedelta(hours=RECHECK_HOURS)) if last_hour else ""
    result = Scan()
    for obj in lake.list(FEATURES_PREFIX, start_after):
        result.listed += 1
        hour = hour_of_features_key(obj.key)
        if hour is None:
            result.skipped.append(obj.key)
            continue
        if seen.get(obj.key) == obj.version:
            continue
        if len(result.requests) >= max_requests:
            break
        result.requests.append((obj.key, obj.version, partition_key(hour)))
        seen[obj.key] = obj.version
        last_key = max(last_key, obj.key)
    newest = hour_of_features_key(last_key)
    window_start = features_key(newest - timedelta(hours=RECHECK_HOURS)) if newest else ""
    result.cursor = {"last_key": last_key, "seen": {k: v for k, v in seen.items() if k > window_start}}
    return result


@dg.sensor(
    job=predict_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests a predict run for the hour of each new or replaced features/ file in the lake.",
)
def new_feature_files(context: dg.SensorEvaluationContext, lake: Lake) -> dg.SensorResult:
    """Follows `features/` in the lake (local folder or S3) and predicts each hour whose file is new or replaced."""
    result = scan(lake, json.loads(context.cursor) if context.cursor else None)
    for key in result.skipped:
        context.log.info(f"skipped {key}: it names no hour (expected features/YYYYMMDDHHMI.parquet)")
    context.log.info(f"listed {result.listed} keys, requested {len(result.requests)} runs")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"{key}@{version}", partition_key=partition, tags={"weather/features_key": key})
            for key, version, partition in result.requests
        ],
        cursor=json.dumps(result.cursor),
    )
