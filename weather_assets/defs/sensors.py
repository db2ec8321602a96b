"""The sensor that follows the data: every write of feature files requests a predict run for the hours written.

It reads the lake's append-only arrivals log (`arrivals/`, one record per write of feature files, keyed by
the time it was written; see `weather_assets.defs.resources.lake`), not the feature files themselves. So it
sees every new or replaced file, however old its hour (a backfill of last month included), and a tick lists only what
arrived since its cursor, whatever the bucket holds: it lists from ``SKEW`` before the newest record it has
handled that is not dated ahead of its own clock (S3's ``StartAfter``), which covers records whose writers' clocks
were a little behind, and skips those it has handled (the cursor keeps their keys from that point on). A record
dated ahead of the clock (its writer's clock is ahead) is handled at once but moves the window only once the clock
has reached it, so it hides none written after it.

A tick never fails on what the log holds: an object that is not a record (unreadable, too deeply nested, of the
wrong shape) or a record naming an hour that is not a partition is skipped once, logged with its key and why.

Contiguous hours of one record become one run (a range run, as a single-run backfill), keyed by the record,
so a write is predicted once. A record of a run that predicts the same hours itself (the hourly schedule's and
the API's `ingest_and_predict` runs) requests nothing once that run succeeded; if it failed, was canceled or is
unknown to the instance, its hours are requested as any other record's; while it is still going, the record
waits in the cursor and is read again (by its key, not listed) on the next ticks, for at most `MAX_WAIT`.

`retrain_on_monitoring_error`, the sensor that follows the model's monitoring, is at the end of this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from weather_assets.defs import checks
from weather_assets.defs.assets.monitoring import model_monitoring
from weather_assets.defs.jobs import predict_job, train_job
from weather_assets.defs.partitions import hourly, range_tags
from weather_assets.defs.resources.lake import (
    ARRIVALS_PREFIX,
    Arrival,
    Lake,
    LakeObjectMissingError,
    arrival_key,
    arrival_time,
)
from weather_assets.domain.hours import KST, current_hour, kst_now, partition_key
from weather_assets.environment import Env

if TYPE_CHECKING:
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord  # what the instance gives

SKEW = timedelta(minutes=10)  # how much later than a newer record a record may become listable and still be seen
MAX_RECORDS = 200  # arrival records handled per tick; the rest follows on the next ticks, in key order
UNPREDICTED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}  # writing runs that predicted nothing
# How long a record waits for its writing run to end. A combined run waits at most an hour for KMA; one still
# "started" much later lost its process (run monitoring off), so its hours are requested rather than waited for.
MAX_WAIT = timedelta(hours=3)


@dataclass(frozen=True)
class Request:
    """One predict run to request: the hours first..last of the arrival record `key`."""

    key: str
    first: datetime
    last: datetime

    def run_request(self) -> dg.RunRequest:
        run_key = f"{self.key}#{partition_key(self.first)}"
        tags = {"weather/arrival": self.key}
        if self.first == self.last:
            return dg.RunRequest(run_key=run_key, partition_key=partition_key(self.first), tags=tags)
        return dg.RunRequest(run_key=run_key, tags={**tags, **range_tags(self.first, self.last)})


@dataclass
class Scan:
    """What one tick found: runs to request, records predicted by their own run, records whose run failed to
    predict them (requested), records whose run is still going (kept in the cursor), keys skipped (and why), keys
    dated more than ``SKEW`` ahead of the clock (and by how much), the cursor.
    """

    requests: list[Request] = field(default_factory=list)
    predicted_in_run: list[str] = field(default_factory=list)
    unpredicted: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    ahead: dict[str, timedelta] = field(default_factory=dict)
    listed: int = 0
    cursor: dict[str, object] = field(default_factory=dict)


def spans(hours: Sequence[datetime]) -> Iterator[tuple[datetime, datetime]]:
    """(first, last) of each run of consecutive hours in sorted `hours`."""
    start = previous = None
    for hour in hours:
        if previous is not None and hour - previous != timedelta(hours=1):
            yield start, previous  # type: ignore[misc]
            start = None
        start = start or hour
        previous = hour
    if start is not None:
        yield start, previous  # type: ignore[misc]


def scan(
    lake: Lake,
    cursor: dict[str, object] | None,
    instance: dg.DagsterInstance,
    max_records: int = MAX_RECORDS,
    now: datetime | None = None,
) -> Scan:
    """One tick's work: list the arrivals from the cursor's window on, read the new ones, advance the cursor.

    The cursor holds the newest arrival record handled, the keys handled after ``SKEW`` before it, and the records
    waiting for their writing run (looked up in `instance`). On the first tick (no cursor) every record is listed
    once. Only keys named like arrival records dated at or before `now` move the window, so one dated ahead (its
    writer's clock is) hides nothing written after it; it stays among the seen keys, read once, until the window
    has passed it. The seen keys are thus the window's, those dated ahead and stray objects under `arrivals/`.
    """
    cursor, now = cursor or {}, now or datetime.now(UTC)
    newest = str(cursor.get("newest", ""))
    seen: set[str] = set(cursor.get("seen", []))  # type: ignore[arg-type]
    result, handled = Scan(), 0
    for key in cursor.get("waiting", []):  # type: ignore[attr-defined]
        _handle(lake, str(key), instance, result, now)
    for key in lake.list(ARRIVALS_PREFIX, _window_start(newest)):
        result.listed += 1
        if key in seen:
            continue
        if handled == max_records:
            break
        handled += 1
        seen.add(key)
        written = arrival_time(key)
        if written is not None and written - now > SKEW:
            result.ahead[key] = written - now
        _handle(lake, key, instance, result, now)
    newest = max([newest, *(key for key in seen if (at := arrival_time(key)) is not None and at <= now)])
    window = _window_start(newest)
    result.cursor = {
        "newest": newest,
        "seen": sorted(key for key in seen if key > window),
        "waiting": sorted(result.waiting),
    }
    return result


def _handle(lake: Lake, key: str, instance: dg.DagsterInstance, result: Scan, now: datetime) -> None:
    """Reads the record `key` into `result`: its requests, or why it has none (yet)."""
    try:
        arrival = Arrival.from_json(lake.read(key))
    except ValueError as error:
        result.skipped[key] = f"not an arrival record: {error}"
        return
    except LakeObjectMissingError as error:
        result.skipped[key] = str(error)
        return
    outside = _not_a_partition(arrival.hours, now)
    if outside:
        result.skipped[key] = outside
        return
    if arrival.predicted_in_run:
        run = instance.get_run_by_id(arrival.run_id)
        if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
            result.predicted_in_run.append(key)
            return
        written = arrival_time(key)
        if run is not None and run.status not in UNPREDICTED and written is not None and now - written < MAX_WAIT:
            result.waiting.append(key)
            return
        result.unpredicted.append(key)
    result.requests.extend(Request(key, first, last) for first, last in spans(arrival.hours))


def _not_a_partition(hours: Sequence[datetime], now: datetime) -> str | None:
    """Why one of `hours` is no partition of `hourly` at `now` (the daemon would refuse its run request), or None."""
    first, last = hourly.start.astimezone(KST).replace(tzinfo=None), current_hour(now)  # end_offset=1: now's hour
    for hour in hours:
        if hour.minute:
            return f"hour {partition_key(hour)} is not on the hour"
        if hour < first:
            start = f"{partition_key(first)} ({Env.PARTITIONS_START})"
            return f"hour {partition_key(hour)} is before the first partition {start}"
        if hour > last:
            return f"hour {partition_key(hour)} is after the current hour {partition_key(last)}"
    return None


def _window_start(newest: str) -> str:
    """The key after which a tick lists: ``SKEW`` before the newest record handled (all for none)."""
    written = arrival_time(newest)
    return arrival_key(written - SKEW) if written else ""


@dg.sensor(
    job=predict_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests a predict run for the hours of each write of feature files (the lake's arrivals/ log).",
)
def new_feature_files(context: dg.SensorEvaluationContext, lake: Lake) -> dg.SensorResult:
    """Follows the lake's `arrivals/` log and predicts the hours of every new or replaced feature file."""
    result = scan(lake, json.loads(context.cursor) if context.cursor else None, context.instance)
    for key, reason in result.skipped.items():
        context.log.warning(f"skipped {lake.uri(key)}: {reason}")
    for key, ahead in result.ahead.items():
        context.log.warning(
            f"{lake.uri(key)} is dated {timedelta(seconds=round(ahead.total_seconds()))} ahead of this sensor's "
            "clock (is the clock of the host that wrote it ahead?): handled now; the listing window moves past it "
            "only once the clock has reached it"
        )
    for key in result.unpredicted:
        context.log.warning(f"{key}: the run that wrote it did not predict its hours (failed or unknown); requested")
    context.log.info(
        f"listed {result.listed} arrival records: requested {len(result.requests)} runs, "
        f"skipped {len(result.skipped)} records; {len(result.predicted_in_run)} were predicted by the runs that "
        f"wrote them, {len(result.waiting)} wait for their runs to end"
    )
    return dg.SensorResult(
        run_requests=[request.run_request() for request in result.requests], cursor=json.dumps(result.cursor)
    )


MONITORING_CHECK_KEYS = [dg.AssetCheckKey(model_monitoring.key, spec.name) for spec in checks.MONITORING_CHECKS]
# Records read per check and tick, newest first (a planned record and an evaluation per day): 50 days, more than a
# backfill of days evaluates between two ticks.
HISTORY = 100


def _evaluation(record: AssetCheckExecutionRecord) -> dg.AssetCheckEvaluation | None:
    """A check record's evaluation; None for the record of a planned evaluation."""
    if record.event is None or record.event.dagster_event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        return None
    return record.event.dagster_event.asset_check_evaluation_data


@dg.sensor(
    name="retrain_on_monitoring_error",
    job=train_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def retrain_on_monitoring_error(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """A `train` run when a `model_monitoring` check fails with ERROR: at most one a KST day (run key
    ``monitoring-<day>``), and the champion gate still decides whether the new model replaces the champion.

    It reads each monitoring check's newest evaluations (a backfill of days evaluates many between two ticks); the
    cursor is the newest record id it has judged, so an evaluation is judged once. The checks are not partitioned,
    so each evaluation is a record of its own, written when it is done (ids in the order of evaluation); the planned
    records of the asset's partitions never turn into evaluations and are passed over.
    """
    seen = int(context.cursor or 0)
    storage = context.instance.event_log_storage
    done = [
        (record.id, evaluation)
        for key in MONITORING_CHECK_KEYS
        for record in storage.get_asset_check_execution_history(key, limit=HISTORY)
        if record.id > seen and (evaluation := _evaluation(record)) is not None
    ]
    failed = [
        evaluation
        for _, evaluation in done
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    ]
    cursor = str(max([seen, *(record_id for record_id, _ in done)]))
    if not failed:
        return dg.SensorResult(skip_reason="no new ERROR from the monitoring checks", cursor=cursor)
    judged = sorted(f"{item.check_name} ({item.metadata['partitions'].value})" for item in failed)
    shown = "; ".join(judged[:5]) + (f"; and {len(judged) - 5} more" if len(judged) > 5 else "")
    context.log.info(f"requesting a train run: {shown} failed")
    request = dg.RunRequest(run_key=f"monitoring-{kst_now().date()}", tags={"weather/monitoring_errors": shown})
    return dg.SensorResult(run_requests=[request], cursor=cursor)
