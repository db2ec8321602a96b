"""The forecast stage with real parts: the offline generator's forecast answers, the lake, a trained champion,
the IO manager on SQLite and MariaDB, and the whole chain through the `dagster` CLI."""

from __future__ import annotations

import io
import json
import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from weather_assets.definitions import defs
from weather_assets.defs.assets.forecasts import (
    QUOTA_RETRIES,
    QUOTA_RETRY_SECONDS,
    forecast_features,
    kma_forecasts,
)
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.assets.skill import forecast_skill, skill_by_lead
from weather_assets.defs.partitions import range_tags
from weather_assets.defs.resources.kma_client import KMAHubClient
from weather_assets.defs.resources.lake import Lake, features_key, forecast_features_key, forecast_raw_key
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.defs.resources.predictions_db import ComfortDatabase, tables_resources
from weather_assets.defs.schedules import forecast_issued
from weather_assets.domain.hours import current_hour, kst_now, partition_key
from weather_assets.domain.tables import FORECASTS
from weather_assets.kma.forecast import latest_issue
from weather_assets.runs import failures, metadata
from weather_assets_tests.helpers import FORECAST_STATIONS, copy_data_dir, dagster_materialize, forecast, ingest_missing
from weather_assets_tests.kma_hub import FakeHub, status
from weather_assets_tests.scratch import unconfigured_environment


def latest_due_issue() -> datetime:
    """The newest forecast issue KMA (and the generator) serves now."""
    return latest_issue(kst_now())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, trained_template: Path) -> Path:
    """Observed hours up to now and a champion, as after the main command."""
    data = copy_data_dir(trained_template, tmp_path_factory.mktemp("forecasts") / "weather")
    last = current_hour() - timedelta(hours=1)
    ingest_missing(data, last - timedelta(hours=95), last)
    return data


def test_an_issue_becomes_comfort_forecasts_once_per_station_hour_and_issue(trained: Path, db_url: str) -> None:
    issue = latest_due_issue()
    first = forecast(trained, db_url, issue)
    assert first.success, failures(first)
    again = forecast(trained, db_url, issue)
    assert again.success, failures(again)

    rows = ComfortDatabase(url=db_url).rows(FORECASTS)
    assert set(rows["issued_at"]) == {issue}
    assert not rows.duplicated(["forecast_datetime", "station_id", "issued_at"]).any()
    assert set(rows["station_id"]) == {108, 159}
    assert rows["lead_hours"].min() >= 1 and rows["lead_hours"].max() > 3 * 24  # to the fourth or fifth day
    assert ((rows["forecast_datetime"] - rows["issued_at"]) / pd.Timedelta(hours=1) == rows["lead_hours"]).all()
    assert rows["comfort_score"].between(0, 100).all()
    assert set(rows["carried_inputs"]) == {"pm10,pressure"}
    assert rows["pressure"].notna().all()  # carried from the latest observation of each station
    written = [e for e in again.get_asset_materialization_events() if e.asset_key == dg.AssetKey("weather_forecasts")]
    assert written[0].materialization.metadata["rows_updated"].value == len(rows)


def test_an_issue_kma_no_longer_serves_fails_at_once_without_retry(tmp_path: Path) -> None:
    old = latest_due_issue() - timedelta(days=10)
    result = forecast(tmp_path, f"sqlite:///{tmp_path / 'w.db'}", old)

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "leave it out of the backfill" in str(failure.step_failure_data.error)
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]


def an_evening_issue() -> datetime:
    """The newest 17:00 issue that is out: it reaches 그글피, more items than a 1000-row page."""
    issue = latest_due_issue()
    while issue.hour != 17:
        issue -= timedelta(hours=3)
    return issue


def test_every_page_is_kept_as_received_and_all_are_read(trained: Path, tmp_path: Path) -> None:
    issue = an_evening_issue()
    result = forecast(trained, f"sqlite:///{tmp_path / 'w.db'}", issue)
    assert result.success, failures(result)

    stored = trained / "lake" / "raw" / "forecast" / f"{issue:%Y%m%d%H%M}"
    assert sorted(path.name for path in stored.iterdir()) == [
        "60_127.json", "60_127_page2.json", "97_74.json", "97_74_page2.json",
    ]  # fmt: skip
    assert (stored / "60_127_page2.json").read_bytes() == OfflineKMAClient(stations="108").fetch_forecast(
        issue, [(60, 127)]
    )[(60, 127)][1]
    raw = metadata(result, "kma_forecasts")
    assert raw["pages"] == 4 and raw["total_count"] > 2000 and "60,127: " in raw["grid_points"]
    features = metadata(result, "forecast_features")
    assert features["forecast_hours"] == 6 + 72 + 8 and features["unreadable_values"] == 0
    assert features["lead_hours"] == "1 .. 100"  # 그글피 21:00 is 100 hours after 17:00


def test_an_unknown_value_is_missing_for_its_hour_and_counted(tmp_path: Path) -> None:
    """A word the parser does not know costs its hour that value, with a warning and a count, not the issue."""
    issue = latest_due_issue()
    lake = Lake(data_dir=str(tmp_path))
    pages = OfflineKMAClient(stations="108").fetch_forecast(issue, [(60, 127)])[(60, 127)]
    answer = json.loads(pages[0])
    next(i for i in answer["response"]["body"]["items"]["item"] if i["category"] == "PCP")["fcstValue"] = "비 조금"
    odd = json.dumps(answer, ensure_ascii=False).encode()
    for number, body in enumerate([odd, *pages[1:]], start=1):
        lake.write(forecast_raw_key(issue, (60, 127), number), body)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [forecast_features],
        resources={"kma": OfflineKMAClient(stations="108"), "lake": lake},
        partition_key=partition_key(issue),
        instance=instance,
    )

    features = metadata(result, "forecast_features")
    assert features["unreadable_values"] == 1
    (warning,) = [entry for entry in instance.all_logs(result.run_id) if "비 조금" in entry.user_message]
    assert warning.level == logging.WARNING and "nx=60, ny=127" in warning.user_message
    assert f"issue {issue:%Y-%m-%d %H:%M} KST" in warning.user_message
    rows = pd.read_parquet(io.BytesIO(lake.read(forecast_features_key(issue))))
    assert rows["precipitation"].isna().sum() == 1 and rows["temperature"].notna().all()
    rain = rows["precipitation"].dropna()  # the missing hour counts for neither figure
    assert features["precipitation_mm_total"] == pytest.approx(rain.sum(), abs=0.05)
    assert isinstance(features["precipitation_mm_total"], float) and str(features["precipitation_mm_total"])[0] != "-"
    assert features["wet_station_hours"] == len(rain[rain > 0])


def test_an_unreadable_observed_hour_is_passed_over_for_the_carried_values_with_a_warning(
    trained: Path, tmp_path: Path
) -> None:
    """PM10 and pressure come from the latest readable observed hour: a corrupt one costs that hour, not the issue."""
    issue = latest_due_issue()
    shutil.copytree(trained / "lake", tmp_path / "lake")
    lake = Lake(data_dir=str(tmp_path))
    newest = max(hour for hour in (issue - timedelta(hours=h) for h in range(6)) if hour < current_hour())
    lake.write(features_key(newest), b"")
    for number, body in enumerate(
        OfflineKMAClient(stations="108").fetch_forecast(issue, [(60, 127)])[(60, 127)], start=1
    ):
        lake.write(forecast_raw_key(issue, (60, 127), number), body)
    instance = dg.DagsterInstance.ephemeral()

    result = dg.materialize(
        [forecast_features],
        resources={"kma": OfflineKMAClient(stations="108"), "lake": lake},
        partition_key=partition_key(issue),
        instance=instance,
        raise_on_error=False,
    )

    assert result.success, failures(result)
    rows = pd.read_parquet(io.BytesIO(lake.read(forecast_features_key(issue))))
    assert rows["pressure"].notna().all()  # from the hour before the corrupt one
    logged = [entry.user_message for entry in instance.all_logs(result.run_id) if entry.level == logging.WARNING]
    assert any(f"features of {partition_key(newest)}: {lake.uri(features_key(newest))}" in line for line in logged)


def test_forecast_skill_charts_the_error_by_lead_once_hours_are_observed(trained: Path, tmp_path: Path) -> None:
    db = ComfortDatabase(url=f"sqlite:///{tmp_path / 'skill.db'}")
    issue = latest_due_issue() - timedelta(hours=24)
    assert forecast(trained, db.url, issue).success
    first, last = issue + timedelta(hours=1), current_hour() - timedelta(hours=1)
    predicted = dg.materialize(
        [weather_predictions],
        resources={"lake": Lake(data_dir=str(trained)), "model_registry": ModelRegistry(data_dir=str(trained)),
                   **tables_resources(db)},
        tags=range_tags(first, last),
        instance=dg.DagsterInstance.ephemeral(),
    )  # fmt: skip
    assert predicted.success

    skill = dg.materialize([forecast_skill], resources={"database": db})
    meta = metadata(skill, "forecast_skill")
    observed_hours = int((last - first) / timedelta(hours=1)) + 1
    assert meta["dagster/row_count"] == 2 * observed_hours  # two stations, one issue
    assert meta["unobserved_forecast_rows"] == 2  # the current hour is forecast, not yet predicted: counted, not judged
    assert meta["mae_00h"] >= 0 and "| 0-5 h |" in meta["mae_by_lead"]


@pytest.mark.parametrize(
    ("tick", "issue"),
    [("2026-12-01T14:15:00+09:00", "2026-12-01-14:00"), ("2026-12-01T02:15:00+09:00", "2026-12-01-02:00"),
     ("2026-12-31T23:15:00+09:00", "2026-12-31-23:00")],
)  # fmt: skip
def test_the_schedule_asks_for_the_issue_of_its_tick(tick: str, issue: str) -> None:
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime.fromisoformat(tick), repository_def=defs.get_repository_def()
    )
    (request,) = forecast_issued.evaluate_tick(context).run_requests
    assert (request.partition_key, request.run_key) == (issue, issue)


def test_the_schedule_ticks_fifteen_minutes_after_each_base_time_in_seoul() -> None:
    schedule = defs.resolve_schedule_def("forecast_issued")
    assert schedule.cron_schedule == "15 2,5,8,11,14,17,20,23 * * *"
    assert (schedule.execution_timezone, schedule.job_name) == ("Asia/Seoul", "forecast")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_skill_is_the_mean_absolute_error_per_six_hour_lead_bucket() -> None:
    hour = datetime(2026, 12, 1, 9)
    forecasts = pd.DataFrame(
        {
            "forecast_datetime": [hour, hour, hour],
            "station_id": [108, 108, 108],
            "lead_hours": [1, 5, 27],
            "comfort_score": [60.0, 66.0, 40.0],
        }
    )
    observed = pd.DataFrame({"prediction_datetime": [hour], "station_id": [108], "comfort_score": [62.0]})
    skill = skill_by_lead(forecasts, observed).set_index("lead_bucket")
    assert skill.loc[0, "mae"] == pytest.approx(3.0) and skill.loc[0, "samples"] == 2
    assert skill.loc[24, "mae"] == pytest.approx(22.0) and skill.loc[24, "leads"] == "24-29 h"


@pytest.mark.slow
@pytest.mark.mysql
def test_the_whole_chain_through_the_dagster_cli_into_mariadb(trained: Path, mysql_database: str) -> None:
    """`dagster asset materialize` of one issue, as an operator would from a terminal, into MariaDB."""
    issue = latest_due_issue()
    env = unconfigured_environment()
    env |= {"WEATHER_DATA_DIR": str(trained), "WEATHER_STATIONS": FORECAST_STATIONS, "WEATHER_DB_URL": mysql_database}
    env |= {"DAGSTER_HOME": str(trained)}
    selection = "kma_forecasts,forecast_features,weather_forecasts"
    done = dagster_materialize(env, "--select", selection, "--partition", partition_key(issue))
    assert done.returncode == 0, done.stderr[-3000:]

    with sa.create_engine(mysql_database).connect() as connection:
        count, stations, issues = connection.execute(
            sa.text("SELECT COUNT(*), COUNT(DISTINCT station_id), COUNT(DISTINCT issued_at) FROM weather_forecasts")
        ).one()
    assert stations == 2 and issues == 1 and count >= 2 * 48


def test_an_issue_kma_serves_late_lands_once_it_is_served(tmp_path: Path, hub: FakeHub) -> None:
    """A loopback API Hub that answers NO_DATA twice: the run asks again each poll and stores the issue."""
    nodata = b'{"response":{"header":{"resultCode":"03","resultMsg":"NO_DATA"}}}'
    hub.script.extend([status(200, nodata), status(200, nodata)])
    kma = KMAHubClient(
        auth_key="test-key", forecast_url=hub.forecast_url, stations="108", backoff_seconds=0.01,
        publication_poll_seconds=1, publication_wait_minutes=600,
    )  # fmt: skip
    result = dg.materialize(
        [kma_forecasts],
        resources={"kma": kma, "lake": Lake(data_dir=str(tmp_path))},
        partition_key=partition_key(latest_due_issue()),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )

    assert result.success, failures(result)
    assert [query["pageNo"] for query in hub.queries("getVilageFcst")][:3] == ["1", "1", "1"]  # two NO_DATA, then it
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 2
    assert list((tmp_path / "lake" / "raw" / "forecast").rglob("*.json"))


def refused(hub: FakeHub, lake: Path, issue: datetime, body: bytes, **kma: object) -> BaseException:
    """What `kma_forecasts` raises for the issue when the loopback API Hub answers `body`."""
    hub.script.append(status(200, body))
    client = KMAHubClient(auth_key="test-key", forecast_url=hub.forecast_url, stations="108", **kma)
    context = dg.build_asset_context(partition_key=partition_key(issue))
    with pytest.raises((dg.Failure, dg.RetryRequested)) as caught:
        kma_forecasts(context, kma=client, lake=Lake(data_dir=str(lake)))
    return caught.value


def gateway_error(code: str, message: str) -> bytes:
    return (
        f"<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg><returnAuthMsg>{message}"
        f"</returnAuthMsg><returnReasonCode>{code}</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>"
    ).encode()


NO_DATA = b'{"response":{"header":{"resultCode":"03","resultMsg":"NO_DATA"}}}'


def test_no_data_after_the_wait_is_a_failure_not_retried(hub: FakeHub, tmp_path: Path) -> None:
    issue = latest_due_issue() - timedelta(hours=6)
    error = refused(hub, tmp_path, issue, NO_DATA, publication_wait_minutes=60)
    assert isinstance(error, dg.Failure) and not error.allow_retries
    assert "has not published" in str(error) and "03" in str(error) and partition_key(issue) in str(error)


def test_no_data_for_an_issue_older_than_kma_serves_says_so(hub: FakeHub, tmp_path: Path) -> None:
    error = refused(hub, tmp_path, latest_due_issue() - timedelta(days=4), NO_DATA)
    assert isinstance(error, dg.Failure) and not error.allow_retries
    assert "last three days" in str(error) and "leave it out of the backfill" in str(error)


def test_a_spent_quota_is_asked_again_later(hub: FakeHub, tmp_path: Path) -> None:
    error = refused(
        hub, tmp_path, latest_due_issue(), gateway_error("22", "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR")
    )
    assert isinstance(error, dg.RetryRequested)
    assert (error.seconds_to_wait, error.max_retries) == (QUOTA_RETRY_SECONDS, QUOTA_RETRIES)


@pytest.mark.parametrize(
    ("code", "message"),
    [("30", "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"), ("20", "SERVICE_ACCESS_DENIED_ERROR"), ("10", "INVALID_PARAM")],
)
def test_other_codes_fail_as_kma_named_them_without_retry_or_key(
    hub: FakeHub, tmp_path: Path, code: str, message: str
) -> None:
    error = refused(hub, tmp_path, latest_due_issue(), gateway_error(code, message))
    assert isinstance(error, dg.Failure) and not error.allow_retries
    assert f"result code {code}" in str(error) and message in str(error)
    assert "three days" not in str(error) and "test-key" not in str(error)


def test_an_issue_longer_than_the_pages_read_fails_without_retry(hub: FakeHub, tmp_path: Path) -> None:
    """A 17:00 issue takes two pages; with one allowed, asking again cannot help, so the run is not retried."""
    issue = latest_due_issue() - timedelta(hours=3)
    while issue.hour != 17:
        issue -= timedelta(hours=3)
    client = KMAHubClient(auth_key="test-key", forecast_url=hub.forecast_url, stations="108", max_forecast_pages=1)
    retried = dg.define_asset_job("retried", [kma_forecasts], op_retry_policy=dg.RetryPolicy(max_retries=2))
    job = dg.Definitions(
        assets=[kma_forecasts], jobs=[retried], resources={"kma": client, "lake": Lake(data_dir=str(tmp_path))}
    ).resolve_job_def("retried")

    result = job.execute_in_process(partition_key=partition_key(issue), raise_on_error=False)

    failure = next(event for event in result.all_events if event.is_step_failure).step_failure_data
    assert "max_forecast_pages" in failure.error.message and "test-key" not in failure.error.message
    assert not any(event.is_step_up_for_retry for event in result.all_events)  # the policy would have retried
    assert not (tmp_path / "lake").exists()  # nothing of the issue was written
