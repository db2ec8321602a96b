"""Schedules that follow the clock: each hour from KMA to the predictions table as KMA publishes it, a daily retrain."""

from __future__ import annotations

import os

import dagster as dg

from weather_assets.jobs import ingest_and_predict_job, train_job
from weather_assets.partitions import TIMEZONE

# KMA publishes an hour about ten minutes after it. Like the partitions, this is read when the code location
# loads (a schedule's cron is part of its definition): WEATHER_INGEST_MINUTE, default 10.
INGEST_MINUTE = int(os.getenv("WEATHER_INGEST_MINUTE") or 10)

ingest_hourly = dg.build_schedule_from_partitioned_job(
    ingest_and_predict_job,
    name="ingest_hourly",
    minute_of_hour=INGEST_MINUTE,
    description=(
        f"At minute {INGEST_MINUTE} of every hour (KST), ingest and predict the current hour in one run; the run "
        "asks KMA again every poll interval until KMA has published the hour (resource kma, publication_*)."
    ),
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

train_daily = dg.ScheduleDefinition(
    name="train_daily",
    job=train_job,
    cron_schedule="40 4 * * *",
    execution_timezone=TIMEZONE,
    description="At 04:40 KST, retrain the comfort model on the last 30 days; it is promoted only if it is better.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
