"""Read API cache hits under load: uvicorn on MariaDB-backed predictions, 50 concurrent clients from this process.

    python benchmarks/api_latency.py [--url mysql+pymysql://root@127.0.0.1:3306] [--requests 5000] [--clients 50]

Fills a scratch database with a month of predictions for station 108, serves the API with uvicorn (2 workers)
on loopback, then sends GET /comfort for stored hours from 50 concurrent clients (asyncio, httpx) in this
second process. Prints latency p50 and p99 and requests per second. Targets: p50 within 5 ms, p99 within 25 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import dagster as dg
import httpx
import pandas as pd
import sqlalchemy as sa

from weather_assets.api import current_hour
from weather_assets.mysql_io_manager import MySQLIOManager
from weather_assets.predictions_table import OUTPUT_COLUMNS


async def load(url: str, hours: list[str], total: int, clients: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    counter = iter(range(total))
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=clients)) as client:

        async def worker() -> None:
            for n in counter:
                started = time.perf_counter()
                answer = await client.get("/comfort", params={"station_id": 108, "at": hours[n % len(hours)]})
                latencies.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return latencies, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    server = sa.make_url(args.url)
    database = f"bench_api_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    db_url = server.set(database=database).render_as_string(hide_password=False)
    try:
        now = current_hour()
        hours = [now - timedelta(hours=h) for h in range(1, 721)]
        frame = pd.DataFrame(
            {"prediction_datetime": hours, "station_id": 108, "region": "Seoul", "comfort_score": 61.5,
             "temperature": 12.0, "humidity": 55.0, "precipitation": 0.0, "pm10": 30.0, "wind_speed": 2.0,
             "pressure": 1015.0, "model_name": "comfort-model/1"}
        )[list(OUTPUT_COLUMNS)]  # fmt: skip
        MySQLIOManager(url=db_url).handle_output(dg.build_output_context(), frame)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "WEATHER_API_DB_URL": db_url, "WEATHER_STATIONS": "108"}
        command = [sys.executable, "-m", "uvicorn", "weather_assets.api:app", "--port", str(port), "--workers", "2",
                   "--log-level", "warning"]  # fmt: skip
        process = subprocess.Popen(command, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(60):
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.ConnectError:
                    time.sleep(0.5)
            keys = [hour.isoformat() for hour in hours]
            asyncio.run(load(url, keys, 500, args.clients))  # warm-up: connections, pools, imports
            latencies, seconds = asyncio.run(load(url, keys, args.requests, args.clients))
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}")
        admin.dispose()
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99)]
    print(f"GET /comfort cache hits, {args.clients} concurrent clients, {args.requests} requests on MariaDB:")
    print(
        f"p50 {p50 * 1000:.1f} ms (target: within 5 ms), p99 {p99 * 1000:.1f} ms (target: within 25 ms), "
        f"{args.requests / seconds:,.0f} requests/s"
    )


if __name__ == "__main__":
    main()
