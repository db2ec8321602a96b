"""The schedules: each hour ingested and predicted in one run as soon as KMA publishes it, the daily retrain, the
daily monitoring."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from weather_assets.definitions import defs
from weather_assets.defs.resources.kma_client import KMAHubClient
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.predictions_db import ComfortDatabase, tables_resources
from weather_assets.domain.hours import KST, current_hour, partition_key
from weather_assets.domain.tables import PREDICTIONS
from weather_assets_tests.kma_hub import FakeHub, HubHandler, answer

EMPTY = b"#START7777\n# YYMMDDHHMI STN  WD   WS\n#7777END\n"


def test_ingest_tick_at_nine_ten_kst_ingests_and_predicts_the_nine_oclock_partition() -> None:
    schedule = defs.resolve_schedule_def("ingest_hourly")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 26, 9, 10, tzinfo=KST), repository_def=defs.get_repository_def()
    )

    requests = schedule.evaluate_tick(context).run_requests

    assert [request.partition_key for request in requests] == ["2026-11-26-09:00"]
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("10 * * * *", "Asia/Seoul")
    assert schedule.job_name == "ingest_and_predict"
    job = defs.resolve_job_def("ingest_and_predict")
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == {
        "kma_observations",
        "weather_features",
        "weather_predictions",
    }


def test_runs_execute_their_steps_in_one_process() -> None:
    """No process per step: a launched run of the schedule's, the sensor's or the API's job imports the code once."""
    for name in ("ingest_and_predict", "predict", "ingest", "train"):
        assert defs.resolve_job_def(name).executor_def.name == dg.in_process_executor.name, name


def test_ingest_tick_just_after_midnight_requests_midnight() -> None:
    schedule = defs.resolve_schedule_def("ingest_hourly")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 27, 0, 10, tzinfo=KST), repository_def=defs.get_repository_def()
    )

    assert [r.partition_key for r in schedule.evaluate_tick(context).run_requests] == ["2026-11-27-00:00"]


def test_retrain_runs_daily_in_kst_and_both_schedules_start_stopped() -> None:
    train = defs.resolve_schedule_def("train_daily")
    assert (train.cron_schedule, train.execution_timezone, train.job_name) == ("40 4 * * *", "Asia/Seoul", "train")
    for name in ("ingest_hourly", "train_daily"):
        assert defs.resolve_schedule_def(name).default_status == dg.DefaultScheduleStatus.STOPPED


def test_monitoring_tick_at_four_twenty_kst_monitors_the_previous_day_and_starts_stopped() -> None:
    schedule = defs.resolve_schedule_def("model_monitoring_daily")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 27, 4, 20, tzinfo=KST), repository_def=defs.get_repository_def()
    )

    assert [r.partition_key for r in schedule.evaluate_tick(context).run_requests] == ["2026-11-26"]
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("20 4 * * *", "Asia/Seoul")
    assert (schedule.job_name, schedule.default_status) == ("monitor", dg.DefaultScheduleStatus.STOPPED)
    sensor = defs.resolve_sensor_def("retrain_on_monitoring_error")
    assert (sensor.job_name, sensor.default_status) == ("train", dg.DefaultSensorStatus.STOPPED)


def test_the_schedules_run_lands_an_hour_kma_publishes_late_at_the_next_ask(trained_dir: Path, hub: FakeHub) -> None:
    """KMA publishes the hour a while after the run starts: the run asks again every poll and lands it then.

    The delay and the poll are scaled down (6 s and 1 s, against minutes in production); what is asserted is
    the behaviour: one run, several asks, exactly one ask after publication, and the hour's rows written.
    """
    hour = current_hour()
    published = threading.Event()
    asks_after: list[float] = []

    def late(handler: HubHandler, endpoint: str, params: dict[str, str]) -> None:
        if endpoint == "kma_sfctm2.php" and params["tm"] == hour.strftime("%Y%m%d%H%M"):
            if not published.is_set():
                handler.send(200, EMPTY)
                return
            asks_after.append(time.monotonic())
        answer(handler, endpoint, params)

    hub.default = late
    threading.Timer(6, published.set).start()
    schedule = defs.resolve_schedule_def("ingest_hourly")
    tick = dg.build_schedule_context(
        scheduled_execution_time=(hour + timedelta(minutes=10)).replace(tzinfo=KST),
        repository_def=defs.get_repository_def(),
    )
    (request,) = schedule.evaluate_tick(tick).run_requests
    job = defs.resolve_job_def(request.job_name or schedule.job_name)
    kma = KMAHubClient(
        auth_key="test-key",
        base_url=hub.base_url,
        stations="108,112",
        publication_poll_seconds=1,
        publication_wait_minutes=120,
    )
    registry = ModelRegistry(data_dir=str(trained_dir))
    resources = {
        "kma": kma,
        "lake": Lake(data_dir=str(trained_dir)),
        "model_registry": registry,
        "mlflow": MLflowTracking(registry=registry),  # comfort_model is in the code location, not in this run
        **tables_resources(ComfortDatabase(data_dir=str(trained_dir))),
    }

    result = dg.materialize(
        [*defs.assets],  # type: ignore[list-item]
        selection=list(job.asset_layer.selected_asset_keys),
        partition_key=request.partition_key,
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
    )

    assert result.success and request.partition_key == partition_key(hour)
    assert (
        hub.queries("kma_sfctm2.php").count(
            {"tm": hour.strftime("%Y%m%d%H%M"), "stn": "0", "help": "0", "authKey": "test-key"}
        )
        >= 4
    )
    assert len(asks_after) == 1  # landed at the first ask after publication
    table = PREDICTIONS.table()
    engine = sa.create_engine(f"sqlite:///{trained_dir / 'weather.db'}")
    with engine.connect() as connection:
        count = sa.select(sa.func.count()).where(table.c.prediction_datetime == hour)
        assert connection.execute(count).scalar_one() == 2
    engine.dispose()
