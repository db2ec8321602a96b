"""Lineage (issue 23): every prediction and forecast row names the Dagster run that wrote it, the champion's registry
version and the MLflow run that trained it, and the lake object it was computed from with the SHA-256 of its bytes;
a table created before the lineage columns gains them in place, its rows kept; the read API names them."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from sqlalchemy.dialects import mysql

from weather_assets.api import Settings, create_app, store
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.partitions import range_tags
from weather_assets.defs.resources.lake import Lake, features_key, forecast_features_key
from weather_assets.defs.resources.model_registry import CHAMPION, MODEL_NAME, ModelRegistry
from weather_assets.defs.resources.predictions_db import ComfortDatabase, DatabaseWriteError, tables_resources
from weather_assets.defs.resources.predictions_db.client import MIGRATION, SQLClient
from weather_assets.domain.hours import current_hour, kst_now, partition_key
from weather_assets.domain.tables import FORECASTS, LINEAGE, PREDICTIONS, TableSpec
from weather_assets.kma.forecast import latest_issue
from weather_assets.runs import failures
from weather_assets_tests.concurrent_writer import upsert_hour
from weather_assets_tests.helpers import (
    HOUR,
    REPO,
    TRAINED_STATIONS,
    at,
    eventually,
    forecast,
    ingest_missing,
    prediction_rows,
)

# The tables as sql/init.sql created them before the lineage columns (the main branch before issue 23), verbatim:
# what an existing MySQL or MariaDB stack holds.
OLD_MYSQL_TABLES = (
    """CREATE TABLE weather_predictions (
  id BIGINT NOT NULL AUTO_INCREMENT,
  comfort_score DOUBLE NOT NULL,
  temperature DOUBLE NULL,
  humidity DOUBLE NULL,
  precipitation DOUBLE NULL,
  pm10 DOUBLE NULL,
  wind_speed DOUBLE NULL,
  pressure DOUBLE NULL,
  prediction_datetime DATETIME(6) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  region VARCHAR(32) NULL,
  station_id INT NOT NULL,
  model_name VARCHAR(64) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_prediction (prediction_datetime, station_id),
  KEY ix_weather_predictions_prediction_datetime (prediction_datetime),
  KEY ix_weather_predictions_region (region),
  KEY ix_weather_predictions_updated_at (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE weather_forecasts (
  id BIGINT NOT NULL AUTO_INCREMENT,
  forecast_datetime DATETIME(6) NOT NULL,
  station_id INT NOT NULL,
  issued_at DATETIME(6) NOT NULL,
  lead_hours INT NOT NULL,
  region VARCHAR(32) NULL,
  comfort_score DOUBLE NOT NULL,
  temperature DOUBLE NULL,
  humidity DOUBLE NULL,
  precipitation DOUBLE NULL,
  pm10 DOUBLE NULL,
  wind_speed DOUBLE NULL,
  pressure DOUBLE NULL,
  forecast_inputs VARCHAR(128) NOT NULL,
  carried_inputs VARCHAR(128) NOT NULL,
  model_name VARCHAR(64) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_forecast (forecast_datetime, station_id, issued_at),
  KEY ix_weather_forecasts_issued_at (issued_at),
  KEY ix_weather_forecasts_station_forecast (station_id, forecast_datetime),
  KEY ix_weather_forecasts_updated_at (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
)
OLD_ROW_TIME = datetime(2026, 1, 1, 3, 4, 5, 678901)  # created_at and updated_at of the old rows: kept as they are


def create_old_tables(db_url: str) -> None:
    """Both tables without the lineage columns: the old DDL on MySQL and MariaDB; on SQLite, today's definition less
    those columns (SQLite has no other shape to keep)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                for spec in (PREDICTIONS, FORECASTS):
                    current = spec.table()
                    columns = [
                        sa.Column(column.name, column.type, primary_key=column.primary_key, nullable=column.nullable)
                        for column in current.c
                        if column.name not in LINEAGE
                    ]
                    sa.Table(spec.name, sa.MetaData(), *columns, sa.UniqueConstraint(*spec.key)).create(connection)
            else:
                for statement in OLD_MYSQL_TABLES:
                    connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def insert_old_rows(db_url: str, spec: TableSpec, frame: pd.DataFrame) -> None:
    """Rows as the previous version wrote them: no lineage columns, its own created_at and updated_at."""
    rows = frame.assign(created_at=OLD_ROW_TIME, updated_at=OLD_ROW_TIME).to_dict("records")
    engine = sa.create_engine(db_url)
    try:
        old = sa.Table(spec.name, sa.MetaData(), autoload_with=engine)
        assert not set(LINEAGE) & set(old.c.keys())
        with engine.begin() as connection:
            connection.execute(old.insert(), rows)
    finally:
        engine.dispose()


def column_names(db_url: str, table: str) -> list[str]:
    engine = sa.create_engine(db_url)
    try:
        return [column["name"] for column in sa.inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


def forecast_rows(issued: datetime, hours: list[datetime]) -> pd.DataFrame:
    """weather_forecasts rows of station 108 for `hours` of one issue, without lineage."""
    row = {
        "station_id": 108, "issued_at": issued, "region": "Seoul", "comfort_score": 64.0, "temperature": 4.0,
        "humidity": 60.0, "precipitation": 0.0, "pm10": 40.0, "wind_speed": 2.0, "pressure": 1015.0,
        "forecast_inputs": "temperature,humidity,precipitation,wind_speed", "carried_inputs": "pm10,pressure",
        "model_name": "comfort-model/1",
    }  # fmt: skip
    frame = pd.DataFrame([{**row, "forecast_datetime": hour, "lead_hours": (hour - issued) // HOUR} for hour in hours])
    return frame[list(FORECASTS.columns)]


def lineage_of(model_version: str, run: str) -> dict[str, str]:
    """Lineage columns as an asset hands them (less the run id, which the IO manager stamps)."""
    return {
        "model_version": model_version,
        "mlflow_run_id": f"mlflow-{run}",
        "input_object": f"features/{run}.parquet",
        "input_sha256": hashlib.sha256(run.encode()).hexdigest(),
    }


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def registered_champion(data_dir: Path) -> tuple[str, str]:
    """The champion's version and the MLflow run that trained it, as the registry says."""
    uri = ModelRegistry(data_dir=str(data_dir)).uri()
    version = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(MODEL_NAME, CHAMPION)
    return str(version.version), version.run_id


# --- the columns, and the in-place migration ----------------------------------------------------------------------


def test_a_table_created_without_lineage_gains_the_columns_in_place_keeping_its_rows(db_url: str) -> None:
    """The previous version's tables with rows in them; the new code's upserts add the nullable columns: every old
    row keeps its values (ids, created_at and updated_at too) with NULL lineage, and the new rows carry lineage."""
    create_old_tables(db_url)
    old_hours = [datetime(2026, 11, 26, 9) + n * HOUR for n in range(3)]
    insert_old_rows(db_url, PREDICTIONS, prediction_rows(old_hours, comfort_score=41.0))
    issued = datetime(2026, 11, 26, 5)
    insert_old_rows(db_url, FORECASTS, forecast_rows(issued, old_hours))
    database = ComfortDatabase(url=db_url)
    before = {spec.name: database.rows(spec) for spec in (PREDICTIONS, FORECASTS)}  # reading migrates

    new_hour = old_hours[-1] + HOUR
    predicted = prediction_rows([new_hour]).assign(**lineage_of("2", "p"))
    forecast = forecast_rows(issued, [new_hour]).assign(**lineage_of("2", "f"))
    written = [
        database.upsert(PREDICTIONS, predicted, run_id="run-p"),
        database.upsert(FORECASTS, forecast, run_id="run-f"),
    ]

    assert [upserted.inserted for upserted in written] == [1, 1]
    for spec, hour_column, run in ((PREDICTIONS, "prediction_datetime", "p"), (FORECASTS, "forecast_datetime", "f")):
        assert column_names(db_url, spec.name)[-len(LINEAGE) :] == list(LINEAGE)
        rows = database.rows(spec)
        old, new = rows[rows[hour_column] < new_hour], rows[rows[hour_column] == new_hour]
        pd.testing.assert_frame_equal(old, before[spec.name])
        assert len(old) == 3 and old[list(LINEAGE)].isna().all().all()
        assert (old["created_at"] == OLD_ROW_TIME).all() and (old["updated_at"] == OLD_ROW_TIME).all()
        assert new[list(LINEAGE)].to_dict("records") == [{"dagster_run_id": f"run-{run}", **lineage_of("2", run)}]


def test_rewriting_an_old_row_gives_it_lineage_and_a_write_without_lineage_clears_it(db_url: str) -> None:
    """A row names only what computed its current values: an upsert overwrites the lineage with its own."""
    create_old_tables(db_url)
    hour = datetime(2026, 11, 26, 9)
    insert_old_rows(db_url, PREDICTIONS, prediction_rows([hour]))
    database = ComfortDatabase(url=db_url)
    id_before = int(database.rows(PREDICTIONS)["id"].iloc[0])

    database.upsert(
        PREDICTIONS, prediction_rows([hour], comfort_score=55.0).assign(**lineage_of("3", "x")), run_id="r1"
    )
    rewritten = database.rows(PREDICTIONS).iloc[0]
    database.upsert(PREDICTIONS, prediction_rows([hour], comfort_score=56.0))
    bare = database.rows(PREDICTIONS).iloc[0]

    assert (int(rewritten["id"]), rewritten["created_at"]) == (id_before, OLD_ROW_TIME)
    assert (rewritten["comfort_score"], rewritten["dagster_run_id"], rewritten["model_version"]) == (55.0, "r1", "3")
    assert rewritten["input_sha256"] == lineage_of("3", "x")["input_sha256"]
    assert bare["comfort_score"] == 56.0 and bare[list(LINEAGE)].isna().all()


def test_a_column_another_process_added_meanwhile_is_fine(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers race to migrate: the loser's ALTER finds the columns there (the server refuses a duplicate
    column); it looks again, finds nothing missing, and writes."""
    create_old_tables(db_url)
    ComfortDatabase(url=db_url).client(PREDICTIONS).migrate(LINEAGE)  # the winner
    looked = SQLClient.missing
    stale = iter([list(LINEAGE)])  # the loser looked before the winner's ALTER committed
    monkeypatch.setattr(SQLClient, "missing", lambda self, columns: next(stale, None) or looked(self, columns))

    written = ComfortDatabase(url=db_url).upsert(PREDICTIONS, prediction_rows([datetime(2026, 11, 26, 9)]), run_id="r")

    assert written.inserted == 1
    assert column_names(db_url, PREDICTIONS.name).count("dagster_run_id") == 1


@pytest.mark.slow
def test_writers_racing_to_migrate_all_write(db_url: str) -> None:
    """Four processes write into the previous version's table at the same moment: each finds the columns missing,
    one adds them, the others find them there; every row is written with its run, the columns exist once."""
    create_old_tables(db_url)
    hours = [datetime(2026, 11, 26, 9) + n * HOUR for n in range(4)]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(len(hours), mp_context=context) as pool:
        start = manager.Barrier(len(hours))
        writes = [pool.submit(upsert_hour, db_url, hour.isoformat(), f"run-{hour:%H}", start) for hour in hours]
        errors = [write.result(timeout=120) for write in writes]

    assert errors == [""] * len(hours)
    assert column_names(db_url, PREDICTIONS.name)[-len(LINEAGE) :] == list(LINEAGE)
    rows = ComfortDatabase(url=db_url).rows(PREDICTIONS)
    assert list(rows["dagster_run_id"]) == [f"run-{hour:%H}" for hour in hours]


@pytest.fixture
def restricted(mysql_server: sa.URL, mysql_database: str) -> Iterator[str]:
    """An account with init.sql's grants for weather_app (SELECT, INSERT, UPDATE; no ALTER) on the scratch database,
    which holds the previous version's tables; its URL."""
    database = sa.make_url(mysql_database).database
    user = f"lineage_{database.rsplit('_', 1)[-1]}"[:32]
    engine = sa.create_engine(mysql_server)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY 'restricted-pw'")
            connection.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE ON {database}.* TO '{user}'@'%%'")
        create_old_tables(mysql_database)
        yield mysql_server.set(username=user, password="restricted-pw", database=database).render_as_string(False)
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
        engine.dispose()


@pytest.mark.mysql
def test_an_account_that_may_not_alter_is_told_the_migration_to_run_which_migrates(
    restricted: str, mysql_database: str
) -> None:
    insert_old_rows(mysql_database, PREDICTIONS, prediction_rows([datetime(2026, 11, 26, 9)]))
    app = ComfortDatabase(url=restricted)

    with pytest.raises(DatabaseWriteError, match=MIGRATION) as refused:
        app.upsert(PREDICTIONS, prediction_rows([datetime(2026, 11, 26, 10)]), run_id="r")
    with pytest.raises(DatabaseWriteError, match=MIGRATION):
        app.check_writable()
    root = sa.make_url(mysql_database)  # as an operator runs it: mysql -uroot -p weather_mlops < sql/migrations/...
    env = {**os.environ, "MYSQL_PWD": root.password or "", "MYSQL_HOST": root.host or "127.0.0.1"}
    command = ["mysql", "--protocol=tcp", f"--port={root.port or 3306}", f"--user={root.username}", root.database]
    subprocess.run(command, input=(REPO / MIGRATION).read_text(), text=True, env=env, check=True, capture_output=True)
    written = app.upsert(PREDICTIONS, prediction_rows([datetime(2026, 11, 26, 10)]), run_id="r")

    assert "dagster_run_id" in str(refused.value) and "ALTER" in str(refused.value)
    assert written.inserted == 1
    rows = app.rows(PREDICTIONS)
    assert list(rows["dagster_run_id"]) == [None, "r"] and len(rows) == 2
    assert column_names(mysql_database, FORECASTS.name)[-len(LINEAGE) :] == list(LINEAGE)


def test_init_sql_has_the_lineage_columns_of_both_tables() -> None:
    """init.sql's definitions hold the same nullable columns as the migration (its full comparison with the IO
    manager's tables runs on MariaDB in test_predictions.py)."""
    init, migration = (REPO / "sql" / "init.sql").read_text(), (REPO / MIGRATION).read_text()
    for spec in (PREDICTIONS, FORECASTS):
        table = spec.table()
        for name in LINEAGE:
            ddl = f"{name} {table.c[name].type.compile(dialect=mysql.dialect())} NULL"
            assert init.count(f"  {ddl},") == 2 and migration.count(f"ADD COLUMN {ddl}") == 2, ddl
            assert table.c[name].nullable


# --- the assets' rows ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_prediction_rows_name_their_run_model_mlflow_run_and_feature_file(trained_dir: Path, db_url: str) -> None:
    last = current_hour() - 2 * HOUR
    ingest_missing(trained_dir, last - HOUR, last)
    result = dg.materialize(
        [weather_predictions],
        resources={
            "lake": Lake(data_dir=str(trained_dir)),
            "model_registry": ModelRegistry(data_dir=str(trained_dir)),
            **tables_resources(ComfortDatabase(url=db_url)),
        },
        tags=range_tags(last - HOUR, last),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success, failures(result)
    version, mlflow_run = registered_champion(trained_dir)

    rows = ComfortDatabase(url=db_url).rows(PREDICTIONS)

    assert len(rows) == 2 * len(TRAINED_STATIONS.split(","))
    assert set(rows["dagster_run_id"]) == {result.run_id}
    assert set(rows["model_version"]) == {version} and set(rows["model_name"]) == {f"{MODEL_NAME}/{version}"}
    assert set(rows["mlflow_run_id"]) == {mlflow_run} and mlflow_run
    for hour, hour_rows in rows.groupby("prediction_datetime"):
        key = features_key(hour)
        assert set(hour_rows["input_object"]) == {key}
        assert set(hour_rows["input_sha256"]) == {sha256_of(trained_dir / "lake" / key)}


@pytest.mark.slow
def test_an_old_mariadb_table_is_migrated_by_the_predictions_asset(trained_dir: Path, mysql_database: str) -> None:
    """The previous version's table with rows in it, then a real run of weather_predictions: the hour it predicts
    keeps its rows' ids and created_at and gains lineage; the other hour is untouched, NULL lineage."""
    hour = current_hour() - 2 * HOUR
    ingest_missing(trained_dir, hour, hour)
    create_old_tables(mysql_database)
    stations = [int(station) for station in TRAINED_STATIONS.split(",")]
    old = pd.concat([prediction_rows([hour - HOUR, hour], station_id=station) for station in stations])
    insert_old_rows(mysql_database, PREDICTIONS, old)
    database = ComfortDatabase(url=mysql_database)
    before = database.rows(PREDICTIONS)

    result = dg.materialize(
        [weather_predictions],
        resources={
            "lake": Lake(data_dir=str(trained_dir)),
            "model_registry": ModelRegistry(data_dir=str(trained_dir)),
            **tables_resources(database),
        },
        partition_key=partition_key(hour),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success, failures(result)
    after = database.rows(PREDICTIONS)

    assert len(after) == len(before) == 2 * len(stations)
    untouched = after["prediction_datetime"] == hour - HOUR
    pd.testing.assert_frame_equal(after[untouched], before[untouched])
    assert after[untouched][list(LINEAGE)].isna().all().all()
    predicted = after[~untouched]
    assert list(predicted["id"]) == list(before[~untouched]["id"]) and (predicted["created_at"] == OLD_ROW_TIME).all()
    assert set(predicted["dagster_run_id"]) == {result.run_id}
    assert set(predicted["model_version"]) == {registered_champion(trained_dir)[0]}
    assert set(predicted["input_sha256"]) == {sha256_of(trained_dir / "lake" / features_key(hour))}


@pytest.mark.slow
def test_forecast_rows_name_their_run_model_and_the_issues_feature_file(trained_dir: Path, db_url: str) -> None:
    issue = latest_issue(kst_now())
    ingest_missing(trained_dir, issue - 6 * HOUR, min(issue, current_hour() - HOUR))
    result = forecast(trained_dir, db_url, issue)
    assert result.success, failures(result)
    version, mlflow_run = registered_champion(trained_dir)
    key = forecast_features_key(issue)

    rows = ComfortDatabase(url=db_url).rows(FORECASTS)

    assert len(rows) > 0 and set(rows["issued_at"]) == {issue}
    assert set(rows["dagster_run_id"]) == {result.run_id}
    assert (set(rows["model_version"]), set(rows["mlflow_run_id"])) == ({version}, {mlflow_run})
    assert set(rows["input_object"]) == {key}
    assert set(rows["input_sha256"]) == {sha256_of(trained_dir / "lake" / key)}


# --- the read API ----------------------------------------------------------------------------------------------


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(db_url=db_url, data_dir=str(tmp_path / "api"), stations=(108, 112), max_staleness=6 * HOUR)
    with TestClient(create_app(settings)) as served:
        yield served


def test_the_api_answers_name_the_model_version_and_the_run_that_computed_them(db_url: str, client: TestClient) -> None:
    now = current_hour()
    database = ComfortDatabase(url=db_url)
    database.upsert(PREDICTIONS, prediction_rows([now - HOUR]).assign(**lineage_of("4", "p")), run_id="run-p")
    issued = now - 2 * HOUR
    hours = [issued + n * HOUR for n in range(1, 40)]
    database.upsert(FORECASTS, forecast_rows(issued, hours).assign(**lineage_of("4", "f")), run_id="run-f")
    at(client, now + timedelta(minutes=20))
    predicted = {"dagster_run_id": "run-p", **lineage_of("4", "p")}
    forecast = {"dagster_run_id": "run-f", **lineage_of("4", "f")}

    comfort = client.get("/comfort").json()
    now_answer = client.get("/predict/now").json()
    stored = client.get("/comfort", params={"at": (now - HOUR).isoformat()}).json()
    history = client.get("/comfort/history", params={"hours": 3}).json()
    forecasts = client.get("/comfort/forecast").json()
    morning = client.get("/predict/morning").json()

    assert comfort["lineage"] == now_answer["lineage"] == stored["lineage"] == predicted
    assert [item["lineage"] for item in history["items"]] == [predicted]
    assert forecasts["hours"] and all(hour["lineage"] == forecast for hour in forecasts["hours"])
    assert morning["lineage"] == forecast


def test_a_table_not_yet_migrated_is_served_with_null_lineage_then_with_it(
    db_url: str, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API deployed before the pipeline that adds the columns: it reads the old table (lineage null), and once a
    write has added them, serves the lineage without a restart. The API looks for the columns again every 5 s here,
    so its first read of the new hour comes before it has seen them, as it does whenever a write is quick: the answer
    kept from that read must not outlive the next look."""
    monkeypatch.setattr(store, "FILE_CHECK_SECONDS", 5.0)
    now = current_hour()
    create_old_tables(db_url)
    insert_old_rows(db_url, PREDICTIONS, prediction_rows([now - 2 * HOUR]))

    before = client.get("/comfort")
    newer = prediction_rows([now - HOUR]).assign(**lineage_of("5", "n"))
    ComfortDatabase(url=db_url).upsert(PREDICTIONS, newer, run_id="n")
    after = eventually(lambda: client.get("/comfort"), lambda answer: answer.json()["lineage"]["dagster_run_id"])

    assert before.status_code == 200 and set(before.json()["lineage"].values()) == {None}
    assert after.json()["prediction_datetime"] == (now - HOUR).isoformat()
    assert after.json()["lineage"] == {"dagster_run_id": "n", **lineage_of("5", "n")}
