"""The schedules: hourly ingestion of the hour KMA has just published, and the daily retrain."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from weather_assets.definitions import defs
from weather_assets.partitions import KST


def test_ingest_tick_at_nine_ten_kst_requests_the_nine_oclock_partition() -> None:
    schedule = defs.resolve_schedule_def("ingest_hourly")
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 26, 9, 10, tzinfo=KST))

    requests = schedule.evaluate_tick(context).run_requests

    assert [request.partition_key for request in requests] == ["2026-11-26-09:00"]
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("10 * * * *", "Asia/Seoul")
    assert schedule.job_name == "ingest"


def test_ingest_tick_just_after_midnight_requests_midnight() -> None:
    schedule = defs.resolve_schedule_def("ingest_hourly")
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 27, 0, 10, tzinfo=KST))

    assert [r.partition_key for r in schedule.evaluate_tick(context).run_requests] == ["2026-11-27-00:00"]


def test_retrain_runs_daily_in_kst_and_both_schedules_start_stopped() -> None:
    train = defs.resolve_schedule_def("train_daily")
    assert (train.cron_schedule, train.execution_timezone, train.job_name) == ("40 4 * * *", "Asia/Seoul", "train")
    for name in ("ingest_hourly", "train_daily"):
        assert defs.resolve_schedule_def(name).default_status == dg.DefaultScheduleStatus.STOPPED
