"""Read API cache hits under load: uvicorn on MariaDB-backed predictions, 50 concurrent clients from wrk.

    python -m benchmarks.api_latency [--url mysql+pymysql://root@127.0.0.1:3306] [--clients 50] [--seconds 15]

Fills a scratch database with a month of predictions for station 108 and serves the API with uvicorn (2 workers)
on loopback. wrk (Debian's package `wrk`), a second process, sends GET /comfort for stored hours (720 of them, in
turn: each worker keeps them all) over 50 connections, each a client that waits for its answer and then thinks: a
random 0 to 2x the mean think time, then back to back (the server saturated). The same back-to-back load on
benchmarks/floor_app.py (same uvicorn, FastAPI and response model, a constant answer, no database) right after
the API's gives the floor that the server and framework themselves set on this machine in the same minutes.
Prints p50, p99, the slowest answer and requests per second for each load, and the saturated throughput as a
fraction of the floor's. Then a flood: 200 concurrent requests for distinct hours that are not stored, and how many
Dagster runs they started. Then cache hits while an on-demand run computes the current hour in the API's embedded
mode (no DAGSTER_GRAPHQL_URL): uvicorn with one worker, so every hit shares the worker that starts the run; the
100 ms think-time load, without a run, then from the request that starts the run until that request's answer (a
champion is trained first by the main command, so the run ingests, builds features and predicts as the schedule's
runs do).
Targets: with think time p50 within 5 ms and p99 within 25 ms, also during the run; saturated, at least half the
floor's requests per second; the flood starts no run.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import pandas as pd
import requests

from weather_assets.defs.resources.predictions_db import ComfortDatabase
from weather_assets.domain.hours import current_hour, partition_key
from weather_assets.domain.tables import PREDICTIONS
from weather_assets_tests.scratch import scratch_database, unconfigured_environment

HERE = Path(__file__).resolve().parent
P50_TARGET_MS, P99_TARGET_MS = 5.0, 25.0  # with think time
FLOOR_TARGET = 0.5  # saturated: the fraction of the floor's requests per second
SATURATED = "back to back (saturated)"
# wrk's Lua hooks: requests cycle through the stored hours; `done` prints what this script reads back.
SCRIPT = """
local hours = {%(hours)s}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/comfort?station_id=108&at=" .. hours[(n %% #hours) + 1])
end
if %(think)d > 0 then
  delay = function() return math.random(0, 2 * %(think)d) end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max, e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@contextlib.contextmanager
def uvicorn(app: str, env: dict[str, str], port: int, stored: datetime, workers: int = 2) -> Iterator[str]:
    """`app` served by uvicorn with `workers` worker processes on loopback, until the block ends; it is up once it
    answers for the `stored` hour (a hit, that computes nothing, whenever the clock's hour turns)."""
    command = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(HERE), "--port", str(port), "--workers",
               str(workers), "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, env=unconfigured_environment() | env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):  # a worker still starting
                if requests.get(f"{url}/comfort", params={"at": stored.isoformat()}, timeout=5).ok:
                    break
            time.sleep(0.5)
        else:
            raise SystemExit(f"{app} did not answer on {url}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


Latency = tuple[float, float, float, float]  # p50, p99 and slowest in ms, requests per second


def wrk_command(url: str, script: Path, clients: int, seconds: int) -> list[str]:
    """wrk with one thread; an answer slower than 2 s (wrk's default timeout) counts in the latency, not as failed."""
    return ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]


def warm_up(url: str, script: Path, clients: int) -> None:
    """Three seconds of `script`, not measured: connections, pools and each worker's kept answers."""
    subprocess.run(wrk_command(url, script, clients, 3), capture_output=True, check=True)


def wrk(url: str, script: Path, clients: int, seconds: int) -> Latency:
    """The latency figures of one wrk run."""
    done = subprocess.run(wrk_command(url, script, clients, seconds), capture_output=True, text=True, check=True)
    return wrk_result(done.stdout + done.stderr)


def wrk_result(output: str) -> Latency:
    """What the script's `done` printed; any failed request fails the benchmark."""
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.MULTILINE)
    if not found:
        raise SystemExit(f"wrk printed no result:\n{output}")
    count, micros, p50, p99, slowest, errors = map(int, found.groups())
    if errors:
        raise SystemExit(f"{errors} of {count} requests failed:\n{output}")
    return p50 / 1000, p99 / 1000, slowest / 1000, count / (micros / 1e6)


class Measured(NamedTuple):
    rows: list[tuple[str, Latency]]  # the loads on 2 workers
    floor: Latency  # the floor app, saturated, right after the API
    flood_statuses: list[int]
    flood_runs: int
    alone: Latency  # one worker, no run
    during: Latency  # one worker, during a run
    status: int  # the answer to the request that had the hour computed
    seconds: float  # and its time


def during_run(url: str, script: Path, clients: int, hour: datetime) -> tuple[Latency, int, float]:
    """Cache hits under `script` from the request that has `hour` computed until its answer; with that answer's
    status and seconds. wrk runs until interrupted, then prints its figures."""
    load = subprocess.Popen(wrk_command(url, script, clients, 600), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    try:
        started = time.monotonic()
        answer = requests.get(f"{url}/comfort", params={"station_id": 108, "at": hour.isoformat()}, timeout=300)
        seconds = time.monotonic() - started
    finally:
        load.send_signal(signal.SIGINT)
        output, _ = load.communicate(timeout=30)
    return wrk_result(output), answer.status_code, seconds


def flood(url: str, hours: list[datetime]) -> list[int]:
    """Status codes of concurrent requests, one per hour."""

    def ask(hour: datetime) -> int:
        return requests.get(
            f"{url}/comfort", params={"station_id": 108, "at": hour.isoformat()}, timeout=60
        ).status_code

    with ThreadPoolExecutor(len(hours)) as pool:
        return list(pool.map(ask, hours))


def wrk_scripts(folder: Path, hours: list[datetime]) -> dict[int, Path]:
    """One wrk script per think time (ms), each asking for random stored hours."""
    scripts = {}
    keys = ",".join(f'"{hour:%Y-%m-%dT%H:%M}"' for hour in hours)
    for think in (100, 50, 0):
        scripts[think] = folder / f"think-{think}.lua"
        scripts[think].write_text(SCRIPT % {"hours": keys, "think": think})
    return scripts


def stored(db_url: str, hours: list[datetime]) -> None:
    """The hours' predictions for station 108, written by the platform's database resource."""
    frame = pd.DataFrame(
        {"prediction_datetime": hours, "station_id": 108, "region": "Seoul", "comfort_score": 61.5,
         "temperature": 12.0, "humidity": 55.0, "precipitation": 0.0, "pm10": 30.0, "wind_speed": 2.0,
         "pressure": 1015.0, "model_name": "comfort-model/1"}
    )[list(PREDICTIONS.columns)]  # fmt: skip
    ComfortDatabase(url=db_url).upsert(PREDICTIONS, frame)


def champion(db_url: str, data_dir: Path) -> None:
    """Four days of station 108 ingested, a champion trained and the hours predicted: the main command, as an
    operator starts the platform; so the API's run for an hour does what the schedule's runs do."""
    env = unconfigured_environment() | {"WEATHER_DATA_DIR": str(data_dir), "WEATHER_STATIONS": "108",
                                        "WEATHER_DB_URL": db_url}  # fmt: skip
    subprocess.run([sys.executable, "-m", "weather_assets", "--days", "4"], env=env, check=True, capture_output=True)


def measure(args: argparse.Namespace, folder: Path, scripts: dict[int, Path], now: datetime) -> Measured:
    """The latency rows under each load, the flood's statuses and the runs it started; then, on one worker, cache
    hits without a run and during an on-demand run."""
    rows: list[tuple[str, Latency]] = []
    with scratch_database(args.url, "bench_api") as db_url:
        newest = now - timedelta(hours=1)
        stored(db_url, [now - timedelta(hours=h) for h in range(1, 721)])
        champion(db_url, folder / "weather")
        home = folder / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {"WEATHER_API_DB_URL": db_url, "WEATHER_DB_URL": db_url, "WEATHER_STATIONS": "108",
               "DAGSTER_HOME": str(home), "WEATHER_DATA_DIR": str(folder / "weather"),
               "WEATHER_API_WAIT_SECONDS": "300",  # the run's request waits for its end
               "WEATHER_API_LOCK_SECRET": secrets.token_hex(16)}  # fmt: skip  # root has no password to key locks
        with uvicorn("weather_assets.api:app", env, args.port, newest) as url:
            warm_up(url, scripts[0], args.clients)
            for think, label in ((100, "think 0-200 ms, mean 100"), (50, "think 0-100 ms, mean 50"),
                                 (0, SATURATED)):  # fmt: skip
                rows.append((label, wrk(url, scripts[think], args.clients, args.seconds)))
            with uvicorn("floor_app:app", {}, args.port + 1, newest) as floor_url:  # the API idle meanwhile
                warm_up(floor_url, scripts[0], args.clients)
                floor = wrk(floor_url, scripts[0], args.clients, args.seconds)
            flooded = [now - timedelta(hours=h) for h in range(721, 921)]
            flood_statuses = flood(url, flooded)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            api_runs = instance.get_run_records(dg.RunsFilter(tags={"weather/served_by": "api"}))
        with uvicorn("weather_assets.api:app", env, args.port, newest, workers=1) as url:
            warm_up(url, scripts[0], args.clients)
            alone = wrk(url, scripts[100], args.clients, args.seconds)
            # the hour current now, not at the start: if the hour has turned, the main command predicted that one
            during, status, seconds = during_run(url, scripts[100], args.clients, current_hour())
    keys = {partition_key(hour) for hour in flooded}
    flood_runs = sum(record.dagster_run.tags.get("dagster/partition") in keys for record in api_runs)
    return Measured(rows, floor, flood_statuses, flood_runs, alone, during, status, seconds)


def report(args: argparse.Namespace, measured: Measured) -> None:
    print(f"GET /comfort cache hits on MariaDB; uvicorn, 2 workers; wrk, {args.clients} clients, {args.seconds} s each")
    print(f"{'load':<42}{'p50':>10}{'p99':>10}{'slowest':>10}{'requests/s':>12}")
    one_worker = [("1 worker, think mean 100", measured.alone),
                  ("1 worker, think mean 100, during a run", measured.during)]  # fmt: skip
    floor = measured.floor
    for label, (p50, p99, slowest, rate) in [*measured.rows, *one_worker]:
        if label == SATURATED:
            met = rate >= FLOOR_TARGET * floor[3]
            verdict = f"{rate / floor[3]:.2f}x the floor: target {'met' if met else 'missed'}"
        else:
            verdict = "targets met" if p50 <= P50_TARGET_MS and p99 <= P99_TARGET_MS else "targets missed"
        print(f"{label:<42}{p50:>7.1f} ms{p99:>7.1f} ms{slowest:>7.0f} ms{rate:>12,.0f}   {verdict}")
    p50, p99, slowest, rate = floor
    print(f"{'floor: constant answer, saturated':<42}{p50:>7.1f} ms{p99:>7.1f} ms{slowest:>7.0f} ms{rate:>12,.0f}")
    print(
        f"Targets: with think time p50 within {P50_TARGET_MS:g} ms, p99 within {P99_TARGET_MS:g} ms; saturated, at "
        f"least {FLOOR_TARGET:g}x the floor's requests per second (p50 is then about clients / throughput)."
    )
    statuses = ", ".join(f"{code} x{count}" for code, count in sorted(Counter(measured.flood_statuses).items()))
    print(f"Flood: 200 concurrent requests for distinct unstored hours: {statuses}; runs started: "
          f"{measured.flood_runs} (target: 0)")  # fmt: skip
    print(f"During a run (one worker, its embedded mode): the request that had the current hour computed answered "
          f"{measured.status} after {measured.seconds:.1f} s; the row measures the hits meanwhile.")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--port", type=int, default=8765, help="the API's port on loopback; the floor app takes the next"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed as the load generator: apt-get install -y wrk")
    now = current_hour()
    folder = Path(tempfile.mkdtemp(prefix="api-latency-"))
    scripts = wrk_scripts(folder, [now - timedelta(hours=h) for h in range(1, 721)])
    report(args, measure(args, folder, scripts, now))
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
