"""Schedules that follow the clock: each hour from KMA to the predictions table as KMA publishes it, a daily retrain,
the daily monitoring of the champion."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from weather_assets.defs.jobs import forecast_job, forecast_skill_job, ingest_and_predict_job, monitor_job, train_job
from weather_assets.defs.partitions import base_times_cron
from weather_assets.domain.hours import KST, TIMEZONE, current_hour, partition_key
from weather_assets.environment import ingest_minute


@dg.schedule(
    name="ingest_hourly",
    job=ingest_and_predict_job,
    # KMA publishes an hour about ten minutes after it. Like the partitions, the minute is read when the code
    # location loads (a schedule's cron is part of its definition): WEATHER_INGEST_MINUTE, default 10.
    cron_schedule=f"{ingest_minute()} * * * *",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def ingest_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At minute WEATHER_INGEST_MINUTE (10) of every hour, KST, ingest and predict the current hour in one run.

    The run asks KMA again every poll interval until KMA has published the hour (resource `kma`, fields
    `publication_*`). The partition is the tick's own KST hour, so a late tick still runs its hour.
    """
    hour = current_hour(context.scheduled_execution_time)
    return dg.RunRequest(run_key=partition_key(hour), partition_key=partition_key(hour))


train_daily = dg.ScheduleDefinition(
    name="train_daily",
    job=train_job,
    cron_schedule="40 4 * * *",
    execution_timezone=TIMEZONE,
    description="At 04:40 KST, retrain the comfort model on the last 30 days; it is promoted only if it is better.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

FORECAST_DELAY = timedelta(minutes=15)  # KMA serves an issue about ten minutes after its base time


@dg.schedule(
    name="forecast_issued",
    job=forecast_job,
    cron_schedule=base_times_cron(FORECAST_DELAY // timedelta(minutes=1)),
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def forecast_issued(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Fifteen minutes after each forecast base time (02, 05, ..., 23 KST), the issue's comfort forecasts.

    The partition is the tick's own issue; while KMA does not serve it yet, the run asks again every
    WEATHER_KMA_POLL_SECONDS (10 s by default).
    """
    tick = context.scheduled_execution_time.astimezone(KST).replace(second=0, microsecond=0, tzinfo=None)
    issue = partition_key(tick - FORECAST_DELAY)
    return dg.RunRequest(run_key=issue, partition_key=issue)


forecast_skill_daily = dg.ScheduleDefinition(
    name="forecast_skill_daily",
    job=forecast_skill_job,
    cron_schedule="50 4 * * *",
    execution_timezone=TIMEZONE,
    description="At 04:50 KST, the forecast skill of the last two weeks.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


@dg.schedule(
    name="model_monitoring_daily",
    job=monitor_job,
    cron_schedule="20 4 * * *",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def model_monitoring_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At 04:20 KST, monitor the champion on the previous KST day (live error, drift, their checks): its last hour,
    23:00, was published about 23:10.

    A plain schedule rather than `build_schedule_from_partitioned_job`, which calls a deprecated Dagster API (a
    DeprecationWarning at each tick).
    """
    day = (context.scheduled_execution_time.astimezone(KST) - timedelta(days=1)).strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=day, partition_key=day)
