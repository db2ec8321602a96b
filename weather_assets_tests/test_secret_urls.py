"""A password in a malformed URL never reaches a message or a log, wherever the URL is read (issue 20, item 9).

Every fragment of each password holds SECRET, so a password split at an unencoded ``@``, ``:`` or ``/`` is
caught in whatever part of the URL it landed in (host, port, database).
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from weather_assets.api import create_app
from weather_assets.api.settings import Settings, SettingsError
from weather_assets.defs.resources.model_registry import display_uri
from weather_assets.defs.resources.predictions_db import (
    ComfortDatabase,
    DatabaseWriteError,
    stored_in,
    tables_resources,
)
from weather_assets.domain.tables import PREDICTIONS
from weather_assets.environment import Env
from weather_assets_tests.helpers import free_port, main_command, prediction_rows

SECRET = "SECRET"
PORT = free_port()  # nothing listens there: a URL that parses is refused by the connection, not the parser
# Refused as they are read: part of the password would land in the host, port or database.
REFUSED = {
    "at": f"mysql+pymysql://weather_app:{SECRET}1@{SECRET}2@127.0.0.1:{PORT}/weather_mlops",
    "at-colon-slash": f"mysql+pymysql://weather_app:{SECRET}1@{SECRET}2:{SECRET}3/{SECRET}4@127.0.0.1:{PORT}/db",
    "slash-in-user": f"mysql+pymysql://weather/app:{SECRET}@127.0.0.1:{PORT}/weather_mlops",
    "no-host": f"mysql+pymysql://weather_app:{SECRET}/weather_mlops",
    "no-scheme": f"weather_app:{SECRET}@127.0.0.1:{PORT}/weather_mlops",
}
# Parsed as meant (SQLAlchemy takes everything up to the only @ as the password); the connection fails.
PARSED = {
    "colon-slash": f"mysql+pymysql://weather_app:{SECRET}1:{SECRET}2/{SECRET}3@127.0.0.1:{PORT}/weather_mlops",
    "question-hash": f"mysql+pymysql://weather_app:{SECRET}1?{SECRET}2#{SECRET}3@127.0.0.1:{PORT}/weather_mlops",
    "bracket": f"mysql+pymysql://weather_app:{SECRET}@[127.0.0.1:{PORT}/weather_mlops",
}
URLS = REFUSED | PARSED
ROWS = prediction_rows([datetime(2026, 11, 19, 9)])


def told(error: BaseException) -> str:
    """All an error shows: its message, its traceback, and the errors it was raised from or during."""
    return "".join(traceback.format_exception(error))


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text, text


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("url", URLS.values(), ids=URLS.keys())
def test_the_write_check_never_shows_the_password(
    url: str, logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    database = ComfortDatabase(url=url, max_attempts=2, backoff_seconds=0)

    with pytest.raises(DatabaseWriteError) as refused:
        database.check_writable()

    assert_no_secret(told(refused.value), logs.text, *capfd.readouterr())
    if url in REFUSED.values():
        assert "WEATHER_DB_URL " in str(refused.value) and "percent-encoded (@ as %40" in str(refused.value)


@pytest.mark.parametrize("url", URLS.values(), ids=URLS.keys())
def test_a_run_that_cannot_write_never_shows_the_password(
    url: str, logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """The run's event log (messages, errors with their causes and stacks), its console and Python logs."""

    @dg.asset(io_manager_key="tables_io_manager", metadata=stored_in(PREDICTIONS))
    def predictions() -> pd.DataFrame:
        return ROWS

    instance = dg.DagsterInstance.ephemeral()
    database = ComfortDatabase(url=url, max_attempts=2, backoff_seconds=0)
    result = dg.materialize(
        [predictions], resources=tables_resources(database), instance=instance, raise_on_error=False
    )

    assert not result.success
    events = [repr(record) for record in instance.all_logs(result.run_id)]
    assert_no_secret(*events, logs.text, *capfd.readouterr())


@pytest.mark.parametrize("variable", [Env.API_DB_URL, Env.DB_URL])
@pytest.mark.parametrize("url", REFUSED.values(), ids=REFUSED.keys())
def test_the_read_api_refuses_a_malformed_url_at_startup_without_showing_it(
    url: str,
    variable: Env,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(Env.DATA_DIR.value, str(tmp_path))
    monkeypatch.delenv(Env.API_DB_URL.value, raising=False)
    monkeypatch.setenv(variable.value, url)

    with pytest.raises(SettingsError, match=f"^{variable.value} ") as refused:
        Settings.from_env()
    with pytest.raises(SettingsError) as at_startup, TestClient(create_app()):
        pass

    assert_no_secret(told(refused.value), told(at_startup.value), logs.text, *capfd.readouterr())


@pytest.mark.parametrize("url", PARSED.values(), ids=PARSED.keys())
def test_the_read_api_on_an_unreachable_database_never_shows_the_password(
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(Env.DATA_DIR.value, str(tmp_path))
    monkeypatch.setenv(Env.API_DB_URL.value, url)

    with TestClient(create_app()) as client:
        answers = [client.get(path) for path in ("/health", "/comfort?station_id=108", "/predict/now")]

    assert [answer.status_code for answer in answers] == [503, 503, 503]
    assert_no_secret(*(answer.text for answer in answers), repr(Settings.from_env()), logs.text, *capfd.readouterr())


@pytest.mark.slow
@pytest.mark.parametrize("case", ["at", "at-colon-slash", "colon-slash"])
def test_the_main_command_never_shows_the_password(case: str, tmp_path: Path) -> None:
    """The check above as the main command prints it, and whatever its process logs (a few cases: a process each)."""
    url = URLS[case]
    done = main_command(tmp_path, "108", "--days", "3", env={Env.DB_URL.value: url})

    assert done.returncode == 1 and "not writable, so nothing was started" in done.stderr
    assert_no_secret(done.stdout, done.stderr)


@pytest.mark.parametrize("scheme", ["http", "mysql+pymysql"])
@pytest.mark.parametrize("url", URLS.values(), ids=URLS.keys())
def test_a_tracking_uri_is_shown_without_its_password(url: str, scheme: str) -> None:
    """MLFLOW_TRACKING_URI, as the run link and the missing-champion error show it."""
    assert_no_secret(display_uri(url.replace("mysql+pymysql", scheme)))
