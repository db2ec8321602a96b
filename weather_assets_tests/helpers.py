"""What the test modules share besides fixtures (those are in fixtures.py): constants, processes, pipeline runs,
data folders and test data. Test modules import from here, never from conftest or from one another."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from weather_assets import runs
from weather_assets.defs.assets.forecasts import forecast_features, kma_forecasts, weather_forecasts
from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.partitions import range_tags
from weather_assets.defs.resources.lake import Lake, features_key
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.defs.resources.predictions_db import ComfortDatabase, tables_resources
from weather_assets.domain.hours import partition_key
from weather_assets.domain.tables import PREDICTIONS, forecasts_table
from weather_assets_tests.scratch import unconfigured_environment

REPO = Path(__file__).resolve().parents[1]
STATIONS = "100,101,102,104,105,108,112,119,129,133"
# The trained template's stations (fixtures.trained_template): Seoul and Incheon, and Busan on another grid point.
TRAINED_STATIONS = "108,112,159"
# The forecast tests' stations: Seoul and Busan, on two grid points of the short-term forecast.
FORECAST_STATIONS = "108,159"
HOUR = timedelta(hours=1)

# --- processes ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_tool(reason: str) -> None:
    """A test needs a tool this machine lacks: skip with the reason, except in CI (CI=true), which installs it."""
    if os.getenv("CI"):
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


def dagster_home(folder: Path, settings: str = "") -> Path:
    """A DAGSTER_HOME whose dagster.yaml turns telemetry off (no test reports usage), plus `settings` (YAML)."""
    folder.mkdir(parents=True)
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + settings)
    return folder


@contextlib.contextmanager
def serving(
    command: list[str], env: dict[str, str], health_url: str, log: Path, cwd: Path | None = None, timeout: float = 180
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, started in its own session and waited for until `health_url` answers; stopped at exit."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                assert process.poll() is None, f"{command[0]} exited: {log.read_text()[-3000:]}"
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(health_url, timeout=2).ok:
                        break
                time.sleep(0.2)
            else:
                pytest.fail(f"{command[0]} did not answer at {health_url} within {timeout:.0f} s")
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def dagster_materialize(env: dict[str, str], *selection_and_partitions: str) -> subprocess.CompletedProcess[str]:
    """`dagster asset materialize -m weather_assets.definitions ...` in a fresh process, as an operator types it."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "asset", "materialize", "-m", "weather_assets.definitions", *selection_and_partitions]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def main_command(
    data_dir: Path, stations: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m weather_assets` in a fresh process, on embedded defaults under `data_dir` (plus `env`)."""
    base = unconfigured_environment()
    env = base | {"WEATHER_DATA_DIR": str(data_dir), "WEATHER_STATIONS": stations} | (env or {})
    command = [sys.executable, "-m", "weather_assets", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


# --- pipeline runs in this process ---------------------------------------------------------------------------------


def ingest(
    resources: dict[str, object],
    first: datetime,
    last: datetime | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize both ingest assets for one hour, or for first..last as one single-run backfill."""
    return dg.materialize(
        [kma_observations, weather_features],
        resources=resources,
        partition_key=None if last is not None else partition_key(first),
        tags=range_tags(first, last) if last is not None else None,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """Whether each asset check of a run passed, by check name."""
    return {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}


def train(data_dir: Path, first: datetime, last: datetime, stations: str) -> None:
    """The hours first..last ingested and a champion trained on them, on embedded defaults under `data_dir` (as
    after the main command). Seconds of training: tests copy fixtures.trained_template rather than call this."""
    lake, registry = Lake(data_dir=str(data_dir)), ModelRegistry(data_dir=str(data_dir))
    instance = dg.DagsterInstance.ephemeral()
    ingested = ingest({"kma": OfflineKMAClient(stations=stations), "lake": lake}, first, last, instance=instance)
    assert ingested.success, runs.failures(ingested)
    trained = dg.materialize(
        [comfort_model], resources={"lake": lake, "mlflow": MLflowTracking(registry=registry)}, instance=instance
    )
    assert trained.success, runs.failures(trained)


def ingest_missing(data_dir: Path, first: datetime, last: datetime, stations: str = TRAINED_STATIONS) -> None:
    """Ingest the hours of first..last that the lake under `data_dir` lacks (say the hour turned since the trained
    template was made), from the first missing one, as one run."""
    missing = [hour for hour in span(first, last) if not (data_dir / "lake" / features_key(hour)).exists()]
    if missing:
        lake = Lake(data_dir=str(data_dir))
        ingested = ingest({"kma": OfflineKMAClient(stations=stations), "lake": lake}, missing[0], missing[-1])
        assert ingested.success, runs.failures(ingested)


def predict(data_dir: Path, first: datetime, last: datetime, db_url: str | None = None) -> None:
    """weather_predictions of first..last (one run) with the champion under `data_dir`, into its embedded table or
    `db_url`; any of those hours the lake lacks is ingested first."""
    ingest_missing(data_dir, first, last)
    resources = {
        "lake": Lake(data_dir=str(data_dir)),
        "model_registry": ModelRegistry(data_dir=str(data_dir)),
        **tables_resources(ComfortDatabase(data_dir=str(data_dir), url=db_url)),
    }
    instance = dg.DagsterInstance.ephemeral()
    predicted = dg.materialize(
        [weather_predictions], resources=resources, tags=range_tags(first, last), instance=instance
    )
    assert predicted.success, runs.failures(predicted)


def forecast(data_dir: Path, db_url: str, issue: datetime) -> dg.ExecuteInProcessResult:
    """The forecast chain (raw pages, features, comfort forecasts) of one issue for `FORECAST_STATIONS`, with the
    champion and lake under `data_dir`, into `db_url`; not raised on error."""
    return dg.materialize(
        [kma_forecasts, forecast_features, weather_forecasts],
        resources={
            "kma": OfflineKMAClient(stations=FORECAST_STATIONS),
            "lake": Lake(data_dir=str(data_dir)),
            "model_registry": ModelRegistry(data_dir=str(data_dir)),
            **tables_resources(ComfortDatabase(data_dir=str(data_dir), url=db_url)),
        },
        partition_key=partition_key(issue),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def copy_data_dir(source: Path, target: Path) -> Path:
    """A copy of the data folder `source` (lake, MLflow store, tables) at `target`, with a champion of its own.

    MLflow's SQLite store records its artifacts by absolute file URI (the experiment's, each run's, logged model's
    and model version's); copied as they are, the copy would load the source's model, and fail once the source is
    gone. Every such URI is pointed at the copy.
    """
    shutil.copytree(source, target)
    store = target / "mlflow.db"
    if store.exists():
        old, new = source.resolve().as_uri() + "/", target.resolve().as_uri() + "/"
        with contextlib.closing(sqlite3.connect(store)) as db, db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for column in [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]:
                    db.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                        (old, new, old),
                    )
    return target


# --- test data -----------------------------------------------------------------------------------------------------

FORECAST_MEASURED = {"temperature": 4.0, "humidity": 60.0, "precipitation": 0.0, "pm10": 40.0, "wind_speed": 2.0}


def span(first: datetime, last: datetime) -> list[datetime]:
    """The hours first..last, both included."""
    return [first + n * HOUR for n in range((last - first) // HOUR + 1)]


def prediction_rows(hours: Iterable[datetime], station_id: int = 108, **values: object) -> pd.DataFrame:
    """weather_predictions rows of one station, one per hour, as the asset outputs them; `values` overrides a column."""
    row = {
        "station_id": station_id, "region": "Seoul", "comfort_score": 70.0, "temperature": 10.0, "humidity": 50.0,
        "precipitation": 0.0, "pm10": 20.0, "wind_speed": 2.0, "pressure": 1015.0, "model_name": "comfort-model/1",
    }  # fmt: skip
    return pd.DataFrame([{**row, **values, "prediction_datetime": hour} for hour in hours])[list(PREDICTIONS.columns)]


def seed_forecasts(
    db_url: str,
    issued_at: datetime,
    hours: Iterable[datetime],
    station_id: int = 108,
    score: Callable[[datetime], float] = lambda hour: 70.0,
    **measured: float,
) -> None:
    """One issue's weather_forecasts rows, as the forecast pipeline writes them (the table created if need be)."""
    table = forecasts_table()
    engine = sa.create_engine(db_url)
    try:
        table.create(engine, checkfirst=True)
        rows = [
            {
                "forecast_datetime": hour,
                "station_id": station_id,
                "issued_at": issued_at,
                "lead_hours": (hour - issued_at) // HOUR,
                "region": "Seoul",
                "comfort_score": score(hour),
                **FORECAST_MEASURED,
                "pressure": 1015.0,
                **measured,
                "forecast_inputs": "temperature,humidity,precipitation,wind_speed",
                "carried_inputs": "pm10,pressure",
                "model_name": "comfort-model/2",
                "created_at": datetime(2026, 1, 1),
                "updated_at": datetime(2026, 1, 1),
            }
            for hour in hours
        ]
        with engine.begin() as connection:
            connection.execute(table.insert(), rows)
    finally:
        engine.dispose()


# KMA's hourly observations (kma_sfctm2.php) written by hand, shaped after KMA's own help text.
# Fields 17..46 of an ASOS line (RN_DAY .. IX), as KMA writes them on a quiet night: sentinels and `-`.
TAIL = (
    "-9.0 -9.0 -9.0   -9.0   -9.0   -9.0 -9 -9 -                  -9  -9 -9 -  -9  -9  -9  2000 -9.0 -9.0 -9"
    "   3.1  -9.0  -9.0  -9.0  -9.0  -9 -9.0 -9  3  -"
)
HEAD_COLUMNS = (
    "# YYMMDDHHMI STN  WD   WS GST  GST  GST     PA     PS PT    PR    TA    TD    HM    PV     RN  RN  RN  RN"
    "     SD     SD     SD WC WP WW                  CA  CA CH CT  CT  CT  CT    VS  SS    SI ST    TS    TE"
    "    TE    TE    TE  ST  WH BF IR IX"
)
HEAD_UNITS = (
    "#        KST  ID  16  m/s  WD   WS   TM    hPa    hPa  -   hPa     C     C     %   hPa     mm DAY JUN INT"
    "    HR3    DAY    TOT -- -- --                 TOT MID MIN --  TOP MID LOW    --  --    --  --     C"
    "   005    01    02    03  --   m  -- -- --"
)
HELP = [
    "#--------------------------------------------------------------------------------------------------",
    "#  기상청 지상관측 시간자료 [입력인수형태][예] ?tm=202401150900&stn=0&help=1",
    "#--------------------------------------------------------------------------------------------------",
    HEAD_COLUMNS,
    HEAD_UNITS,
]


def block(*lines: str, encoding: str = "utf-8") -> bytes:
    """An answer as KMA sends it: the given lines between the markers, newline-terminated."""
    return ("\n".join(["#START7777", *lines, "#7777END"]) + "\n").encode(encoding)


def asos_line(ws: str = "2.3", ps: str = "1028.4", ta: str = "-3.2", hm: str = "61.0", rn: str = "-9.0") -> str:
    """A 46-field ASOS line of station 108 at 09:00 with the given WS, PS, TA, HM and RN tokens."""
    line = f"202401150900 108  27 {ws}  -9 -9.0   -9 1018.0 {ps} -9   -9.0 {ta}  -9.8 {hm}   2.8 {rn} " + TAIL
    assert len(line.split()) == 46
    return line


def eventually(ask: Callable[[], Response], done: Callable[[Response], bool], seconds: float = 30) -> Response:
    """`ask` again until its answer is `done` (the API looks at its SQLite file about once a second), or the
    deadline passes; the last answer either way, for the test to judge."""
    deadline = time.monotonic() + seconds
    while not done(answer := ask()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return answer


def at(client: TestClient, now: datetime) -> TestClient:
    """The API's clock stopped at the naive KST time `now`."""
    client.app.state.service.clock = lambda: now
    return client
