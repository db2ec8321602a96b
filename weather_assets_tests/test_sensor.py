"""The feature-file sensor against moto's S3 server (and a local folder): new, unchanged, replaced, unnamed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg

from weather_assets.lake import Lake, features_key
from weather_assets.sensors import RECHECK_HOURS, new_feature_files, scan

FIRST = datetime(2026, 11, 26, 6)


def tick(lake: Lake, cursor: str | None) -> tuple[list[dg.RunRequest], str]:
    """One evaluation of the real sensor: its run requests and its new cursor."""
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(cursor=cursor, resources={"lake": lake}, instance=instance) as context,
    ):
        result = new_feature_files(context)
    return list(result.run_requests or []), result.cursor


def put(bucket: str, key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=f"lake/{key}", Body=body)


def test_three_new_files_then_nothing_then_a_replaced_file(s3_bucket: str) -> None:
    lake = Lake(url=f"s3://{s3_bucket}/lake")
    for offset in range(3):
        put(s3_bucket, features_key(FIRST + timedelta(hours=offset)), b"hour %d" % offset)

    requests, cursor = tick(lake, None)
    assert sorted(r.partition_key for r in requests) == ["2026-11-26-06:00", "2026-11-26-07:00", "2026-11-26-08:00"]
    assert all(
        r.run_key.startswith("features/2026112606") or r.run_key.startswith("features/20261126") for r in requests
    )
    assert len({r.run_key for r in requests}) == 3

    requests, cursor = tick(lake, cursor)
    assert requests == []

    put(s3_bucket, features_key(FIRST + timedelta(hours=1)), b"hour 1, replaced")
    requests, cursor = tick(lake, cursor)
    assert [r.partition_key for r in requests] == ["2026-11-26-07:00"]

    requests, _ = tick(lake, cursor)
    assert requests == []


def test_keys_that_name_no_hour_are_skipped(s3_bucket: str) -> None:
    lake = Lake(url=f"s3://{s3_bucket}/lake")
    put(s3_bucket, features_key(FIRST), b"x")
    put(s3_bucket, "features/notes.txt", b"not an hour")
    put(s3_bucket, "features/2026-11-26.parquet", b"not an hour either")

    result = scan(lake, None)

    assert [partition for _, _, partition in result.requests] == ["2026-11-26-06:00"]
    assert sorted(result.skipped) == ["features/2026-11-26.parquet", "features/notes.txt"]


def test_a_tick_lists_what_is_new_not_the_whole_bucket(s3_bucket: str) -> None:
    """5,000 existing hours: once caught up, a tick lists the new keys and the re-check window only."""
    lake = Lake(url=f"s3://{s3_bucket}/lake")
    hours = [FIRST - timedelta(hours=h) for h in range(5000)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda hour: put(s3_bucket, features_key(hour), b"old"), hours))
    caught_up = scan(lake, None, max_requests=10_000)
    assert caught_up.listed == 5000 and len(caught_up.requests) == 5000

    put(s3_bucket, features_key(FIRST + timedelta(hours=1)), b"new")
    put(s3_bucket, features_key(FIRST + timedelta(hours=2)), b"new")
    result = scan(lake, caught_up.cursor)

    assert [partition for _, _, partition in result.requests] == ["2026-11-26-07:00", "2026-11-26-08:00"]
    assert result.listed <= RECHECK_HOURS + 2
    assert len(json.dumps(result.cursor)) < 10_000  # the cursor stays small too


def test_local_folder_lake_detects_new_and_replaced_files(tmp_path: Path) -> None:
    lake = Lake(data_dir=str(tmp_path))
    lake.write(features_key(FIRST), b"first")
    requests, cursor = tick(lake, None)
    assert [r.partition_key for r in requests] == ["2026-11-26-06:00"]

    lake.write(features_key(FIRST + timedelta(hours=1)), b"second")
    lake.write(features_key(FIRST), b"first, replaced by a rerun")
    requests, cursor = tick(lake, cursor)

    assert sorted(r.partition_key for r in requests) == ["2026-11-26-06:00", "2026-11-26-07:00"]
    assert tick(lake, cursor)[0] == []
