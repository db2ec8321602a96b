"""The full stack, proven without a Docker engine: the compose file statically, and every piece that runs here for
real (the production dagster.yaml on MariaDB, the MLflow server exactly as compose starts it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from mlflow import MlflowClient

from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.partitions import range_tags
from weather_assets.defs.resources.lake import Lake
from weather_assets.defs.resources.mlflow_tracking import MLflowTracking
from weather_assets.defs.resources.model_registry import CHAMPION, MODEL_NAME, ModelRegistry
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets_tests.helpers import REPO, STATIONS, free_port, missing_tool, serving

COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict] = COMPOSE["services"]
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


def env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_every_compose_variable_is_in_env_example() -> None:
    used = set(VARIABLE.findall(COMPOSE_TEXT))
    assert used, "the compose file reads its settings from .env"
    assert sorted(used - set(env_example())) == []


def test_services_others_wait_for_are_healthy_or_one_shot() -> None:
    for name, service in SERVICES.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            target = SERVICES[dependency]
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dependency} to be healthy, which has no healthcheck"
            else:
                assert condition["condition"] == "service_completed_successfully", (name, dependency)
                assert "restart" not in target, f"{dependency} is a one-shot job and must not restart"
    waited_for = {dependency for service in SERVICES.values() for dependency in service.get("depends_on") or {}}
    assert {"mysql", "minio", "minio-buckets", "mlflow", "code"} <= waited_for


def test_images_are_pinned_and_the_platform_is_built_here() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        if "build" in service:
            assert image.startswith("weather-comfort-platform:"), name
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and "$" not in tag, f"{name} uses unpinned image {image}"
    base = re.search(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE).group(1)
    assert ":" in base and not base.endswith(":latest")


def test_no_port_is_published_on_all_interfaces() -> None:
    published = [(name, port) for name, service in SERVICES.items() for port in service.get("ports", [])]
    assert published
    assert [(name, port) for name, port in published if not str(port).startswith("127.0.0.1:")] == []


def test_secrets_come_from_dotenv_which_git_ignores() -> None:
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()
    assert "change-me" in (REPO / ".env.example").read_text()
    for secret in ("PASSWORD", "SECRET"):
        assert not re.search(rf"{secret}\w*: [^$\s]", COMPOSE_TEXT), "a literal secret in docker-compose.yml"


def test_dockerfile_installs_the_package_as_the_readme_does() -> None:
    readme = (REPO / "README.md").read_text()
    install = re.search(r"python3 -m venv \.venv && \.venv/bin/pip install -e \.(?= )", readme).group(0)
    runs = re.findall(r"^RUN (.+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert install in runs


def test_the_api_reads_as_the_reader_and_has_hours_computed_by_the_webserver() -> None:
    api = SERVICES["api"]
    environment = api["environment"]
    assert re.fullmatch(
        r"mysql\+pymysql://weather_reader:\$\{WEATHER_DB_READER_PASSWORD:\?[^}]*\}@mysql:3306/weather_mlops",
        environment["WEATHER_API_DB_URL"],
    )
    webserver = SERVICES["webserver"]["command"]
    graphql = urlsplit(environment["DAGSTER_GRAPHQL_URL"])
    assert (graphql.hostname, str(graphql.port)) == ("webserver", webserver[webserver.index("-p") + 1])
    assert api["depends_on"]["webserver"] == {"condition": "service_healthy"}
    assert api["command"][:2] == ["uvicorn", "weather_assets.api:app"]


def test_docker_compose_validates_the_file() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        missing_tool("docker-compose is not installed: apt-get install docker-compose")
    done = subprocess.run(
        [tool, "--env-file", str(REPO / ".env.example"), "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.mysql
def test_production_dagster_yaml_runs_on_mariadb(
    mysql_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sa.make_url(mysql_database)
    shutil.copy(REPO / "docker" / "dagster.yaml", tmp_path / "dagster.yaml")
    for key, value in {
        "DAGSTER_MYSQL_HOST": url.host, "DAGSTER_MYSQL_PORT": str(url.port or 3306), "DAGSTER_MYSQL_DB": url.database,
        "DAGSTER_MYSQL_USER": url.username, "DAGSTER_MYSQL_PASSWORD": url.password or "",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)

    @dg.asset
    def hello() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"greeting": "hello from MySQL storage"})

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "MySQLRunStorage"
        assert type(instance.event_log_storage).__name__ == "MySQLEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "MySQLScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config  # what the daemon's run queue applies
        assert queue.max_concurrent_runs == 8
        assert [(limit["key"], limit["limit"]) for limit in queue.tag_concurrency_limits] == [("dagster/backfill", 4)]
        result = dg.materialize([hello], instance=instance)
        assert result.success
        logs = instance.all_logs(result.run_id)
        events = [entry.dagster_event.event_type for entry in logs if entry.dagster_event]
        assert events[-1] == dg.DagsterEventType.RUN_SUCCESS
        assert dg.DagsterEventType.ASSET_MATERIALIZATION in events
        stored = instance.get_latest_materialization_event(hello.key).asset_materialization.metadata
        assert stored["greeting"].value == "hello from MySQL storage"


@pytest.fixture
def mlflow_server(mysql_database: str, s3_bucket: str, s3_endpoint: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` with the compose file's command and options, on MariaDB and moto's S3; yields its URL."""
    service = SERVICES["mlflow"]
    port = free_port()
    command = [str(part) for part in service["command"]]
    command[0] = str(Path(sys.executable).with_name("mlflow"))
    command[command.index("--port") + 1] = str(port)
    env = {**os.environ, **{k: str(v) for k, v in service["environment"].items() if "$" not in str(v)}}
    env |= {  # the values compose interpolates from .env, pointed at this machine's servers
        "MLFLOW_BACKEND_STORE_URI": mysql_database,
        "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{s3_bucket}/",
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    url = f"http://127.0.0.1:{port}"
    with serving(command, env, f"{url}/health", tmp_path / "mlflow.log"):
        yield url


@pytest.mark.slow
@pytest.mark.mysql
def test_training_logs_and_registers_through_the_compose_mlflow_server(
    mlflow_server: str, s3_bucket: str, tmp_path: Path
) -> None:
    lake = Lake(data_dir=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    end = datetime(2026, 11, 20)
    assert dg.materialize(
        [kma_observations, weather_features],
        resources={"kma": OfflineKMAClient(stations=STATIONS), "lake": lake},
        tags=range_tags(end - timedelta(days=4), end - timedelta(hours=1)),
        instance=instance,
    ).success
    registry = ModelRegistry(tracking_uri=mlflow_server)

    trained = dg.materialize(
        [comfort_model], resources={"lake": lake, "mlflow": MLflowTracking(registry=registry)}, instance=instance
    )

    assert trained.success
    meta = trained.get_asset_materialization_events()[0].materialization.metadata
    assert meta["mlflow_run"].value.startswith(f"{mlflow_server}/#/experiments/")
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    assert client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version in (1, "1")
    stored = boto3.client("s3").list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0)
    assert stored > 0, "the model's artifacts went to the S3 bucket, through the server"
    assert registry.champion().model_name == "comfort-model/1"
