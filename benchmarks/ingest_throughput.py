"""Ingest throughput on the offline generator: one single-run backfill against separate one-hour runs.

    python benchmarks/ingest_throughput.py [--days 30] [--hourly-runs 24]

Ingests 30 days x 10 stations (7,200 station-hours) as one single-run backfill, and 24 hours as 24 one-hour
runs, each way twice:

- as launched: `execute_job` on a persistent instance with the job's default executor, which runs each
  asset step in its own process, as runs that the UI, the schedule or a backfill launch do;
- in process: `execute_in_process` on an in-memory instance, which leaves only Dagster's event bookkeeping
  (one materialization event per partition) besides this project's own code.

Prints station-hours per second for both and their ratio. Targets on this 2-core machine: the 30-day
backfill within 60 s, and single-run throughput at least 10x the per-hour runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)

from weather_assets.partitions import partition_key, range_tags  # noqa: E402
from weather_assets.stations import DEFAULT_STATIONS  # noqa: E402

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
END = datetime(2026, 11, 1)


def ingest_job() -> dg.JobDefinition:
    """The code location's ingest job, rebuilt in each step process (resources come from the environment)."""
    from weather_assets.definitions import defs

    return defs.resolve_job_def("ingest")


def tags_for(first: datetime, last: datetime) -> dict[str, str]:
    return {"dagster/partition": partition_key(first)} if first == last else range_tags(first, last)


def failures(result: dg.ExecuteJobResult | dg.ExecuteInProcessResult) -> list[str]:
    failed = [e for e in result.all_events if e.is_step_failure or e.event_type == dg.DagsterEventType.RUN_FAILURE]
    return [f"{e.step_key or 'run'}: {e.message}" for e in failed]


def launched(instance: dg.DagsterInstance) -> Callable[[datetime, datetime], None]:
    def run(first: datetime, last: datetime) -> None:
        job = dg.reconstructable(ingest_job)
        with dg.execute_job(job, instance, tags=tags_for(first, last), run_config=QUIET) as result:
            assert result.success, f"run {first}..{last} failed: {failures(result)}"

    return run


def in_process(instance: dg.DagsterInstance) -> Callable[[datetime, datetime], None]:
    def run(first: datetime, last: datetime) -> None:
        result = ingest_job().execute_in_process(instance=instance, tags=tags_for(first, last), run_config=QUIET)
        assert result.success, f"run {first}..{last} failed: {failures(result)}"

    return run


def measure(run: Callable[[datetime, datetime], None], days: int, hourly_runs: int) -> tuple[float, float]:
    """Seconds for the backfill of `days` before END, and for `hourly_runs` one-hour runs after it."""
    started = time.perf_counter()
    run(END - timedelta(days=days), END - timedelta(hours=1))
    backfill = time.perf_counter() - started
    started = time.perf_counter()
    for offset in range(hourly_runs):
        run(END + timedelta(hours=offset), END + timedelta(hours=offset))
    return backfill, time.perf_counter() - started


def report(label: str, days: int, hourly_runs: int, backfill: float, hourly: float) -> None:
    stations = len(DEFAULT_STATIONS.split(","))
    backfill_rate = days * 24 * stations / backfill
    hourly_rate = hourly_runs * stations / hourly
    print(f"{label}:")
    print(
        f"  single-run backfill: {days * 24 * stations} station-hours ({days} days x {stations} stations) "
        f"in {backfill:.1f} s = {backfill_rate:,.0f} station-hours/s (target: within 60 s)"
    )
    print(
        f"  one-hour runs:       {hourly_runs * stations} station-hours in {hourly_runs} runs in {hourly:.1f} s "
        f"= {hourly_rate:,.1f} station-hours/s ({hourly / hourly_runs:.2f} s a run)"
    )
    print(f"  ratio: {backfill_rate / hourly_rate:.1f}x (target: at least 10x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--hourly-runs", type=int, default=24)
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)  # the multiprocess executor's step-start lines
    for label, runner, persistent in (("as launched", launched, True), ("in process", in_process, False)):
        with tempfile.TemporaryDirectory() as root:
            os.environ["WEATHER_DATA_DIR"] = root  # read by the definitions in every step process
            os.environ.pop("KMA_AUTH_KEY", None)  # the offline generator
            quiet = {"telemetry": {"enabled": False}}
            instance = dg.DagsterInstance.local_temp(root, overrides=quiet) if persistent else None
            with instance or dg.DagsterInstance.ephemeral() as active:
                report(label, args.days, args.hourly_runs, *measure(runner(active), args.days, args.hourly_runs))


if __name__ == "__main__":
    main()
