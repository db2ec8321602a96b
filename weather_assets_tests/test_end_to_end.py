"""End to end as a real client: `dg dev` (webserver and daemon) on embedded defaults, a backfill through the
GraphQL API, rows in the database, and the asset graph drawn in headless Chromium.

The screenshot is kept in weather_assets_tests/artifacts/asset_graph.png.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dagster_graphql import DagsterGraphQLClient
from fastapi.testclient import TestClient

from weather_assets.api import Settings, create_app
from weather_assets.domain.hours import current_hour, partition_key
from weather_assets_tests.helpers import REPO, copy_data_dir, dagster_home, free_port, missing_tool, serving
from weather_assets_tests.scratch import unconfigured_environment

pytestmark = pytest.mark.slow  # every test here starts processes: the full run, not the fast loop

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FIRST = datetime(2026, 11, 20, 9)  # the backfill: 09:00, 10:00 and 11:00 KST
HOURS = [FIRST + timedelta(hours=offset) for offset in range(3)]
ASSETS = ("kma_observations", "weather_features", "comfort_model", "weather_predictions")

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}
"""
BACKFILL_RUNS = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) { ... on Runs { results { status } } }
}
"""
SERVE_RUNS = """
{ runsOrError(filter: {pipelineName: "ingest_and_predict"}) { ... on Runs { results { status tags { key value } } } } }
"""
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "FAILING"}
RUN_ENDED = {"SUCCESS", "FAILURE", "CANCELED"}


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(frozen=True)
class DevServer:
    """`dg dev` serving a data folder: the webserver's port, the folder, and the server's log."""

    port: int
    data_dir: Path
    log: Path


@pytest.fixture(scope="module")
def dagster_dev(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`dg dev` in the repository root, as the README starts it, on embedded defaults with a champion already
    trained (as after the main command); one for the module's tests, which write different hours and jobs."""
    folder = tmp_path_factory.mktemp("dagster_dev")
    data_dir = copy_data_dir(trained_template, folder / "weather")
    home = dagster_home(folder / "dagster_home", "nux:\n  enabled: false\n")  # no dialog over the screenshot
    port = free_port()
    env = unconfigured_environment()
    env |= {"WEATHER_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(home)}
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)  # as after `source .venv/bin/activate`
    command = [str(Path(sys.executable).with_name("dg")), "dev", "--host", "127.0.0.1", "--port", str(port)]
    health = f"http://127.0.0.1:{port}/server_info"
    log = folder / "dagster_dev.log"
    with serving(command, env, health, log, cwd=REPO):
        yield DevServer(port, data_dir, log)


def predicted_hours(data_dir: Path) -> list[tuple[str, int]]:
    """Each predicted hour (to the minute) with its row count in the embedded database of `data_dir` (none before
    the first write, which creates the table; the file is opened read-only, so never created here)."""
    try:
        with closing(sqlite3.connect(f"file:{data_dir / 'weather.db'}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT prediction_datetime, COUNT(*) FROM weather_predictions GROUP BY prediction_datetime ORDER BY 1"
            ).fetchall()
    except sqlite3.OperationalError:  # no file or no table yet
        return []
    return [(hour[:16], count) for hour, count in rows]


def wait_for_backfill(client: DagsterGraphQLClient, backfill_id: str, done: Callable[[], bool]) -> tuple[str, list]:
    """The backfill's status and its runs' once its runs have ended and `done()` holds, or once it has ended.

    Not its status alone: the daemon marks a backfill completed at its next iteration, up to 30 s after its runs.
    """
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        answer = client._execute(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]  # noqa: SLF001
        assert answer["__typename"] == "PartitionBackfill", answer
        runs = client._execute(BACKFILL_RUNS, {"id": backfill_id})["runsOrError"]["results"]  # noqa: SLF001
        statuses = [run["status"] for run in runs]
        if answer["status"] in TERMINAL or (statuses and RUN_ENDED.issuperset(statuses) and done()):
            return answer["status"], statuses
        time.sleep(1)
    pytest.fail(f"backfill {backfill_id} did not finish within 420 s")


def test_backfill_through_the_graphql_api_writes_predictions_and_the_ui_draws_the_assets(
    dagster_dev: DevServer, tmp_path: Path
) -> None:
    client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_dev.port)
    params = {
        "partitionNames": [partition_key(hour) for hour in HOURS],
        "assetSelection": [
            {"path": [name]} for name in ("kma_observations", "weather_features", "weather_predictions")
        ],
        "title": "end-to-end test",
    }
    launched = client._execute(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]  # noqa: SLF001
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    expected = [(f"{h:%Y-%m-%d %H:%M}", 10) for h in HOURS]
    status, runs = wait_for_backfill(
        client, launched["backfillId"], lambda: predicted_hours(dagster_dev.data_dir) == expected
    )

    assert status not in {"COMPLETED_FAILED", "FAILED", "CANCELED", "FAILING"}, dagster_dev.log.read_text()[-5000:]
    assert runs and set(runs) == {"SUCCESS"}, runs
    assert predicted_hours(dagster_dev.data_dir) == expected

    browser = chromium()
    if browser is None:
        missing_tool("Chromium is not installed: apt-get install chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "asset_graph.png"
    # weather_predictions' lineage, upstream: the four assets in their two groups
    url = f"http://127.0.0.1:{dagster_dev.port}/assets/weather_predictions?view=lineage&lineageScope=upstream&lineageDepth=3"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1600,1000", "--virtual-time-budget=30000",
    ]  # fmt: skip
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
    subprocess.run([browser, *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=180, check=True)

    assert screenshot.stat().st_size > 10_000
    missing = [name for name in ASSETS if name not in dom]
    assert not missing, f"the asset graph does not draw {missing}"


def test_read_api_computes_a_missing_hour_through_the_webservers_graphql_api(
    dagster_dev: DevServer, tmp_path: Path
) -> None:
    """With DAGSTER_GRAPHQL_URL set, a cache miss launches an ingest_and_predict run on the webserver (in the UI)."""
    hour = current_hour() - timedelta(hours=1)  # a recent hour: the only kind the API computes
    settings = Settings(
        db_url=f"sqlite:///{dagster_dev.data_dir / 'weather.db'}",
        data_dir=str(tmp_path / "api"),
        graphql_url=f"http://127.0.0.1:{dagster_dev.port}",
        wait_seconds=300,
    )
    with TestClient(create_app(settings)) as api:
        answer = api.get("/comfort", params={"at": hour.isoformat(), "station_id": 108})

    assert answer.status_code == 200, answer.text
    assert answer.json()["prediction_datetime"] == hour.isoformat()
    client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_dev.port)
    runs = client._execute(SERVE_RUNS)["runsOrError"]["results"]  # noqa: SLF001
    assert [run["status"] for run in runs] == ["SUCCESS"]
    assert {"key": "dagster/partition", "value": partition_key(hour)} in runs[0]["tags"]
