"""Model monitoring: the domain's figures (fast), then the asset on a trained champion: ordinary days raise no ERROR, a
stuck humidity sensor injected into the offline generator does, and the sensor requests one train run for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from weather_assets import runs
from weather_assets.defs import checks
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.assets.monitoring import model_monitoring
from weather_assets.defs.partitions import daily, daily_partitions, kst_hours
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient, SensorFault
from weather_assets.defs.sensors import retrain_on_monitoring_error
from weather_assets.domain import monitoring
from weather_assets.domain.features import MEASUREMENTS
from weather_assets.domain.hours import kst_now
from weather_assets.offline import observations
from weather_assets.offline.observations import Fault
from weather_assets_tests.helpers import ingest

TRAINED_FROM = datetime(2026, 9, 1)  # the champion's 30-day window: September
FAULT_FROM = datetime(2026, 10, 8)  # station 108's humidity sensor stuck at 100 % from here on
# A mountain station (the worst fitted), Seoul, Incheon and Busan: four of ten, to keep the ingest and training short.
STATIONS = "100,108,112,159"


def day_frame(day: datetime, stations: tuple[int, ...] = (108, 112), **columns: list[float]) -> pd.DataFrame:
    """24 hours of feature rows per station, with a daily cycle in every measurement, or `columns` instead."""
    hours = [day + timedelta(hours=h) for h in range(24)]
    cycle = np.cos(np.linspace(0, 2 * np.pi, 24, endpoint=False))
    rows = []
    for station in stations:
        for i, hour in enumerate(hours):
            values = {name: 10 + 5 * cycle[i] + station % 7 for name in MEASUREMENTS}
            values |= {name: column[i] for name, column in columns.items()}
            rows.append({"station_id": station, "observed_at": hour, **values})
    return pd.DataFrame(rows)


def window(days: int = 30, **columns: list[float]) -> pd.DataFrame:
    return pd.concat([day_frame(datetime(2026, 9, 1) + timedelta(days=d), **columns) for d in range(days)])


def test_a_day_like_the_training_window_does_not_drift() -> None:
    ref = monitoring.reference(window(), validation_mae=0.3)
    drift = monitoring.drift(day_frame(datetime(2026, 10, 1)), ref)
    for item in drift.values():
        assert item.psi < 0.01 and item.out_of_range_share == 0 and item.missing_rate_change == 0
        assert item.stuck_stations == []
    assert checks.measurements_like_training(drift).passed


def test_a_shifted_measurement_drifts_and_leaves_the_training_range() -> None:
    ref = monitoring.reference(window(), validation_mae=0.3)
    shifted = day_frame(datetime(2026, 10, 1))
    shifted["temperature"] += 8
    drift = monitoring.drift(shifted, ref)["temperature"]
    assert drift.psi > 1 and drift.out_of_range_share > 0.3
    result = checks.measurements_like_training(monitoring.drift(shifted, ref))
    assert (result.passed, result.severity) == (False, dg.AssetCheckSeverity.ERROR)


def test_a_sensor_that_stops_changing_is_stuck_unless_it_never_changed_in_training() -> None:
    ref = monitoring.reference(window(precipitation=[0.0] * 24), validation_mae=0.3)
    day = day_frame(datetime(2026, 10, 1), precipitation=[0.0] * 24)
    day.loc[day["station_id"] == 108, "humidity"] = 100.0
    drift = monitoring.drift(day, ref)
    assert drift["humidity"].stuck_stations == [108]
    assert drift["precipitation"].stuck_stations == []  # dry all day is ordinary
    assert checks.measurements_like_training(drift).severity == dg.AssetCheckSeverity.ERROR


def test_missing_readings_raise_the_missing_rate() -> None:
    ref = monitoring.reference(window(), validation_mae=0.3)
    day = day_frame(datetime(2026, 10, 1))
    day.loc[day["station_id"] == 108, "pressure"] = np.nan
    assert monitoring.drift(day, ref)["pressure"].missing_rate_change == pytest.approx(0.5)


def test_live_error_per_station_and_the_worst() -> None:
    frame = day_frame(datetime(2026, 10, 1))
    truth = pd.Series(np.full(len(frame), 50.0))
    predicted = np.where(frame["station_id"] == 112, 53.0, 50.5)
    error = monitoring.live_error(frame, predicted, truth)
    assert error.mae == pytest.approx(1.75) and error.rmse == pytest.approx(np.sqrt((9 + 0.25) / 2))
    assert (error.worst_station, error.worst_station_mae) == (112, pytest.approx(3.0))
    table = monitoring.station_table(frame, error, monitoring.reference(window(), 0.3))
    assert len(table.splitlines()) == 4 and "| 112 | 24 | 3.00 | 3.00 |" in table


@pytest.mark.parametrize(
    ("mae", "passed", "severity"), [(0.5, True, None), (1.0, False, "WARN"), (1.5, False, "ERROR")]
)
def test_live_error_is_graded_against_the_validation_mae(mae: float, passed: bool, severity: str | None) -> None:
    frame = day_frame(datetime(2026, 10, 1))
    error = monitoring.live_error(frame, np.full(len(frame), mae), pd.Series(np.zeros(len(frame))))
    result = checks.live_error_within_bounds(error, monitoring.Reference(0.3, {}))
    assert result.passed == passed
    assert passed or result.severity.value == severity


def test_the_reference_survives_its_json_round_trip() -> None:
    ref = monitoring.reference(window(), validation_mae=0.3)
    assert monitoring.Reference.from_dict(ref.to_dict()) == ref


def test_a_fault_changes_only_its_station_and_field_from_its_hour_on() -> None:
    params = {"tm1": "202610072200", "tm2": "202610080200", "stn": "0"}
    fault = Fault(108, "HM", "stuck", 100.0, FAULT_FROM)
    plain = observations.respond("kma_sfctm3.php", params).decode().splitlines()
    broken = observations.respond("kma_sfctm3.php", params, [fault]).decode().splitlines()
    changed = [line.split() for line, before in zip(broken, plain, strict=True) if line != before]
    assert [fields[:2] for fields in changed] == [[f"20261008{h:02d}00", "108"] for h in range(3)]
    assert all(fields[13] == "100.0" for fields in changed)
    shifted = Fault(108, "TA", "shift", 8.0, FAULT_FROM).apply(observations.observe(108, FAULT_FROM))
    assert shifted["TA"] == pytest.approx(observations.observe(108, FAULT_FROM)["TA"] + 8)


def test_days_are_kst_days_of_the_hourly_partitions() -> None:
    assert daily.timezone == "Asia/Seoul"
    assert kst_hours(daily.time_window_for_partition_key("2026-10-08"))[::23] == [
        datetime(2026, 10, 8, 0),
        datetime(2026, 10, 8, 23),
    ]
    assert daily_partitions("2025-01-01-05:00").get_first_partition_key() == "2025-01-02"  # whole days only


# --- the asset on a trained champion --------------------------------------------------------------------------------


@dataclass
class History:
    """September ingested and a champion trained on it, then ordinary October days and two with a stuck sensor."""

    data_dir: Path

    def monitor(self, first: datetime, days: int, instance: dg.DagsterInstance) -> list[dg.ExecuteInProcessResult]:
        resources = {
            "lake": Lake(data_dir=str(self.data_dir)),
            "model_registry": ModelRegistry(data_dir=str(self.data_dir)),
        }
        return [
            dg.materialize(
                [model_monitoring],
                resources=resources,
                partition_key=(first + timedelta(days=d)).strftime("%Y-%m-%d"),
                instance=instance,
            )
            for d in range(days)
        ]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    data_dir = tmp_path_factory.mktemp("monitoring") / "weather"
    lake, instance = Lake(data_dir=str(data_dir)), dg.DagsterInstance.ephemeral()

    def ingested(first: datetime, days: int, kma: OfflineKMAClient) -> None:
        last = first + timedelta(days=days, hours=-1)
        assert ingest({"kma": kma, "lake": lake}, first, last, instance=instance).success

    ingested(TRAINED_FROM, 30, OfflineKMAClient(stations=STATIONS))
    tracking = MLflowTracking(registry=ModelRegistry(data_dir=str(data_dir)))
    assert dg.materialize([comfort_model], resources={"lake": lake, "mlflow": tracking}, instance=instance).success
    ingested(FAULT_FROM - timedelta(days=7), 7, OfflineKMAClient(stations=STATIONS))
    stuck = SensorFault(station_id=108, field="HM", kind="stuck", value=100.0, start="2026-10-08-00:00")
    ingested(FAULT_FROM, 2, OfflineKMAClient(stations=STATIONS, faults=[stuck]))
    yield History(data_dir)


def errors(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        e.asset_check_key.name
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]


@pytest.mark.slow
def test_thirty_ordinary_days_raise_no_error_and_show_their_figures(history: History) -> None:
    """The last 23 days of the champion's window and the week after it."""
    results = history.monitor(FAULT_FROM - timedelta(days=30), 30, dg.DagsterInstance.ephemeral())
    assert [errors(result) for result in results] == [[]] * 30
    meta = runs.metadata(results[-1], "model_monitoring")
    assert meta["hours"] == 24 and meta["dagster/row_count"] == 96 and meta["champion"] == "comfort-model/1"
    assert meta["live_mae"] < 2 * meta["validation_mae"]
    assert {f"psi_{name}" for name in MEASUREMENTS} <= set(meta) and meta["stuck_sensors"] == 0
    assert meta["by_station"].count("\n") == 5  # header, rule, four stations


@pytest.mark.slow
def test_a_stuck_humidity_sensor_fails_drift_with_error_and_requests_one_train_run(history: History) -> None:
    """ERROR on the sensor's first stuck day; the sensor requests one train run for it, though a later evaluation
    (an ordinary day monitored again) passed before its tick."""
    with dg.instance_for_test() as instance:
        results = history.monitor(FAULT_FROM, 2, instance)
        assert errors(results[0]) == ["monitoring_drift"]
        assert errors(history.monitor(FAULT_FROM - timedelta(days=1), 1, instance)[0]) == []  # the latest passes
        drift = next(
            e for e in results[0].get_asset_check_evaluations() if e.asset_check_key.name == "monitoring_drift"
        )
        assert drift.metadata["stuck_stations"].value == {"humidity": [108]}

        def tick(cursor: str | None) -> dg.SensorResult:
            with dg.build_sensor_context(cursor=cursor, instance=instance) as context:
                return retrain_on_monitoring_error(context)

        first = tick(None)
        assert [request.run_key for request in first.run_requests] == [f"monitoring-{kst_now().date()}"]
        assert tick(first.cursor).run_requests == []  # the same evaluations: nothing new
        assert [request.run_key for request in tick(None).run_requests] == [first.run_requests[0].run_key]
