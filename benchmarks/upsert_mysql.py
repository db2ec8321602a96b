"""The tables IO manager's upsert throughput on MySQL/MariaDB, against a plain multi-row INSERT through one driver.

    python -m benchmarks.upsert_mysql [--rows 100000] [--rounds 3] [--url mysql+pymysql://root@127.0.0.1:3306]

In a scratch database, each round on fresh tables: (a) the IO manager's upsert of the rows into an empty table,
(b) the same upsert again, over the existing rows (all updates), (c) a plain multi-row INSERT of the same rows
(their lineage and the run id included), already as tuples, into an empty twin table with pymysql's executemany,
the floor. Prints the best round's rows per second and the ratios a/c and b/c. Targets: (a) at least 0.9x of (c)
and at least 20,000 rows/s.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import sqlalchemy as sa

from weather_assets.defs.resources.predictions_db import ComfortDatabase, TablesIOManager, stored_in
from weather_assets.domain.tables import PREDICTIONS, predictions_table
from weather_assets_tests.scratch import scratch_database

RUN_ID = "0b9e3f4a-6c1d-4e2f-9a8b-7c6d5e4f3a2b"


def rows(count: int) -> pd.DataFrame:
    """`count` predictions: 10 stations an hour, as many hours as it takes."""
    random = np.random.default_rng(0)
    hours = [datetime(2025, 1, 1) + timedelta(hours=i // 10) for i in range(count)]
    return pd.DataFrame(
        {
            "prediction_datetime": hours,
            "station_id": [100 + i % 10 for i in range(count)],
            "region": "Seoul",
            "comfort_score": random.uniform(0, 100, count).round(2),
            "temperature": random.normal(12, 8, count).round(1),
            "humidity": random.uniform(20, 100, count).round(1),
            "precipitation": 0.0,
            "pm10": random.uniform(5, 120, count).round(0),
            "wind_speed": random.uniform(0, 10, count).round(1),
            "pressure": random.normal(1015, 6, count).round(1),
            "model_name": "comfort-model/1",
            # the lineage real predictions carry (the IO manager adds the writing run's id)
            "model_version": "1",
            "mlflow_run_id": "5d1f0c9e2b7a4c3d8e6f1a2b3c4d5e6f",
            "input_object": [f"features/{hour:%Y%m%d%H}00.parquet" for hour in hours],
            "input_sha256": "9f2c" * 16,
        }
    )[list(PREDICTIONS.given)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds (a busy machine is noisy)")
    parser.add_argument("--url", default="mysql+pymysql://root@127.0.0.1:3306")
    args = parser.parse_args()
    server = sa.make_url(args.url)
    frame = rows(args.rows)
    timings: dict[str, float] = {}
    with scratch_database(args.url, "bench_weather") as url:
        database = ComfortDatabase(url=url)
        for _ in range(args.rounds):
            for label, seconds in one_round(database, frame).items():
                timings[label] = min(seconds, timings.get(label, seconds))

    rate = {label: args.rows / seconds for label, seconds in timings.items()}
    print(f"{args.rows:,} rows on {server.host}:{server.port or 3306}, best of {args.rounds} rounds")
    print(f"(a) IO manager upsert into an empty table:  {rate['a']:>9,.0f} rows/s  ({timings['a']:.2f} s)")
    print(f"(b) IO manager upsert over existing rows:   {rate['b']:>9,.0f} rows/s  ({timings['b']:.2f} s)")
    print(f"(c) plain multi-row INSERT (the floor):     {rate['c']:>9,.0f} rows/s  ({timings['c']:.2f} s)")
    print(
        f"a/c = {rate['a'] / rate['c']:.2f} (target: at least 0.9; and (a) at least 20,000 rows/s), "
        f"b/c = {rate['b'] / rate['c']:.2f}"
    )


def one_round(database: ComfortDatabase, frame: pd.DataFrame) -> dict[str, float]:
    """Seconds for (a), (b) and (c) on fresh tables; creating and dropping them is outside the timings."""
    client = database.client(PREDICTIONS)
    twin = predictions_table("weather_predictions_twin")
    with client.engine.begin() as connection:
        for table in (client.table, twin):
            table.drop(connection, checkfirst=True)
            table.create(connection)
    timings = {}
    io_manager = TablesIOManager(database=database)
    for label in ("a", "b"):
        started = time.perf_counter()
        context = dg.build_output_context(definition_metadata=stored_in(PREDICTIONS), run_id=RUN_ID)
        io_manager.handle_output(context, frame)
        timings[label] = time.perf_counter() - started

    now = datetime.now(UTC).replace(tzinfo=None)
    values = frame.assign(dagster_run_id=RUN_ID, created_at=now, updated_at=now).astype(object)
    values = values.where(values.notna(), None)
    columns = list(values.columns)
    statement = f"INSERT INTO {twin.name} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    records = list(values.itertuples(index=False, name=None))
    connection = client.engine.raw_connection()
    try:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for start in range(0, len(records), 5000):
                cursor.executemany(statement, records[start : start + 5000])
        connection.commit()
        timings["c"] = time.perf_counter() - started
    finally:
        connection.close()
    return timings


if __name__ == "__main__":
    main()
