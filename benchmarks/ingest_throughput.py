"""Ingest throughput on the offline generator: one single-run backfill against separate one-hour runs.

    python -m benchmarks.ingest_throughput [--days 30] [--hourly-runs 24]

Ingests 30 days x 10 stations (7,200 station-hours) as one single-run backfill, and 24 hours as 24 one-hour
runs, each way twice:

- as launched: `dagster job launch` on a persistent instance, whose run launcher starts each run in a new
  process that loads the code location and executes the job's steps, as runs that the UI, the schedules, the
  sensor and the read API launch do; a run's time is from its creation to its end, as Dagster records them;
- in process: `execute_in_process` on an in-memory instance, which leaves only Dagster's event bookkeeping
  (one materialization event per partition) besides this project's own code.

Prints station-hours per second for both and their ratio, and a launched one-hour run's time. Then, as launched,
after training the champion (a launched `train` run), a few one-hour runs of `ingest_and_predict`: raw answers,
features and predictions in one run, the job the hourly schedule and the read API launch. Targets on this 2-core
machine: the 30-day backfill within 60 s, single-run throughput at least 10x the per-hour runs, a launched one-hour
`ingest` run within 2 s and `ingest_and_predict` within 3 s.

    python -m benchmarks.ingest_throughput --national [--national-days 365]

The national scale instead: a year of every station in `stations.csv` as one launched single-run backfill of
`ingest`, its time and the run process's peak memory (target: within 10 minutes and 2 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg

from weather_assets import runs
from weather_assets.defs.jobs import ingest_job
from weather_assets.defs.partitions import range_tags
from weather_assets.domain.hours import partition_key
from weather_assets.domain.stations import DEFAULT_STATIONS, all_stations

END = datetime(2026, 11, 1)


def tags_for(first: datetime, last: datetime) -> dict[str, str]:
    return {"dagster/partition": partition_key(first)} if first == last else range_tags(first, last)


def one_hour(hour: datetime) -> dict[str, str]:
    return tags_for(hour, hour)


def launch(instance: dg.DagsterInstance, job: str, tags: dict[str, str]) -> float:
    """One run launched the way the UI and the daemon launch runs; returns its creation-to-end seconds."""
    return elapsed(launch_record(instance, job, tags))


def launch_record(instance: dg.DagsterInstance, job: str, tags: dict[str, str]) -> dg.RunRecord:
    """One run launched the way the UI and the daemon launch runs, once it has ended successfully."""
    command = [str(Path(sys.executable).with_name("dagster")), "job", "launch", "-m", "weather_assets.definitions"]
    command += ["-j", job, "--tags", json.dumps(tags)]
    subprocess.run(
        command, check=True, capture_output=True, env={**os.environ, "DAGSTER_HOME": instance.root_directory}
    )
    (record,) = instance.get_run_records(limit=1)
    while not (record := instance.get_run_record_by_id(record.dagster_run.run_id)).dagster_run.is_finished:
        time.sleep(0.1)
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS, f"{job} run {tags} failed"
    return record


def elapsed(record: dg.RunRecord) -> float:
    return record.end_time - record.create_timestamp.timestamp()


def phases(instance: dg.DagsterInstance, record: dg.RunRecord) -> dict[str, float]:
    """Where a launched run's seconds went, from the timestamps of its own events."""
    events = [entry for entry in instance.all_logs(record.dagster_run.run_id) if entry.dagster_event]
    started = next(e.timestamp for e in events if e.dagster_event.event_type == dg.DagsterEventType.RUN_START)
    steps: dict[str, float] = {}
    for entry in events:
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            steps[entry.step_key] = -entry.timestamp
        elif entry.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            steps[entry.step_key] += entry.timestamp
    return {
        "new process (interpreter, imports, instance)": started - record.create_timestamp.timestamp(),
        **{f"step {key}": seconds for key, seconds in steps.items()},
        "Dagster's bookkeeping and the process's end": record.end_time - started - sum(steps.values()),
    }


def print_phases(instance: dg.DagsterInstance, records: list[dg.RunRecord]) -> None:
    """The mean of each phase over `records`."""
    each = [phases(instance, record) for record in records]
    for name in each[0]:
        print(f"    {name:50s} {sum(p[name] for p in each) / len(each):5.2f} s")


def launched(instance: dg.DagsterInstance) -> Callable[[datetime, datetime], float]:
    """Launched `ingest` runs."""
    return lambda first, last: launch(instance, "ingest", tags_for(first, last))


def report_ingest_and_predict(instance: dg.DagsterInstance, first: datetime, count: int) -> None:
    """Launched one-hour `ingest` and then `ingest_and_predict` runs of the hours from `first` on, where each run's
    time goes, once a champion is trained."""
    launch(instance, "train", {})
    for job, target, hours in (("ingest", 2, range(count)), ("ingest_and_predict", 3, range(count, 2 * count))):
        records = [launch_record(instance, job, one_hour(first + timedelta(hours=h))) for h in hours]
        seconds = [elapsed(record) for record in records]
        print(
            f"  one-hour {job} runs: {count} runs, {sum(seconds) / count:.2f} s a run (min {min(seconds):.2f}, "
            f"max {max(seconds):.2f}; target: {target} s), of which on average:"
        )
        print_phases(instance, records)


def in_process(instance: dg.DagsterInstance) -> Callable[[datetime, datetime], float]:
    def run(first: datetime, last: datetime) -> float:
        started = time.perf_counter()
        result = runs.materialize_here(ingest_job.selection, instance, tags=tags_for(first, last))
        assert result.success, f"run {first}..{last} failed: {runs.failures(result)}"
        return time.perf_counter() - started

    return run


def measure(run: Callable[[datetime, datetime], float], days: int, hourly_runs: int) -> tuple[float, float]:
    """Seconds of the backfill of `days` before END, and of `hourly_runs` one-hour runs after it, added up."""
    backfill = run(END - timedelta(days=days), END - timedelta(hours=1))
    hourly = sum(run(END + timedelta(hours=offset), END + timedelta(hours=offset)) for offset in range(hourly_runs))
    return backfill, hourly


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
        f"= {hourly_rate:,.1f} station-hours/s ({hourly / hourly_runs:.2f} s a run; target as launched: 2 s)"
    )
    print(f"  ratio: {backfill_rate / hourly_rate:.1f}x (target: at least 10x)")


def new_processes(before: set[int]) -> dict[int, tuple[int, float]]:
    """Each process started since `before` was taken: its peak resident set (VmHWM, bytes) and its CPU seconds."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in before:
            continue
        try:
            status, stat = (entry / "status").read_text(), (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        peak = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)
        user, system = stat.rsplit(")", 1)[1].split()[11:13]  # utime and stime, after the command's name
        found[int(entry.name)] = peak, (int(user) + int(system)) / os.sysconf("SC_CLK_TCK")
    return found


@contextmanager
def watched() -> Iterator[dict[int, tuple[int, float]]]:
    """Yields a dict that holds, once the block ends, the peak memory and CPU seconds of each process it started
    (as last seen, every half second)."""
    before = {int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()}
    seen: dict[int, tuple[int, float]] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            seen.update(new_processes(before))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


def report_national(instance: dg.DagsterInstance, days: int) -> None:
    """`days` of every station in stations.csv as one launched single-run backfill of `ingest`, timed from the
    launch command (creating a run of many partitions records a planned materialization per partition and asset)."""
    stations = len(all_stations())
    first, last = END - timedelta(days=days), END - timedelta(hours=1)
    started = time.perf_counter()
    with watched() as processes:
        record = launch_record(instance, "ingest", tags_for(first, last))
    total = time.perf_counter() - started
    peak = max(memory for memory, _ in processes.values())
    cpu = sum(cpu for _, cpu in processes.values())
    print(
        f"national scale, as launched: {days * 24 * stations:,} station-hours ({days} days x {stations} stations) in "
        f"one run: {total:.0f} s ({total / 60:.1f} min; target: 10) from the launch command to the run's end "
        f"({elapsed(record):.0f} s from the run's creation); peak memory of a process {peak / 2**30:.2f} GiB "
        f"(target: 2); {cpu:.0f} CPU seconds in the processes it started"
    )


@contextmanager
def scratch_instance(persistent: bool, stations: str = DEFAULT_STATIONS) -> Iterator[dg.DagsterInstance]:
    """An instance in a new data folder (a persistent one that `dagster job launch` also reads, or in memory)."""
    with tempfile.TemporaryDirectory() as root:
        os.environ["WEATHER_DATA_DIR"] = root  # read by the definitions in every run process
        os.environ["WEATHER_STATIONS"] = stations
        os.environ.pop("KMA_AUTH_KEY", None)  # the offline generator
        # runs launched at once, each in a new process (Dagster's defaults, written out)
        quiet = {
            "telemetry": {"enabled": False},
            "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
            "run_launcher": {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"},
        }
        Path(root, "dagster.yaml").write_text(json.dumps(quiet))  # read by `dagster job launch` too
        instance = dg.DagsterInstance.from_config(root) if persistent else None
        with instance or dg.DagsterInstance.ephemeral() as active:
            yield active


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--hourly-runs", type=int, default=24)
    parser.add_argument("--predict-runs", type=int, default=5, help="launched one-hour ingest_and_predict runs")
    parser.add_argument("--national", action="store_true", help="a year of every station as one launched run")
    parser.add_argument("--national-days", type=int, default=365)
    args = parser.parse_args()
    if args.national:
        with scratch_instance(True, ",".join(str(station) for station in all_stations())) as instance:
            report_national(instance, args.national_days)
        return
    for label, runner, persistent in (("as launched", launched, True), ("in process", in_process, False)):
        with scratch_instance(persistent) as instance:
            report(label, args.days, args.hourly_runs, *measure(runner(instance), args.days, args.hourly_runs))
            if persistent:  # hours after those `measure` ingested
                report_ingest_and_predict(instance, END + timedelta(hours=args.hourly_runs), args.predict_runs)


if __name__ == "__main__":
    main()
