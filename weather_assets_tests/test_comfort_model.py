"""comfort_model with a real MLflow tracking and registry store (SQLite file) in a temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from threadpoolctl import ThreadpoolController

from weather_assets import runs
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.resources.lake import Lake, features_key
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import (
    CHAMPION,
    MODEL_NAME,
    Champion,
    ModelRegistry,
    _one_job,
    champion_version,
    load_champion,
    promote_if_better,
    register,
)
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.domain import comfort, features
from weather_assets.domain.features import MEASUREMENTS
from weather_assets.domain.hours import partition_key
from weather_assets.domain.training import FEATURES, candidates, feature_matrix, fit_candidates, time_split
from weather_assets_tests.helpers import STATIONS, copy_data_dir, ingest

END = datetime(2026, 11, 20)


@dataclass
class History:
    """30 days x 10 stations of ingested generator data, and the Dagster instance that knows it."""

    lake_dir: Path
    instance: dg.DagsterInstance


@dataclass
class Training:
    """An MLflow store (its folder) and the training run that left it as it is."""

    store: Path
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    lake_dir = tmp_path_factory.mktemp("history")
    instance = dg.DagsterInstance.ephemeral()
    resources = {"kma": OfflineKMAClient(stations=STATIONS), "lake": Lake(data_dir=str(lake_dir))}
    assert ingest(resources, END - timedelta(days=30), END - timedelta(hours=1), instance=instance).success
    yield History(lake_dir, instance)


@pytest.fixture(scope="module")
def first_training(history: History, tmp_path_factory: pytest.TempPathFactory) -> Training:
    """The first training on the history, into an empty store: version 1, the champion. Tests that go on from
    there train into a copy of the store."""
    store = tmp_path_factory.mktemp("first") / "mlflow"
    return Training(store, train(history, store))


@pytest.fixture(scope="module")
def second_training(history: History, first_training: Training, tmp_path_factory: pytest.TempPathFactory) -> Training:
    """The same training again, into a copy of the first's store: version 2, of the champion's quality."""
    store = copy_data_dir(first_training.store, tmp_path_factory.mktemp("second") / "mlflow")
    return Training(store, train(history, store))


def tracking(mlflow_dir: Path) -> MLflowTracking:
    return MLflowTracking(registry=ModelRegistry(data_dir=str(mlflow_dir)))


def train(history: History, mlflow_dir: Path, **config: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [comfort_model],
        resources={
            "lake": Lake(data_dir=str(history.lake_dir)),
            "mlflow": tracking(mlflow_dir),
        },
        instance=history.instance,
        run_config={"ops": {"comfort_model": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    assert result.success, runs.failures(result)
    return runs.metadata(result, "comfort_model")


def uri(mlflow_dir: Path) -> str:
    return ModelRegistry(data_dir=str(mlflow_dir)).uri()


def registry_client(mlflow_dir: Path) -> MlflowClient:
    """A client of this test's store only (MlflowClient alone would follow the process-wide registry URI)."""
    return MlflowClient(tracking_uri=uri(mlflow_dir), registry_uri=uri(mlflow_dir))


@pytest.mark.slow
def test_first_training_registers_version_1_as_champion_and_same_data_does_not_displace_it(
    first_training: Training, second_training: Training
) -> None:
    meta = metadata(first_training.result)
    assert (meta["registered_version"], meta["champion_changed"], meta["champion_version"]) == ("1", True, "1")
    assert meta["winner"] == "hist_gradient_boosting"
    assert meta["val_rmse_hist_gradient_boosting"] <= 2.0  # the quality target, on 30 days x 10 stations
    assert meta["val_rmse_linear"] > meta["val_rmse_hist_gradient_boosting"]
    assert meta["hours"] == 720 and meta["dagster/row_count"] == 7200

    client = registry_client(first_training.store)
    run = client.get_run(meta["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster_run_id"] == first_training.result.run_id  # the MLflow run names the Dagster run
    assert run.data.params["features"] == ",".join(FEATURES)
    assert {"linear_val_rmse", "random_forest_val_mae", "hist_gradient_boosting_val_r2"} <= set(run.data.metrics)
    version = client.get_model_version(MODEL_NAME, "1")
    assert version.run_id == run.info.run_id
    assert champion_version(client) == "1"

    second = metadata(second_training.result)
    assert (second["registered_version"], second["champion_changed"], second["champion_version"]) == ("2", False, "1")
    assert "does not beat" in second["decision"]
    assert champion_version(registry_client(second_training.store)) == "1"


@pytest.mark.slow
def test_model_without_a_feature_is_registered_but_not_promoted(
    history: History, first_training: Training, tmp_path: Path
) -> None:
    store = copy_data_dir(first_training.store, tmp_path / "mlflow")
    assert champion_version(registry_client(store)) == "1"

    without_temperature = [name for name in FEATURES if name != "temperature"]
    meta = metadata(train(history, store, features=without_temperature))

    assert meta["registered_version"] == "2"
    assert meta["champion_changed"] is False
    assert meta["val_rmse_hist_gradient_boosting"] > meta["champion_val_rmse"]
    assert champion_version(registry_client(store)) == "1"


@pytest.mark.slow
def test_model_trained_on_corrupted_labels_is_not_promoted(
    history: History, first_training: Training, tmp_path: Path
) -> None:
    store = copy_data_dir(first_training.store, tmp_path / "mlflow")
    assert champion_version(registry_client(store)) == "1"
    lake = Lake(data_dir=str(history.lake_dir))
    hours = [END - timedelta(hours=h) for h in range(240, 0, -1)]
    frame = pd.concat([features.from_parquet(lake.read(features_key(hour))) for hour in hours], ignore_index=True)
    truth = comfort.score(frame)
    corrupted = truth.sample(frac=1.0, random_state=1).to_numpy()  # right values, wrong rows
    matrix = feature_matrix(frame)
    train_rows, validation_rows = time_split(frame, 0.2)

    winner = fit_candidates(
        matrix[train_rows], corrupted[train_rows.to_numpy()], matrix[validation_rows], truth[validation_rows]
    )[0]
    mlflow.set_tracking_uri(uri(store))
    mlflow.set_registry_uri(uri(store))  # log_model registers there, not in the last training's store
    with mlflow.start_run():
        version = register(winner.model, matrix[validation_rows], matrix[train_rows].head(5))
    decision = promote_if_better(uri(store), version, frame[validation_rows.to_numpy()], truth[validation_rows])

    assert version == "2"
    assert not decision.promoted
    assert decision.rmse > decision.previous_rmse
    assert champion_version(registry_client(store)) == "1"


@pytest.mark.slow
def test_unreadable_hours_are_left_out_of_training_and_named(history: History, tmp_path: Path) -> None:
    """Two corrupt feature files in the window cost two hours of training data, not the training."""
    shutil.copytree(history.lake_dir / "lake", tmp_path / "copy" / "lake")
    lake = Lake(data_dir=str(tmp_path / "copy"))
    bad = [END - timedelta(hours=30), END - timedelta(hours=5)]
    for hour in bad:
        lake.write(features_key(hour), lake.read(features_key(hour))[:100])  # cut short

    result = dg.materialize(
        [comfort_model],
        resources={"lake": lake, "mlflow": tracking(tmp_path)},
        instance=history.instance,
        run_config={"ops": {"comfort_model": {"config": {"window_days": 4}}}},
        raise_on_error=False,
    )

    meta = metadata(result)
    assert (meta["hours"], meta["dagster/row_count"]) == (94, 940)
    assert meta["unreadable_hours"] == 2
    named = meta["unreadable_objects"]
    assert list(named) == [partition_key(hour) for hour in bad]
    for hour in bad:
        assert named[partition_key(hour)].startswith(
            f"features of {partition_key(hour)}: {lake.uri(features_key(hour))} "
        )
    assert registry_client(tmp_path).get_run(meta["mlflow_run_id"]).data.params["unreadable_hours"] == "2"


@pytest.mark.slow
def test_too_little_data_names_what_was_found_and_what_to_backfill(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {"kma": OfflineKMAClient(stations="108"), "lake": Lake(data_dir=str(tmp_path))}
    assert ingest(resources, END - timedelta(hours=10), END - timedelta(hours=1), instance=instance).success

    result = dg.materialize(
        [comfort_model],
        resources={"lake": resources["lake"], "mlflow": tracking(tmp_path)},
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "at least 72 materialized hours" in message
    assert "found 10 materialized hours with 10 rows" in message
    assert "Backfill kma_observations and weather_features" in message
    assert not registry_client(tmp_path).search_registered_models()


@pytest.mark.slow
def test_too_little_readable_data_says_how_many_hours_could_not_be_read(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    lake = Lake(data_dir=str(tmp_path))
    assert ingest(
        {"kma": OfflineKMAClient(stations="108"), "lake": lake},
        END - timedelta(hours=10),
        END - timedelta(hours=1),
        instance=instance,
    ).success
    lake.write(features_key(END - timedelta(hours=4)), b"")

    result = dg.materialize(
        [comfort_model], resources={"lake": lake, "mlflow": tracking(tmp_path)}, instance=instance, raise_on_error=False
    )

    message = str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
    assert "found 9 materialized hours with 9 rows" in message
    assert "that can be read, and 1 whose feature files cannot" in message


@pytest.mark.slow
def test_loader_caches_the_champion_and_picks_up_a_new_one_without_a_restart(
    history: History, second_training: Training, tmp_path: Path
) -> None:
    store = copy_data_dir(second_training.store, tmp_path / "mlflow")  # v1 champion, v2 of the same quality
    hour = END - timedelta(hours=1)
    rows = features.from_parquet(Lake(data_dir=str(history.lake_dir)).read(features_key(hour)))

    first = load_champion(uri(store))
    assert (first.version, first.model_name) == ("1", "comfort-model/1")
    assert load_champion(uri(store)) is first  # cached: the model is not loaded again
    scores = first.predict(rows)
    assert len(scores) == 10
    assert abs(scores - comfort.score(rows).to_numpy()).max() < 10

    registry_client(store).set_registered_model_alias(MODEL_NAME, CHAMPION, "2")
    second = load_champion(uri(store))
    assert (second.version, second.model_name) == ("2", "comfort-model/2")
    assert second is not first


@pytest.mark.slow
def test_a_loaded_forest_scores_an_hour_alone_as_it_does_in_a_range(history: History) -> None:
    """The loader sets every `n_jobs` to 1: a forest's threads add their trees' outputs in the order they finish,
    and a range run then stored 44.83 where the one-hour run of the same hour stored 44.84."""
    lake = Lake(data_dir=str(history.lake_dir))
    hours = [features.from_parquet(lake.read(features_key(END - timedelta(hours=h)))) for h in range(48, 0, -1)]
    rows = pd.concat(hours, ignore_index=True)
    forest = candidates(FEATURES)["random_forest"].fit(feature_matrix(rows), comfort.score(rows))

    champion = Champion("1", _one_job(forest), list(FEATURES))
    assert {value for name, value in champion.model.get_params().items() if name.endswith("n_jobs")} == {1}
    one_by_one = [champion.comfort(hour) for hour in hours]
    assert (champion.comfort(rows) == pd.Series([score for hour in one_by_one for score in hour])).all()


class OpenMPThreadsSeen:
    """A model that answers zeros and notes how many OpenMP threads its `predict` was given."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def predict(self, frame: pd.DataFrame) -> list[float]:
        self.threads += [pool["num_threads"] for pool in ThreadpoolController().select(user_api="openmp").info()]
        return [0.0] * len(frame)


def test_the_champion_predicts_on_one_openmp_thread_and_leaves_the_process_as_it_was() -> None:
    """Gradient boosting's threads wait for each other at every tree: an hour's rows score faster on one, and runs
    that predict at once keep to a core each (benchmarks/README.md)."""
    import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime, as a loaded champion has

    model = OpenMPThreadsSeen()
    rows = pd.DataFrame({name: [1.0, 2.0] for name in MEASUREMENTS}).assign(
        observed_at=[datetime(2026, 11, 20, 8), datetime(2026, 11, 20, 9)]
    )
    openmp = ThreadpoolController().select(user_api="openmp")
    assert openmp.info(), "scikit-learn loads an OpenMP runtime"
    with openmp.limit(limits=2):
        assert Champion("1", model, list(FEATURES)).predict(rows).tolist() == [0.0, 0.0]
        after = [pool["num_threads"] for pool in openmp.info()]

    assert model.threads and set(model.threads) == {1}
    assert set(after) == {2}
