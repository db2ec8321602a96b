"""Each asset check passes on good data and fails on data built to break it; the assets emit their checks."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from weather_assets.defs import checks
from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.partitions import range_tags
from weather_assets.defs.resources import lake
from weather_assets.defs.resources.lake import Lake, features_key
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.domain.hours import partition_key
from weather_assets_tests.helpers import check_evaluations

HOUR = datetime(2026, 11, 26, 9)


def good_features() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "station_id": [100, 108, 112],
            "observed_at": [HOUR] * 3,
            "temperature": [-3.5, 4.2, 6.0],
            "humidity": [70.0, 55.0, 80.0],
            "precipitation": [0.0, 0.0, 1.5],
            "pm10": [float("nan"), 40.0, 33.0],  # station 100 has no dust sensor
            "wind_speed": [6.2, 1.8, 3.1],
            "pressure": [1016.0, 1015.2, 1014.8],
        }
    )


def good_predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {"prediction_datetime": [HOUR] * 3, "station_id": [100, 108, 112], "comfort_score": [0.0, 55.3, 100.0]}
    )


def test_values_in_range() -> None:
    assert checks.values_in_range(good_features()).passed
    hot = good_features().assign(temperature=[-3.5, 61.0, 6.0])
    result = checks.values_in_range(hot)
    assert not result.passed
    assert result.metadata["outside_range"].value == {"temperature": 1}


@pytest.mark.parametrize(("column", "value"), [("humidity", 101.0), ("precipitation", -0.1), ("pressure", 850.0)])
def test_values_in_range_catches_each_column(column: str, value: float) -> None:
    broken = good_features()
    broken.loc[1, column] = value
    assert not checks.values_in_range(broken).passed


def test_missing_share() -> None:
    assert checks.missing_share(good_features()).passed  # PM10 1/3 missing is within its 50 % allowance
    broken = good_features().assign(humidity=[float("nan"), 55.0, 80.0])  # 1/3 > 10 %
    result = checks.missing_share(broken)
    assert not result.passed
    assert set(result.metadata["over_allowance"].value) == {"humidity"}


def test_missing_share_fails_on_precipitation_without_usable_figures() -> None:
    """Precipitation can be missing now (IR 4, no usable RN_DAY): too much of it fails the check."""
    broken = good_features().assign(precipitation=[float("nan"), 0.0, 1.5])  # 1/3 > 10 %
    result = checks.missing_share(broken)
    assert not result.passed
    assert result.metadata["over_allowance"].value == {"precipitation": pytest.approx(0.3333)}


def test_one_row_per_station_hour() -> None:
    assert checks.one_row_per_station_hour(good_features(), checks.KEY).passed
    doubled = pd.concat([good_features(), good_features().iloc[[1]]], ignore_index=True)
    result = checks.one_row_per_station_hour(doubled, checks.KEY)
    assert not result.passed
    assert result.metadata["duplicated_rows"].value == 2


def test_duplicate_lines_resolved_by_ingest_still_fail_the_check_as_a_warning() -> None:
    result = checks.one_row_per_station_hour(good_features(), checks.KEY, raw_duplicates=2)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN  # the rows are fine: nothing downstream is blocked
    assert result.metadata["duplicate_raw_lines"].value == 2


def test_scores_in_range() -> None:
    assert checks.scores_in_range(good_predictions()).passed
    assert not checks.scores_in_range(good_predictions().assign(comfort_score=[0.0, 100.5, 50.0])).passed
    assert not checks.scores_in_range(good_predictions().assign(comfort_score=[-1.0, 50.0, 50.0])).passed


def test_rows_match_features() -> None:
    assert checks.rows_match_features(good_predictions(), good_features()).passed
    result = checks.rows_match_features(good_predictions().iloc[:2], good_features())
    assert not result.passed
    assert result.metadata["mismatched_hours"].value == {"2026-11-26-09:00": {"features": 3, "predictions": 2}}


def test_feature_checks_run_with_the_ingest_range_and_pass_on_generator_data(tmp_path: Path) -> None:
    result = dg.materialize(
        [kma_observations, weather_features],
        resources={"kma": OfflineKMAClient(), "lake": Lake(data_dir=str(tmp_path))},
        tags=range_tags(HOUR - timedelta(hours=5), HOUR),
        instance=dg.DagsterInstance.ephemeral(),
    )

    evaluations = check_evaluations(result)
    assert evaluations == {
        "features_values_in_range": True,
        "features_missing_share": True,
        "features_one_row_per_station_hour": True,
        "features_read_back": True,
    }
    judged = {e.asset_check_key.name: e.metadata["partitions"].value for e in result.get_asset_check_evaluations()}
    assert set(judged.values()) == {"2026-11-26-04:00 to 2026-11-26-09:00"}  # the run's range, named in each result


def test_a_failing_blocking_feature_check_stops_the_downstream_steps_of_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest drops duplicate station-hours before writing, so the duplicate check is made to fail (a stand-in)."""
    doubled, real = good_features().iloc[[0, 0]], checks.one_row_per_station_hour
    monkeypatch.setattr(checks, "one_row_per_station_hour", lambda _frame, key, **_: real(doubled, key))

    @dg.asset(
        deps=[weather_features],
        partitions_def=weather_features.partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),  # as the features': one run for the range, no UserWarning
    )
    def downstream() -> None:
        """Anything that reads the features."""

    result = dg.materialize(
        [kma_observations, weather_features, downstream],
        resources={"kma": OfflineKMAClient(), "lake": Lake(data_dir=str(tmp_path))},
        tags=range_tags(HOUR - timedelta(hours=1), HOUR),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )

    evaluations = check_evaluations(result)
    assert evaluations["features_one_row_per_station_hour"] is False
    assert evaluations["features_values_in_range"] is True  # the other checks of the same step still report
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {kma_observations.key, weather_features.key}
    assert not result.success


def test_a_feature_file_that_does_not_read_back_fails_its_check_naming_it_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storage that loses the end of an object (a stand-in: the local store cuts one feature file short)."""
    bad = HOUR - timedelta(hours=1)
    write = lake._LocalStore.write
    monkeypatch.setattr(
        lake._LocalStore,
        "write",
        lambda store, key, data: write(store, key, data[: len(data) // 2] if key == features_key(bad) else data),
    )

    @dg.asset(
        deps=[weather_features],
        partitions_def=weather_features.partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def downstream() -> None:
        """Anything that reads the features."""

    written = Lake(data_dir=str(tmp_path))
    result = dg.materialize(
        [kma_observations, weather_features, downstream],
        resources={"kma": OfflineKMAClient(), "lake": written},
        tags=range_tags(HOUR - timedelta(hours=2), HOUR),
        instance=dg.DagsterInstance.ephemeral(),
    )

    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.asset_check_key.name == "features_read_back"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["unreadable_hours"].value == 1
    (named,) = evaluation.metadata["unreadable_objects"].value.items()
    assert named[0] == partition_key(bad)
    assert named[1].startswith(
        f"features of {partition_key(bad)}: {written.uri(features_key(bad))} is not a feature file"
    )
    assert downstream.key in {e.asset_key for e in result.get_asset_materialization_events()}  # not blocking
