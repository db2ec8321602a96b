"""weather_predictions through the tables IO manager and the database resource, on MariaDB/MySQL and SQLite alike."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from weather_assets.api import Settings, create_app
from weather_assets.definitions import defs
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.assets.skill import forecast_skill
from weather_assets.defs.partitions import hourly, range_tags
from weather_assets.defs.resources.lake import Lake, features_key
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.defs.resources.predictions_db import (
    ComfortDatabase,
    DatabaseWriteError,
    TablesIOManager,
    stored_in,
    tables_resources,
)
from weather_assets.domain.hours import partition_key
from weather_assets.domain.tables import FORECASTS, PREDICTIONS, predictions_table
from weather_assets_tests.concurrent_writer import materialize_hour
from weather_assets_tests.helpers import REPO, STATIONS, check_evaluations, copy_data_dir, ingest, prediction_rows

END = datetime(2026, 11, 20)
HOUR = END - timedelta(hours=15)  # 2026-11-19 09:00 KST


@dataclass
class Trained:
    """Two days of ingested hours and a champion model, shared by this module's tests."""

    lake_dir: Path
    registry_dir: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, trained_template: Path) -> Trained:
    lake_dir = tmp_path_factory.mktemp("lake")
    registry_dir = copy_data_dir(trained_template, tmp_path_factory.mktemp("mlflow") / "weather")
    lake = Lake(data_dir=str(lake_dir))
    assert ingest(
        {"kma": OfflineKMAClient(stations=STATIONS), "lake": lake}, END - timedelta(hours=48), END - timedelta(hours=1)
    ).success
    return Trained(lake_dir, registry_dir)


def resources(trained: Trained, db_url: str, lake: Lake | None = None, **database: object) -> dict[str, object]:
    return {
        "lake": lake or Lake(data_dir=str(trained.lake_dir)),
        "model_registry": ModelRegistry(data_dir=str(trained.registry_dir)),
        **tables_resources(ComfortDatabase(url=db_url, **database)),
    }


def predict(
    trained: Trained,
    db_url: str,
    first: datetime,
    last: datetime | None = None,
    lake: Lake | None = None,
    **database: object,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [weather_predictions],
        resources=resources(trained, db_url, lake, **database),
        partition_key=partition_key(first) if last is None else None,
        tags=range_tags(first, last) if last is not None else None,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def table(db_url: str, name: str = "weather_predictions") -> pd.DataFrame:
    """The whole table, typed by its definition (SQLite keeps datetimes as text)."""
    engine = sa.create_engine(db_url)
    definition = predictions_table(name)
    try:
        with engine.connect() as connection:
            query = sa.select(definition).order_by(definition.c.prediction_datetime, definition.c.station_id)
            return pd.read_sql(query, connection)
    finally:
        engine.dispose()


def written(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    assert result.success, [str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure]
    return {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}


def test_same_hour_three_times_is_one_row_per_station_with_stable_ids(trained: Trained, db_url: str) -> None:
    first = written(predict(trained, db_url, HOUR))
    once = table(db_url)
    assert (first["rows_inserted"], first["rows_updated"]) == (10, 0)
    assert len(once) == 10 and sorted(once["station_id"]) == sorted(int(s) for s in STATIONS.split(","))
    assert (once["prediction_datetime"] == HOUR).all()
    assert once["comfort_score"].between(0, 100).all()
    assert (once["model_name"] == "comfort-model/1").all()
    assert "weather_predictions" in first["table"]

    for _ in range(2):
        again = written(predict(trained, db_url, HOUR))
        assert (again["rows_inserted"], again["rows_updated"]) == (0, 10)
    thrice = table(db_url)

    assert len(thrice) == 10
    assert thrice["id"].tolist() == once["id"].tolist()
    assert thrice["created_at"].tolist() == once["created_at"].tolist()
    assert (thrice["updated_at"] > once["updated_at"]).all()
    assert (thrice["updated_at"] > thrice["created_at"]).all()


def test_range_in_one_run_equals_one_hour_runs_row_for_row(trained: Trained, db_url: str) -> None:
    """A day's hours across a KST midnight, as one run and as 24 one-hour runs."""
    first, last = END - timedelta(hours=30), END - timedelta(hours=7)  # 18:00 to 17:00 the next day
    ranged = written(predict(trained, db_url, first, last, table="ranged"))
    assert (ranged["rows_inserted"], ranged["partition_range"]) == (
        240,
        f"{partition_key(first)} .. {partition_key(last)}",
    )
    for offset in range(24):
        written(predict(trained, db_url, first + timedelta(hours=offset), table="hourly"))

    columns = list(PREDICTIONS.columns)
    assert len(table(db_url, "ranged")) == 240
    pd.testing.assert_frame_equal(table(db_url, "ranged")[columns], table(db_url, "hourly")[columns])


WRITERS = 3  # more than the two cores of the machine the suite runs on; each is a process that imports the project


@pytest.mark.slow
def test_concurrent_materializations_of_one_hour_all_succeed_with_one_row_per_station(
    trained: Trained, db_url: str
) -> None:
    """Three processes, released at once, upsert the same hour (the schedule, the sensor and backfills)."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(WRITERS, mp_context=context) as pool:
        start = manager.Barrier(WRITERS)
        runs = [
            pool.submit(
                materialize_hour, str(trained.lake_dir), str(trained.registry_dir), db_url, partition_key(HOUR), start
            )
            for _ in range(WRITERS)
        ]
        failures = [run.result(timeout=300) for run in runs]

    assert failures == [""] * WRITERS
    rows = table(db_url)
    assert len(rows) == 10
    assert not rows.duplicated(["prediction_datetime", "station_id"]).any()


@pytest.fixture
def failing_third_upsert() -> Iterator[None]:
    """Makes the third upsert statement of a write fail, as a dropped connection or a full disk would."""
    statements = 0

    def fail(connection: object, cursor: object, statement: str, *args: object) -> None:
        nonlocal statements
        if statement.lstrip().upper().startswith("INSERT INTO WEATHER_PREDICTIONS"):
            statements += 1
            if statements == 3:
                raise RuntimeError("injected failure in the middle of the write")

    sa.event.listen(sa.Engine, "before_cursor_execute", fail)
    yield
    sa.event.remove(sa.Engine, "before_cursor_execute", fail)


def test_exception_in_the_middle_of_a_range_write_leaves_the_table_as_it_was(
    trained: Trained, db_url: str, request: pytest.FixtureRequest
) -> None:
    first, last = END - timedelta(hours=48), END - timedelta(hours=1)
    written(predict(trained, db_url, first, first + timedelta(hours=23)))
    before = table(db_url)

    request.getfixturevalue("failing_third_upsert")
    result = predict(trained, db_url, first, last, batch_size=50)

    assert not result.success
    assert "injected failure" in str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
    pd.testing.assert_frame_equal(table(db_url), before)


def failure(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    return str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)


def test_a_range_predicts_every_readable_hour_and_fails_at_the_end_naming_the_unreadable_ones(
    trained: Trained, db_url: str, tmp_path: Path
) -> None:
    shutil.copytree(trained.lake_dir / "lake", tmp_path / "lake")
    lake = Lake(data_dir=str(tmp_path))
    hours = [HOUR + timedelta(hours=offset) for offset in range(-2, 4)]
    bad = [HOUR, HOUR + timedelta(hours=2)]
    for hour in bad:
        lake.write(features_key(hour), b"<html>503 Service Unavailable</html>")

    result = predict(trained, db_url, hours[0], hours[-1], lake=lake)

    error = failure(result)
    assert "2 of 6 hours were not predicted: their feature files cannot be read" in error
    for hour in bad:
        assert f"features of {partition_key(hour)}: {lake.uri(features_key(hour))} is not a feature file" in error
    assert "materialize weather_features for it" in error
    rows = table(db_url)
    assert sorted(set(rows["prediction_datetime"])) == [hour for hour in hours if hour not in bad]
    assert len(rows) == 40
    assert check_evaluations(result)["predictions_match_features"] is True


def test_one_unreadable_hour_fails_naming_it_and_writes_nothing(trained: Trained, db_url: str, tmp_path: Path) -> None:
    shutil.copytree(trained.lake_dir / "lake", tmp_path / "lake")
    lake = Lake(data_dir=str(tmp_path))
    lake.write(features_key(HOUR), lake.read(features_key(HOUR))[:-40])  # cut short

    result = predict(trained, db_url, HOUR, lake=lake)

    assert f"features of {partition_key(HOUR)}: {lake.uri(features_key(HOUR))} is not a feature file" in failure(result)
    assert not sa.inspect(ComfortDatabase(url=db_url).client(PREDICTIONS).engine).has_table("weather_predictions")


def test_unreachable_server_fails_clearly_without_the_password(trained: Trained) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"mysql+pymysql://weather_app:Sup3r-S3cret@127.0.0.1:{port}/weather_mlops"
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [weather_predictions],
        resources=resources(trained, url, max_attempts=2, backoff_seconds=0.01),
        partition_key=partition_key(HOUR),
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    error = str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
    assert f"127.0.0.1:{port}/weather_mlops" in error and "nothing was written" in error
    logs = " ".join(str(entry.dagster_event or entry.user_message) for entry in instance.all_logs(result.run_id))
    assert "Sup3r-S3cret" not in error + logs


@pytest.mark.parametrize("dtype", ["float64", "object"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_a_non_finite_value_is_refused_before_any_sql_naming_column_and_row(
    db_url: str, value: float, dtype: str
) -> None:
    """MySQL takes no infinity (and SQLite would store it): the write is refused whole, the table untouched, also
    when the column is of object dtype (a frame built from mixed values)."""
    rows = pd.DataFrame(
        {"prediction_datetime": [HOUR, HOUR], "station_id": [108, 112], "region": ["Seoul", "Gangwon"],
         "comfort_score": [61.5, 55.0], "temperature": [3.0, value], "humidity": [55.0, 60.0],
         "precipitation": [0.0, 0.0], "pm10": [30.0, None], "wind_speed": [2.0, 3.0], "pressure": [1015.0, 1016.0],
         "model_name": ["comfort-model/1"] * 2}
    )[list(PREDICTIONS.columns)].astype({"temperature": dtype})  # fmt: skip
    database = ComfortDatabase(url=db_url)

    with pytest.raises(ValueError, match=r"non-finite value\(s\) in column temperature.*station 112"):
        database.upsert(PREDICTIONS, rows)

    assert not sa.inspect(database.client(PREDICTIONS).engine).has_table("weather_predictions")  # no SQL ran
    database.upsert(PREDICTIONS, rows.assign(temperature=[3.0, None]))  # NaN is a missing value
    assert database.rows(PREDICTIONS)["temperature"].isna().sum() == 1


@pytest.mark.parametrize("name", ["predictions'; DROP TABLE weather_predictions; --", 'x"y', "a b", "t;", ""])
def test_hostile_table_name_is_refused_before_any_sql(trained: Trained, db_url: str, name: str) -> None:
    written(predict(trained, db_url, HOUR))
    statements: list[str] = []
    database = sa.make_url(db_url).database

    def record(connection: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        if connection.engine.url.database == database:  # Dagster's own storage runs SQL too
            statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        result = dg.materialize(
            [weather_predictions],
            resources={**resources(trained, db_url), **tables_resources(ComfortDatabase.configure_at_launch())},
            partition_key=partition_key(HOUR),
            run_config={"resources": {"database": {"config": {"url": db_url, "table": name}}}},
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", record)

    assert not result.success
    assert statements == []
    assert len(table(db_url)) == 10


def test_rows_returns_the_rows_of_the_hours_asked_for(trained: Trained, db_url: str) -> None:
    written(predict(trained, db_url, HOUR - timedelta(hours=1), HOUR + timedelta(hours=1)))

    rows = ComfortDatabase(url=db_url).rows(PREDICTIONS, HOUR, HOUR + timedelta(hours=1))

    assert len(rows) == 10
    assert (rows["prediction_datetime"] == HOUR).all()


def test_the_io_manager_upserts_the_table_an_asset_declares(db_url: str) -> None:
    """An asset declaring the forecasts table is upserted there, and the predictions table is not touched."""
    issued = HOUR - timedelta(hours=3)
    forecast = pd.DataFrame(
        {"forecast_datetime": [HOUR, HOUR], "station_id": [108, 112], "issued_at": [issued, issued],
         "lead_hours": [3, 3], "region": ["Seoul", "Gangwon"], "comfort_score": [61.5, 55.0],
         "temperature": [3.0, 4.0], "humidity": [55.0, 60.0], "precipitation": [0.0, 0.0], "pm10": [None, None],
         "wind_speed": [2.0, 3.0], "pressure": [None, None], "forecast_inputs": ["temperature"] * 2,
         "carried_inputs": ["pm10,pressure"] * 2, "model_name": ["comfort-model/1"] * 2}
    )[list(FORECASTS.columns)]  # fmt: skip

    @dg.asset(io_manager_key="tables_io_manager", metadata=stored_in(FORECASTS))
    def some_forecasts() -> pd.DataFrame:
        return forecast

    database = ComfortDatabase(url=db_url)
    assert dg.materialize([some_forecasts], resources=tables_resources(database)).success

    rows = database.rows(FORECASTS)
    assert list(rows["station_id"]) == [108, 112] and set(rows["issued_at"]) == {issued}
    assert not sa.inspect(database.client(PREDICTIONS).engine).has_table("weather_predictions")


def test_an_asset_that_declares_no_table_is_refused(tmp_path: Path) -> None:
    @dg.asset(io_manager_key="tables_io_manager")
    def undeclared() -> pd.DataFrame:
        return pd.DataFrame()

    database = ComfortDatabase(url=f"sqlite:///{tmp_path / 'weather.db'}")
    result = dg.materialize([undeclared], resources=tables_resources(database), raise_on_error=False)

    assert "undeclared names no table: declare metadata=stored_in" in failure(result)


def test_readers_take_the_database_resource_never_the_io_manager() -> None:
    """The IO manager only stores outputs: no asset or check asks for it as a resource, no module but its own
    package and the code location's wiring names it."""
    for asset in defs.assets:
        assert "tables_io_manager" not in asset.op.required_resource_keys, asset.key
    assert {"database"} <= weather_predictions.op.required_resource_keys & forecast_skill.op.required_resource_keys
    package = REPO / "weather_assets"
    naming = {path.relative_to(package).as_posix() for path in package.rglob("*.py") if "IOManager" in path.read_text()}
    assert naming <= {
        "definitions.py",
        *(f"defs/resources/predictions_db/{name}" for name in ("__init__.py", "io_manager.py")),
    }


def test_the_table_is_not_loaded_as_an_input_but_read_by_range(db_url: str) -> None:
    context = dg.build_input_context(
        asset_key=weather_predictions.key, partition_key=partition_key(HOUR), asset_partitions_def=hourly
    )

    with pytest.raises(dg.Failure, match="weather_predictions is not loaded as an input.*rows\\(table, start, end\\)"):
        TablesIOManager(database=ComfortDatabase(url=db_url)).load_input(context)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://weather:S3cret-pw@db.example/weather", "must be a mysql or sqlite URL"),
        ("weather:S3cret-pw@db.example", "WEATHER_DB_URL must be a URL such as mysql"),
        ("sqlite:////proc/no-such-folder/weather.db", "cannot create the SQLite database's folder"),
    ],
)
def test_the_write_check_names_a_bad_url_without_its_password(url: str, said: str) -> None:
    with pytest.raises(DatabaseWriteError, match=said) as refused:
        ComfortDatabase(url=url).check_writable()

    assert "S3cret-pw" not in str(refused.value)


def test_predictions_without_a_champion_say_what_to_materialize(trained: Trained, db_url: str, tmp_path: Path) -> None:
    result = dg.materialize(
        [weather_predictions],
        resources={**resources(trained, db_url), "model_registry": ModelRegistry(data_dir=str(tmp_path))},
        partition_key=partition_key(HOUR),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )

    assert "materialize comfort_model first" in str(
        next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    )


def columns(engine: sa.Engine, database: str, name: str) -> list[tuple[object, ...]]:
    query = sa.text(
        "SELECT column_name, ordinal_position, column_type, is_nullable, column_default, extra, collation_name "
        "FROM information_schema.columns WHERE table_schema = :db AND table_name = :t ORDER BY ordinal_position"
    )
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query, {"db": database, "t": name})]


def indexes(engine: sa.Engine, database: str, name: str) -> list[tuple[object, ...]]:
    query = sa.text(
        "SELECT index_name, seq_in_index, column_name, non_unique FROM information_schema.statistics "
        "WHERE table_schema = :db AND table_name = :t ORDER BY index_name, seq_in_index"
    )
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query, {"db": database, "t": name})]


def apply_init_sql(server: sa.URL, database: str) -> None:
    """sql/init.sql through the mysql client, as Docker's MySQL image runs it, on a renamed database."""
    script = (REPO / "sql" / "init.sql").read_text().replace("weather_mlops", database)
    env = {**os.environ, "MYSQL_PWD": server.password or "", "MYSQL_HOST": server.host or "127.0.0.1"}
    command = ["mysql", "--protocol=tcp", f"--port={server.port or 3306}", f"--user={server.username}"]
    subprocess.run(command, input=script, text=True, env=env, check=True, capture_output=True)


@pytest.mark.mysql
def test_init_sql_gives_the_tables_the_io_manager_creates(mysql_server: sa.URL, mysql_database: str) -> None:
    by_init = f"weather_init_{mysql_database.rsplit('_', 1)[-1]}"
    apply_init_sql(mysql_server, by_init)
    created = sa.make_url(mysql_database)
    database = ComfortDatabase(url=mysql_database)
    database.client(PREDICTIONS).ensure_table()
    database.client(FORECASTS).ensure_table()
    engine = sa.create_engine(mysql_server)
    try:
        forecasts = columns(engine, by_init, "weather_forecasts")
        assert [column[0] for column in forecasts] == [c.name for c in FORECASTS.table().columns]
        assert forecasts == columns(engine, created.database, "weather_forecasts")
        assert indexes(engine, by_init, "weather_forecasts") == indexes(engine, created.database, "weather_forecasts")
        from_init = columns(engine, by_init, "weather_predictions")
        assert [column[0] for column in from_init] == [c.name for c in predictions_table().columns]
        assert from_init == columns(engine, created.database, "weather_predictions")
        assert indexes(engine, by_init, "weather_predictions") == indexes(
            engine, created.database, "weather_predictions"
        )
        assert {row[0] for row in indexes(engine, by_init, "weather_predictions")} == {
            "PRIMARY",
            "uk_prediction",
            "ix_weather_predictions_prediction_datetime",
            "ix_weather_predictions_region",
            "ix_weather_predictions_updated_at",
        }
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {by_init}")
        engine.dispose()


GRANTS_DATABASE = "weather_mlops_grants_test"


@dataclass
class Accounts:
    """sql/init.sql's accounts on a renamed database, their passwords set by sql/set-passwords.sh."""

    app: sa.Engine
    reader: sa.Engine


@pytest.fixture
def accounts(mysql_server: sa.URL) -> Iterator[Accounts]:
    database = GRANTS_DATABASE
    apply_init_sql(mysql_server, database)
    env = {
        **os.environ,
        "MYSQL_HOST": mysql_server.host or "127.0.0.1",
        "MYSQL_TCP_PORT": str(mysql_server.port or 3306),
        "MYSQL_ROOT_PASSWORD": mysql_server.password or "",
        "WEATHER_DB_APP_PASSWORD": "app-pw-'quoted'\\\\",
        "WEATHER_DB_READER_PASSWORD": "reader-pw",
    }
    subprocess.run(["bash", str(REPO / "sql" / "set-passwords.sh")], env=env, check=True, capture_output=True)
    host, port = mysql_server.host, mysql_server.port
    app = sa.create_engine(
        sa.URL.create("mysql+pymysql", "weather_app", env["WEATHER_DB_APP_PASSWORD"], host, port, database)
    )
    reader = sa.create_engine(sa.URL.create("mysql+pymysql", "weather_reader", "reader-pw", host, port, database))
    try:
        written_by_app = ComfortDatabase(url=app.url.render_as_string(hide_password=False))
        written_by_app.upsert(PREDICTIONS, prediction_rows([HOUR]))
        yield Accounts(app, reader)
    finally:
        app.dispose()
        reader.dispose()
        with sa.create_engine(mysql_server).begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}")


def privileges(server: sa.URL, account: str, database: str) -> set[str]:
    """What `account` holds on `database`, as SHOW GRANTS words it (``GRANT SELECT, INSERT``)."""
    engine = sa.create_engine(server)
    with engine.connect() as connection:
        shown = [row[0] for row in connection.execute(sa.text(f"SHOW GRANTS FOR '{account}'@'%'"))]
    engine.dispose()
    on_database = f"ON `{database}`.* TO"
    return {grant.split(on_database)[0].strip() for grant in shown if on_database in grant}


@pytest.mark.mysql
def test_init_sql_accounts_get_least_privilege_once_passwords_are_set(accounts: Accounts, mysql_server: sa.URL) -> None:
    """The platform only upserts (INSERT ... ON DUPLICATE KEY UPDATE): weather_app may not DELETE, or DROP."""
    with accounts.reader.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM weather_predictions")).scalar_one() == 1
        with pytest.raises(sa.exc.OperationalError, match="denied"):
            connection.execute(sa.text("DELETE FROM weather_predictions"))
    for statement in ("DELETE FROM weather_predictions", "DROP TABLE weather_predictions"):
        with accounts.app.connect() as connection, pytest.raises(sa.exc.OperationalError, match="denied"):
            connection.execute(sa.text(statement))
    assert privileges(mysql_server, "weather_app", GRANTS_DATABASE) == {"GRANT SELECT, INSERT, UPDATE"}
    assert privileges(mysql_server, "weather_reader", GRANTS_DATABASE) == {"GRANT SELECT"}


@pytest.mark.mysql
def test_init_sql_again_takes_delete_from_an_earlier_install(accounts: Accounts, mysql_server: sa.URL) -> None:
    """An earlier init.sql granted weather_app DELETE; running the file again (as the README says) takes it back."""
    with sa.create_engine(mysql_server).begin() as connection:
        connection.execute(sa.text(f"GRANT DELETE ON {GRANTS_DATABASE}.* TO 'weather_app'@'%'"))

    apply_init_sql(mysql_server, GRANTS_DATABASE)

    with accounts.app.connect() as connection, pytest.raises(sa.exc.OperationalError, match="denied"):
        connection.execute(sa.text("DELETE FROM weather_predictions"))


@pytest.mark.mysql
def test_the_read_api_serves_as_the_reader_account_alone(accounts: Accounts, tmp_path: Path) -> None:
    """SELECT is all the API needs: hits, health, and the named lock that single-flights a missing hour."""
    reader = accounts.reader.url.render_as_string(hide_password=False)
    settings = Settings(db_url=reader, data_dir=str(tmp_path), stations=(108,))  # its Dagster instance in tmp_path
    with TestClient(create_app(settings)) as client:
        hit = client.get("/comfort", params={"station_id": 108, "at": HOUR.isoformat()})
        health = client.get("/health")
    assert (hit.status_code, hit.json()["score"], hit.json()["prediction_datetime"]) == (200, 70.0, HOUR.isoformat())
    assert health.json()["newest_prediction"] == HOUR.isoformat()
    with accounts.reader.connect() as connection:
        assert connection.execute(sa.text("SELECT GET_LOCK('weather-serve-reader-test', 0)")).scalar() == 1


def test_prediction_checks_run_with_the_asset_and_pass(trained: Trained, db_url: str) -> None:
    result = dg.materialize(
        [weather_predictions],
        resources=resources(trained, db_url),
        tags=range_tags(HOUR - timedelta(hours=2), HOUR),
        instance=dg.DagsterInstance.ephemeral(),
    )

    evaluations = check_evaluations(result)
    assert evaluations == {
        "predictions_one_row_per_station_hour": True,
        "predictions_scores_in_range": True,
        "predictions_match_features": True,
    }
    chart = written(result)["comfort_now"]
    assert "2026-11-19-09:00 KST" in chart and chart.count("█") > 0


@pytest.mark.mysql
def test_the_write_check_passes_for_the_app_account_and_refuses_the_reader_writing_nothing(accounts: Accounts) -> None:
    """The main command's up-front check: weather_app may write, weather_reader may not; the probe leaves no row."""
    before = pd.read_sql("SELECT * FROM weather_predictions", accounts.app)
    ComfortDatabase(url=accounts.app.url.render_as_string(hide_password=False)).check_writable()
    reader = ComfortDatabase(url=accounts.reader.url.render_as_string(hide_password=False), max_attempts=1)

    with pytest.raises(DatabaseWriteError, match="denied") as refused:
        reader.check_writable()

    assert "reader-pw" not in str(refused.value)
    pd.testing.assert_frame_equal(pd.read_sql("SELECT * FROM weather_predictions", accounts.app), before)


def test_the_write_check_writes_nothing(db_url: str) -> None:
    database = ComfortDatabase(url=db_url)
    database.check_writable()
    assert database.rows(PREDICTIONS).empty
