"""The feature-file sensor against moto's S3 server (and a local folder): it follows the lake's arrivals log.

New, unchanged and replaced writes, old hours included; records that are not arrivals, cannot be read or name
hours that are not partitions; records dated ahead of the sensor's clock; records of runs that predicted their
hours themselves, or failed to; a tick's listing bounded by what is new; and a 72-hour backfill of last month
predicted through the sensor's run request.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pytest
import sqlalchemy as sa

from weather_assets.definitions import defs
from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.partitions import hourly, range_tags
from weather_assets.defs.resources.lake import ARRIVALS_PREFIX, Arrival, Lake, arrival_key, features_key
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.defs.resources.predictions_db import ComfortDatabase, tables_resources
from weather_assets.defs.sensors import MAX_WAIT, SKEW, new_feature_files, scan
from weather_assets.domain.hours import KST, current_hour, partition_key
from weather_assets.domain.tables import PREDICTIONS

FIRST = datetime(2026, 11, 26, 6)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def tick(lake: Lake, cursor: str | None, instance: dg.DagsterInstance) -> tuple[list[dg.RunRequest], str]:
    """One evaluation of the real sensor as the daemon runs it (its run requests resolved against the code
    location's partitions): its run requests and its new cursor."""
    with dg.build_sensor_context(
        cursor=cursor, resources={"lake": lake}, instance=instance, repository_def=defs.get_repository_def()
    ) as context:
        result = new_feature_files.evaluate_tick(context)
    return list(result.run_requests or []), result.cursor  # type: ignore[return-value]


def writing_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """The instance's record of an `ingest_and_predict` run that writes (and predicts) hours."""
    return instance.add_run(dg.DagsterRun(job_name="ingest_and_predict", run_id=str(uuid.uuid4()), status=status))


def write_hours(lake: Lake, hours: list[datetime], run_id: str, predicted_in_run: bool = False) -> None:
    """What weather_features does: the hours' files, then one arrival record naming them."""
    for hour in hours:
        lake.write(features_key(hour), b"features of %s" % hour.isoformat().encode())
    lake.record_arrival(Arrival(run_id, hours, predicted_in_run))


def partitions(requests: list[dg.RunRequest]) -> list[str]:
    """Each request's partition, or its range as first..last."""
    return sorted(
        r.partition_key or f"{r.partition_key_range.start}..{r.partition_key_range.end}"  # type: ignore[union-attr]
        for r in requests
    )


def test_new_writes_then_nothing_then_a_replaced_file(s3_bucket: str, instance: dg.DagsterInstance) -> None:
    lake = Lake(url=f"s3://{s3_bucket}/lake")
    for offset in range(3):
        write_hours(lake, [FIRST + timedelta(hours=offset)], f"run-{offset}")

    requests, cursor = tick(lake, None, instance)
    assert partitions(requests) == ["2026-11-26-06:00", "2026-11-26-07:00", "2026-11-26-08:00"]
    assert len({r.run_key for r in requests}) == 3

    requests, cursor = tick(lake, cursor, instance)
    assert requests == []

    write_hours(lake, [FIRST + timedelta(hours=1)], "run-rerun")  # hour 07:00 written again
    requests, cursor = tick(lake, cursor, instance)
    assert partitions(requests) == ["2026-11-26-07:00"]

    requests, _ = tick(lake, cursor, instance)
    assert requests == []


def test_an_old_hour_written_long_after_newer_ones_is_requested(s3_bucket: str, instance: dg.DagsterInstance) -> None:
    lake = Lake(url=f"s3://{s3_bucket}/lake")
    write_hours(lake, [FIRST], "run-now")
    _, cursor = tick(lake, None, instance)

    last_month = [datetime(2026, 10, 3, 0) + timedelta(hours=h) for h in range(72)]
    write_hours(lake, last_month, "run-backfill")
    requests, _ = tick(lake, cursor, instance)

    assert partitions(requests) == ["2026-10-03-00:00..2026-10-05-23:00"]  # one range run, as a backfill
    assert requests[0].tags["dagster/asset_partition_range_end"] == "2026-10-05-23:00"


def test_hours_predicted_by_the_run_that_wrote_them_request_nothing_and_gaps_split_ranges(
    s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    lake = Lake(url=f"s3://{s3_bucket}/lake")
    hourly = writing_run(instance, dg.DagsterRunStatus.SUCCESS)
    write_hours(lake, [FIRST], hourly.run_id, predicted_in_run=True)
    write_hours(lake, [FIRST - timedelta(hours=h) for h in (10, 11, 13)], "run-gaps")

    result = scan(lake, None, instance)

    assert [(partition_key(r.first), partition_key(r.last)) for r in result.requests] == [
        ("2026-11-25-17:00", "2026-11-25-17:00"),
        ("2026-11-25-19:00", "2026-11-25-20:00"),
    ]
    assert len(result.predicted_in_run) == 1 and result.unpredicted == [] and result.waiting == []


def test_hours_whose_predicting_run_failed_are_requested_once_it_ended(
    s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    """A combined run whose predictions step fails: while it runs the record waits; once it failed, it is requested."""
    lake = Lake(url=f"s3://{s3_bucket}/lake")
    hourly = writing_run(instance, dg.DagsterRunStatus.STARTED)
    write_hours(lake, [FIRST], hourly.run_id, predicted_in_run=True)

    requests, cursor = tick(lake, None, instance)
    assert requests == [] and len(json.loads(cursor)["waiting"]) == 1

    instance.report_run_failed(hourly)
    requests, cursor = tick(lake, cursor, instance)
    assert partitions(requests) == ["2026-11-26-06:00"]

    assert tick(lake, cursor, instance)[0] == []
    assert json.loads(cursor)["waiting"] == []


def test_a_record_whose_run_never_ends_waits_at_most_max_wait(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    """A combined run left "started" (its process died with run monitoring off) does not hold its hours for ever."""
    lake = Lake(data_dir=str(tmp_path))
    lost = writing_run(instance, dg.DagsterRunStatus.STARTED)
    write_hours(lake, [FIRST], lost.run_id, predicted_in_run=True)
    written = datetime.now(UTC)

    waiting = scan(lake, None, instance, now=written + MAX_WAIT - timedelta(minutes=1))
    assert waiting.requests == [] and len(waiting.waiting) == 1

    later = scan(lake, waiting.cursor, instance, now=written + MAX_WAIT + timedelta(minutes=1))
    assert [partition_key(r.first) for r in later.requests] == ["2026-11-26-06:00"]
    assert later.waiting == [] and len(later.unpredicted) == 1


def test_hours_of_a_predicting_run_the_instance_does_not_know_are_requested(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    lake = Lake(data_dir=str(tmp_path))
    write_hours(lake, [FIRST], "run-of-another-instance", predicted_in_run=True)

    result = scan(lake, None, instance)

    assert [partition_key(r.first) for r in result.requests] == ["2026-11-26-06:00"]
    assert len(result.unpredicted) == 1


def test_records_that_are_not_arrivals_are_skipped(s3_bucket: str, instance: dg.DagsterInstance) -> None:
    lake = Lake(url=f"s3://{s3_bucket}/lake")
    write_hours(lake, [FIRST], "run-1")
    lake.write("arrivals/notes.txt", b"not a record")
    lake.write(arrival_key(datetime.now(UTC), "broken"), b"{not json")

    result = scan(lake, None, instance)

    assert [partition_key(r.first) for r in result.requests] == ["2026-11-26-06:00"]
    assert len(result.skipped) == 2 and "arrivals/notes.txt" in result.skipped


def keys(lake: Lake) -> list[str]:
    """The arrival records' keys, in the order they were written."""
    return list(lake.list(ARRIVALS_PREFIX))


def test_records_naming_hours_that_are_not_partitions_are_skipped_once_and_later_ones_requested(
    tmp_path: Path, instance: dg.DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hours before the first partition, after the current hour or at minute 30 are no partitions: the daemon
    refuses a run request for one, which failed the whole tick, every tick. Each such record is skipped once."""
    lake = Lake(data_dir=str(tmp_path))
    start = hourly.start.astimezone(KST).replace(tzinfo=None)
    early, future, half_past = start - timedelta(hours=1), current_hour() + timedelta(hours=2), FIRST.replace(minute=30)
    write_hours(lake, [early], "run-before-the-first-partition")
    write_hours(lake, [future], "run-of-a-future-hour")
    write_hours(lake, [FIRST, half_past], "run-at-half-past")
    write_hours(lake, [FIRST + timedelta(hours=1)], "run-good")
    before_start, after_now, not_on_the_hour, _ = keys(lake)

    requests, cursor = tick(lake, None, instance)

    assert partitions(requests) == ["2026-11-26-07:00"]
    log = capsys.readouterr().err
    assert f"{before_start}: hour {partition_key(early)} is before the first partition {partition_key(start)}" in log
    assert f"{after_now}: hour {partition_key(future)} is after the current hour" in log
    assert f"{not_on_the_hour}: hour {partition_key(half_past)} is not on the hour" in log
    assert "requested 1 runs, skipped 3 records" in log

    requests, _ = tick(lake, cursor, instance)
    log = capsys.readouterr().err
    assert requests == [] and "skipped 0 records" in log and "run-before" not in log


def test_records_that_cannot_be_read_are_skipped_once_with_the_reason(
    tmp_path: Path, instance: dg.DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON too deep to parse (a RecursionError escaped the tick) and JSON of the wrong shape: skipped, said why."""
    lake = Lake(data_dir=str(tmp_path))
    hour = FIRST.strftime("%Y%m%d%H%M")
    bodies: dict[str, object] = {
        "hours-as-text": {"run_id": "r", "hours": hour, "predicted_in_run": False},
        "hours-as-numbers": {"run_id": "r", "hours": [int(hour)], "predicted_in_run": False},
        "hours-as-object": {"run_id": "r", "hours": {hour: True}, "predicted_in_run": False},
        "flag-as-text": {"run_id": "r", "hours": [hour], "predicted_in_run": "no"},
        "no-run-id": {"run_id": None, "hours": [hour], "predicted_in_run": False},
        "a-list": ["r", [hour], False],
    }
    written = datetime.now(UTC) - timedelta(seconds=1)
    lake.write(arrival_key(written, "deep"), b"[" * 100_000 + b"]" * 100_000)
    for n, (name, body) in enumerate(bodies.items(), start=1):
        lake.write(arrival_key(written + timedelta(microseconds=n), name), json.dumps(body).encode())
    write_hours(lake, [FIRST + timedelta(hours=1)], "run-good")
    deep, *wrong_shapes, _ = keys(lake)

    requests, cursor = tick(lake, None, instance)

    assert partitions(requests) == ["2026-11-26-07:00"]
    log = capsys.readouterr().err
    assert f"{deep}: not an arrival record: its JSON is nested too deeply" in log
    for key in wrong_shapes:
        assert f"{key}: not an arrival record: " in log, key
    assert "hours must be a list of YYYYMMDDHHMI texts, not '202611260600'" in log
    assert "predicted_in_run must be true or false, not 'no'" in log
    assert "expected a JSON object, not a list" in log
    assert "requested 1 runs, skipped 7 records" in log

    requests, _ = tick(lake, cursor, instance)
    assert requests == [] and "not an arrival record" not in capsys.readouterr().err


def test_a_record_dated_ahead_of_the_sensors_clock_does_not_hide_later_ones(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """A writer whose clock is an hour ahead, and a stray object named like a record of 2099: handled once, and
    the records written after them are still listed; the cursor lets them go once the clock has passed them."""
    lake = Lake(data_dir=str(tmp_path))
    now = datetime(2026, 12, 1, tzinfo=UTC)

    def put(written: datetime, run_id: str, hour: datetime) -> str:
        key = arrival_key(written, run_id)
        lake.write(key, Arrival(run_id, [hour], False).to_json())
        return key

    put(now - timedelta(minutes=1), "run-before", FIRST)
    ahead = put(now + timedelta(hours=1), "run-clock-ahead", FIRST + timedelta(hours=1))
    stray = arrival_key(datetime(2099, 1, 1, tzinfo=UTC), "stray")
    lake.write(stray, b"not a record")

    first = scan(lake, None, instance, now=now)
    assert [partition_key(r.first) for r in first.requests] == ["2026-11-26-06:00", "2026-11-26-07:00"]
    assert list(first.ahead) == [ahead, stray] and first.ahead[ahead] == timedelta(hours=1)
    assert list(first.skipped) == [stray]

    after = put(now + timedelta(minutes=1), "run-after", FIRST + timedelta(hours=2))
    second = scan(lake, first.cursor, instance, now=now + timedelta(minutes=2))
    assert [r.key for r in second.requests] == [after]
    assert second.ahead == {} and second.skipped == {}

    caught_up = scan(lake, second.cursor, instance, now=now + timedelta(hours=1) + SKEW + timedelta(minutes=1))
    assert caught_up.requests == [] and caught_up.cursor["newest"] == ahead
    assert caught_up.cursor["seen"] == [ahead, stray]  # the records before the window are let go


def test_the_tick_log_names_a_record_dated_ahead_of_the_clock(
    tmp_path: Path, instance: dg.DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    """A writer whose clock is a day ahead: its record is requested, and the log says which one and by how much."""
    lake = Lake(data_dir=str(tmp_path))
    key = arrival_key(datetime.now(UTC) + timedelta(days=1), "run-clock-ahead")
    lake.write(key, Arrival("run-clock-ahead", [FIRST], False).to_json())

    requests, _ = tick(lake, None, instance)

    assert partitions(requests) == ["2026-11-26-06:00"]
    (line,) = [line for line in capsys.readouterr().err.splitlines() if key in line]
    assert " is dated " in line and " ahead of this sensor's clock" in line


@pytest.mark.slow
def test_a_tick_lists_what_is_new_not_the_whole_log(s3_bucket: str, instance: dg.DagsterInstance) -> None:
    """1,500 records a minute apart (two pages of an S3 listing): once caught up, a tick lists the new records and
    the skew window only."""
    lake = Lake(url=f"s3://{s3_bucket}/lake")
    s3 = boto3.client("s3")
    written = datetime(2026, 1, 1, tzinfo=UTC)

    def put(n: int) -> None:
        key = arrival_key(written + timedelta(minutes=n), f"run-{n}")
        body = Arrival(f"run-{n}", [FIRST - timedelta(hours=n)], False).to_json()
        s3.put_object(Bucket=s3_bucket, Key=f"lake/{key}", Body=body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(1500)))
    caught_up = scan(lake, None, instance, max_records=10_000)
    assert caught_up.listed == 1500 and len(caught_up.requests) == 1500

    write_hours(lake, [FIRST + timedelta(hours=1)], "run-new-1")
    write_hours(lake, [FIRST + timedelta(hours=2)], "run-new-2")
    result = scan(lake, caught_up.cursor, instance)

    assert [partition_key(r.first) for r in result.requests] == ["2026-11-26-07:00", "2026-11-26-08:00"]
    assert result.listed <= SKEW / timedelta(minutes=1) + 1 + 2
    assert len(json.dumps(result.cursor)) < 10_000  # the cursor stays small too


def test_a_stray_object_in_the_log_does_not_widen_later_listings(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    """An object under arrivals/ that is no record is skipped once; the next tick still lists from the cursor."""
    lake = Lake(data_dir=str(tmp_path))
    written = datetime(2026, 11, 1, tzinfo=UTC)

    def put(n: int) -> None:
        lake.write(
            arrival_key(written + timedelta(minutes=n), f"run-{n}"), Arrival(f"run-{n}", [FIRST], False).to_json()
        )

    for n in range(100):
        put(n)
    lake.write("arrivals/notes.txt", b"not a record")  # sorts after every record key
    first = scan(lake, None, instance)
    assert first.listed == 101 and list(first.skipped) == ["arrivals/notes.txt"]

    put(100)
    second = scan(lake, first.cursor, instance)

    assert [r.key for r in second.requests] == [arrival_key(written + timedelta(minutes=100), "run-100")]
    assert second.listed <= SKEW / timedelta(minutes=1) + 1 + 1 + 1  # the window, the new record, the stray one
    assert len(second.cursor["seen"]) <= SKEW / timedelta(minutes=1) + 1 + 1 + 1  # type: ignore[arg-type]


def test_a_tick_handles_at_most_max_records_and_the_next_one_goes_on(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    lake = Lake(data_dir=str(tmp_path))
    for offset in range(5):
        write_hours(lake, [FIRST + timedelta(hours=offset)], f"run-{offset}")

    first = scan(lake, None, instance, max_records=3)
    second = scan(lake, first.cursor, instance, max_records=3)

    assert len(first.requests) == 3 and len(second.requests) == 2
    assert {r.first for r in first.requests + second.requests} == {FIRST + timedelta(hours=h) for h in range(5)}


def test_local_folder_lake_detects_new_and_replaced_files(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    lake = Lake(data_dir=str(tmp_path))
    write_hours(lake, [FIRST], "run-1")
    requests, cursor = tick(lake, None, instance)
    assert partitions(requests) == ["2026-11-26-06:00"]

    write_hours(lake, [FIRST + timedelta(hours=1)], "run-2")
    write_hours(lake, [FIRST], "run-3")  # replaced by a rerun
    requests, cursor = tick(lake, cursor, instance)

    assert partitions(requests) == ["2026-11-26-06:00", "2026-11-26-07:00"]
    assert tick(lake, cursor, instance)[0] == []


def test_a_72_hour_backfill_of_last_month_is_predicted_through_the_sensor(
    trained_dir: Path, instance: dg.DagsterInstance
) -> None:
    """The ingest job's single-run backfill writes one record; the sensor's one range run predicts every hour."""
    lake, registry = Lake(data_dir=str(trained_dir)), ModelRegistry(data_dir=str(trained_dir))
    kma = OfflineKMAClient(stations="108,112")
    first = current_hour().replace(day=1, hour=0) - timedelta(days=20)  # in last month
    last = first + timedelta(hours=71)
    _, cursor = tick(lake, None, instance)
    backfill = dg.materialize(
        [kma_observations, weather_features],
        resources={"kma": kma, "lake": lake},
        tags=range_tags(first, last),
        instance=instance,
    )
    assert backfill.success

    requests, _ = tick(lake, cursor, instance)
    assert len(requests) == 1
    (request,) = requests
    predicted = dg.materialize(
        [weather_predictions],
        resources={
            "lake": lake,
            "model_registry": registry,
            **tables_resources(ComfortDatabase(data_dir=str(trained_dir))),
        },
        tags=dict(request.tags),
        instance=instance,
    )
    assert predicted.success

    table = PREDICTIONS.table()
    engine = sa.create_engine(f"sqlite:///{trained_dir / 'weather.db'}")
    with engine.connect() as connection:
        query = sa.select(
            sa.func.count(), sa.func.min(table.c.prediction_datetime), sa.func.max(table.c.prediction_datetime)
        )
        assert tuple(connection.execute(query).one()) == (72 * 2, first, last)
    engine.dispose()
