"""Feature-file sensor tick time against a lake of 20,000 written hours and one of 100, on moto's S3 server.

    python -m benchmarks.sensor_tick [--small 100] [--large 20000] [--ticks 20]

Each hour is a feature object and its arrival record (one write per hour, the most records a lake can
have); the hours are those of the first year of partitions, rewritten past it (the sensor skips records of hours
that are not partitions). For each lake: the sensor catches up once, then each timed tick finds one new hour.
Prints the median tick time of both and their ratio. Target: ratio at most 2 (a tick costs the new objects, not
the bucket).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
from moto.server import ThreadedMotoServer

from weather_assets.defs.partitions import hourly
from weather_assets.defs.resources.lake import Arrival, Lake, arrival_key, features_key
from weather_assets.defs.sensors import new_feature_files, scan
from weather_assets.domain.hours import KST

START = hourly.start.astimezone(KST).replace(tzinfo=None)
YEAR = 365 * 24
WRITTEN = datetime(2026, 1, 1, tzinfo=UTC)


def tick_seconds(bucket: str, existing: int, ticks: int) -> float:
    """Median seconds of a sensor tick that finds one new file, after catching up with `existing` files."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)

    def put(n: int) -> None:
        """Hour n's feature file, and its arrival record written a minute after hour n-1's."""
        hour = START + timedelta(hours=n % YEAR)
        s3.put_object(Bucket=bucket, Key=f"lake/{features_key(hour)}", Body=b"x")
        record = Arrival(f"run-{n}", [hour], predicted_in_run=False).to_json()
        key = arrival_key(WRITTEN + timedelta(minutes=n), f"run-{n}")
        s3.put_object(Bucket=bucket, Key=f"lake/{key}", Body=record)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(existing)))
    lake = Lake(url=f"s3://{bucket}/lake")
    seconds = []
    with dg.instance_for_test() as instance:
        cursor = json.dumps(scan(lake, None, instance, max_records=existing).cursor)
        for n in range(ticks):
            put(existing + n)
            with dg.build_sensor_context(cursor=cursor, resources={"lake": lake}, instance=instance) as context:
                started = time.perf_counter()
                result = new_feature_files(context)
                seconds.append(time.perf_counter() - started)
            assert len(result.run_requests) == 1
            cursor = result.cursor
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=20_000)
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the server's log of every request, off
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        small = tick_seconds("bench-small", args.small, args.ticks)
        large = tick_seconds("bench-large", args.large, args.ticks)
    finally:
        server.stop()
    print(
        f"sensor tick, one new file: {small * 1000:.1f} ms with {args.small:,} existing objects, "
        f"{large * 1000:.1f} ms with {args.large:,} (median of {args.ticks} ticks)"
    )
    print(f"ratio {large / small:.2f} (target: at most 2)")


if __name__ == "__main__":
    main()
