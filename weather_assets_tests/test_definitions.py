"""The code location loads, and its partitions and names follow the design card's contract."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

import weather_assets.defs
from weather_assets.definitions import defs, kma_client_from_env, resources_from_env
from weather_assets.defs.jobs import ingest_job
from weather_assets.defs.partitions import hourly, hourly_partitions, kst_hours
from weather_assets.defs.resources.kma_client import KMAHubClient
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.domain.hours import current_hour, kst_now
from weather_assets.environment import INGEST_MINUTE, PARTITIONS_START, Env, ingest_minute, partitions_start
from weather_assets_tests.helpers import REPO, dagster_home
from weather_assets_tests.scratch import unconfigured_environment

MINUTE_RANGE = "must be a whole number from 0 to 59 (minute of the hour)"


def describe(error: BaseException) -> str:
    """An error's message and the messages of the errors it was raised from."""
    return "\n".join(str(each) for each in (error, error.__cause__) if each is not None)


def test_definitions_load_with_the_contracted_asset_keys() -> None:
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"kma_observations", "weather_features"} <= keys
    assert defs.resolve_job_def("ingest").partitions_def == hourly


def test_every_definition_under_defs_is_in_the_code_location() -> None:
    """An asset, check, job, schedule or sensor that a module under defs/ defines (by hand, or with `dg scaffold
    defs`) and definitions.py does not list fails here, rather than sitting in a file nothing loads."""
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    asset_job = type(ingest_job)  # what dg.define_asset_job returns, resolved only by the repository
    missing = []
    for module in pkgutil.walk_packages(weather_assets.defs.__path__, "weather_assets.defs."):
        for name, value in vars(importlib.import_module(module.name)).items():
            if isinstance(value, dg.AssetsDefinition):
                absent = set(value.keys) - graph.get_all_asset_keys()
                absent |= set(value.check_keys) - graph.asset_check_keys
            elif isinstance(value, dg.JobDefinition | asset_job):
                absent = set() if repository.has_job(value.name) else {value.name}
            elif isinstance(value, dg.ScheduleDefinition):
                absent = set() if repository.has_schedule_def(value.name) else {value.name}
            elif isinstance(value, dg.SensorDefinition):
                absent = set() if repository.has_sensor_def(value.name) else {value.name}
            else:
                continue
            missing += [f"{module.name}.{name}: {each}" for each in absent]
    assert missing == []


def test_partition_key_is_the_kst_observation_hour() -> None:
    window = hourly.time_window_for_partition_key("2026-11-26-09:00")
    assert kst_hours(window) == [datetime(2026, 11, 26, 9)]
    assert hourly.timezone == "Asia/Seoul"
    assert hourly.fmt == "%Y-%m-%d-%H:%M"
    assert hourly.start.strftime("%Y-%m-%d-%H:%M") == PARTITIONS_START


def test_current_hour_is_a_partition_as_soon_as_it_starts() -> None:
    """end_offset=1: at 09:10 KST the 09:00 hour can be materialized."""
    at = datetime.fromisoformat("2026-11-26T09:10:00+09:00")
    with dg.partition_loading_context(effective_dt=at):
        assert hourly.get_last_partition_key() == "2026-11-26-09:00"


def test_the_current_hour_of_any_moment_is_its_kst_hour() -> None:
    assert current_hour(datetime.fromisoformat("2026-11-26T00:10:30+00:00")) == datetime(2026, 11, 26, 9)
    assert current_hour(datetime(2026, 11, 26, 9, 59, 59, 999)) == datetime(2026, 11, 26, 9)  # naive: KST already
    assert current_hour() <= kst_now() < current_hour() + timedelta(hours=1)


def test_partition_start_is_configurable() -> None:
    assert hourly_partitions("2026-01-01-00:00").get_first_partition_key() == "2026-01-01-00:00"


@pytest.mark.parametrize(
    ("variable", "value", "read", "said"),
    [
        (Env.PARTITIONS_START, "2025-13-01", partitions_start, "must be a KST hour such as 2025-01-01-00:00"),
        (Env.INGEST_MINUTE, "75", ingest_minute, MINUTE_RANGE + ", not '75'"),
        (Env.INGEST_MINUTE, "ten", ingest_minute, MINUTE_RANGE + ", not 'ten'"),
        (Env.INGEST_MINUTE, "nan", ingest_minute, MINUTE_RANGE + ", not 'nan'"),
        (Env.INGEST_MINUTE, "²", ingest_minute, MINUTE_RANGE + ", not '²'"),  # a digit to str.isdigit, not to int
    ],
)
def test_the_shape_settings_refuse_a_bad_value_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: Env, value: str, read: object, said: str
) -> None:
    monkeypatch.setenv(variable.value, value)
    with pytest.raises(ValueError, match=re.escape(f"{variable.value} {said}")):
        read()


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (Env.KMA_POLL_SECONDS, "0", "must be a whole number from 1 to 600 (seconds), not 0"),
        (Env.KMA_POLL_SECONDS, "-5", "must be a whole number from 1 to 600 (seconds), not -5"),
        (Env.KMA_WAIT_MINUTES, "100000", "must be a whole number from 0 to 1440 (minutes), not 100000"),
        (Env.KMA_WAIT_MINUTES, "nan", 'Value stored in env variable "WEATHER_KMA_WAIT_MINUTES" cannot be coerced'),
    ],
)
def test_the_kma_waits_refuse_a_value_out_of_range_when_a_run_starts(
    monkeypatch: pytest.MonkeyPatch, variable: Env, value: str, said: str
) -> None:
    """Resolved by Dagster when a run starts: a poll of 0 s (KMA asked without pause) or -5 s (a crash) is refused."""
    monkeypatch.setenv(variable.value, value)
    with pytest.raises(dg.DagsterError) as refused, dg.build_resources({"kma": resources_from_env()["kma"]}):
        pass
    assert said in describe(refused.value)


def test_the_shape_settings_default_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(Env.PARTITIONS_START.value, raising=False)
    monkeypatch.setenv(Env.INGEST_MINUTE.value, "")
    assert (partitions_start(), ingest_minute()) == (PARTITIONS_START, INGEST_MINUTE)


def test_range_window_lists_every_hour() -> None:
    first = hourly.time_window_for_partition_key("2026-11-25-23:00")
    last = hourly.time_window_for_partition_key("2026-11-26-01:00")
    assert kst_hours(dg.TimeWindow(first.start, last.end)) == [
        datetime(2026, 11, 25, 23),
        datetime(2026, 11, 26, 0),
        datetime(2026, 11, 26, 1),
    ]


@pytest.mark.parametrize(
    "package", ["weather_assets.kma", "weather_assets.offline", "weather_assets.domain", "weather_assets.api"]
)
def test_layers_that_do_not_load_dagster(package: str) -> None:
    """The layering the Layout section promises: KMA's formats, the offline generator and the domain are plain
    Python, and the read API loads Dagster only in a worker that computes an hour (`runs`, imported on demand)."""
    program = (
        f"import pkgutil, importlib, sys, {package} as p\n"
        f"for m in pkgutil.iter_modules(p.__path__): importlib.import_module(f'{package}.{{m.name}}')\n"
        "print(sorted(n for n in sys.modules if n == 'dagster' or n.startswith('dagster.')))"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_kma_package_imports_nothing_else_of_the_project() -> None:
    """`kma/` says what KMA sends and nothing of what the platform makes of it: the domain builds on it, not the
    other way round."""
    program = (
        "import pkgutil, importlib, sys, weather_assets.kma as p\n"
        "for m in pkgutil.iter_modules(p.__path__): importlib.import_module(f'weather_assets.kma.{m.name}')\n"
        "print(sorted(n for n in sys.modules if n.startswith('weather_assets.') and n.split('.')[1] != 'kma'))"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_kma_client_is_the_api_hub_with_a_key_and_the_offline_generator_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One choice, by whether KMA_AUTH_KEY is set; the key stays the variable's name until a run resolves it."""
    monkeypatch.setenv(Env.STATIONS.value, "108")
    monkeypatch.delenv(Env.KMA_AUTH_KEY.value, raising=False)
    offline = kma_client_from_env()
    monkeypatch.setenv(Env.KMA_AUTH_KEY.value, "S3CRET")
    hub = kma_client_from_env()
    assert isinstance(offline, OfflineKMAClient) and offline.source == "offline"
    assert isinstance(hub, KMAHubClient) and hub.source == "kma"
    assert hub.auth_key == dg.EnvVar(Env.KMA_AUTH_KEY.value) and "S3CRET" not in repr(hub)
    assert offline.stations == hub.stations == dg.EnvVar(Env.STATIONS.value)


def test_the_api_hub_client_does_not_load_the_offline_generator() -> None:
    """The production client's module imports no offline code: only the environment's choice brings it in."""
    program = (
        "import sys, weather_assets.defs.resources.kma_client\n"
        "print(sorted(n for n in sys.modules if n.startswith('weather_assets.offline')))"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_loading_the_code_location_leaves_the_libraries_of_some_runs_unimported() -> None:
    """Every process that loads the definitions (the code server, each launched run) would pay for these: MLflow and
    scikit-learn load in the runs that train or predict, dagster-aws and boto3 when an s3:// lake opens
    (`python -X importtime -c "import weather_assets.definitions"` shows the seconds)."""
    program = (
        "import sys, weather_assets.definitions\n"
        "print(sorted({n.partition('.')[0] for n in sys.modules} & {'mlflow', 'dagster_mlflow', 'sklearn', 'scipy',"
        " 'skops', 'boto3', 'botocore', 'dagster_aws'}))"
    )
    env = unconfigured_environment()
    result = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def quiet_dagster_home(tmp_path: Path) -> dict[str, str]:
    """The environment of a user who followed the README: a DAGSTER_HOME with its dagster.yaml, nothing else set."""
    home = dagster_home(tmp_path / "dagster_home")
    env = unconfigured_environment()
    # as `source .venv/bin/activate` leaves it: dg compares the active environment with the project's
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    return env | {"DAGSTER_HOME": str(home), "WEATHER_DATA_DIR": str(tmp_path / "weather")}


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["dg", "check", "defs"], ["dg", "list", "defs"], ["python", "-m", "weather_assets", "--help"]],
)
def test_commands_print_no_warning(command: list[str], tmp_path: Path) -> None:
    """`dg` from the repository root finds the code location; no command prints a warning this project causes."""
    executable = str(Path(sys.executable).with_name(command[0])) if command[0] != "python" else sys.executable
    result = subprocess.run(
        [executable, *command[1:]], cwd=REPO, env=quiet_dagster_home(tmp_path), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "warning" not in output.lower(), output[-3000:]


def test_every_environment_variable_is_documented() -> None:
    """`Env` is the one list of variables; the README's Configuration table and the read API's page say what each
    one means."""
    tables = (REPO / "README.md").read_text() + (REPO / "docs" / "read-api.md").read_text()
    assert [variable.value for variable in Env if f"`{variable.value}`" not in tables] == []


def test_the_readme_fits_two_screens_and_every_file_it_names_exists() -> None:
    """The README is for a new user (reference pages live in docs/): at most 200 lines, and no dangling pointer."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    named = set(re.findall(r"\]\((?!https?:)([^)#]+)\)", readme))  # links within the repository
    named |= {path for path in re.findall(r"`([\w./-]+\.(?:md|py|csv|sql|yml|yaml|toml))`", readme)}
    assert named and [path for path in sorted(named) if not (REPO / path).exists()] == []


@pytest.mark.slow
def test_the_readmes_instance_is_the_repositorys_dagster_yaml_and_no_command_warns(tmp_path: Path) -> None:
    """`dg list defs` as the README runs it (no DAGSTER_HOME: the repository's dagster.yaml configures the instance)
    and the main command with `DAGSTER_HOME=$PWD` print no warning, and the instance keeps its state under
    .weather/dagster, not beside the code."""
    config = (REPO / "dagster.yaml").read_text()
    assert "base_dir: .weather/dagster" in config and "enabled: false" in config
    env = quiet_dagster_home(tmp_path)
    del env["DAGSTER_HOME"]
    dg = str(Path(sys.executable).with_name("dg"))
    listed = subprocess.run([dg, "list", "defs"], cwd=REPO, env=env, capture_output=True, text=True)
    main = subprocess.run(
        [sys.executable, "-m", "weather_assets", "--help"],
        cwd=REPO,
        env=env | {"DAGSTER_HOME": str(REPO)},
        capture_output=True,
        text=True,
    )
    for result in (listed, main):
        assert result.returncode == 0, result.stderr[-3000:]
        assert "warning" not in (result.stdout + result.stderr).lower(), result.stderr[-3000:]
    untracked = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, text=True, capture_output=True
    ).stdout
    assert not [line for line in untracked.splitlines() if "telemetry" in line or line.endswith(("logs/", "history/"))]
