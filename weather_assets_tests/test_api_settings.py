"""The read API's settings: the variables the code location binds, each field's default when unset."""

from __future__ import annotations

from datetime import timedelta

import pytest

from weather_assets.api.settings import Settings, SettingsError
from weather_assets.environment import Env


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable of the platform set, so every setting starts at its default."""
    for variable in Env:
        monkeypatch.delenv(variable.value, raising=False)
    return monkeypatch


def test_unset_variables_give_the_fields_defaults(environment: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    defaults = Settings(db_url=settings.db_url)

    assert settings == defaults
    assert settings.db_url.startswith("sqlite:///") and settings.db_url.endswith("/.weather/weather.db")


def test_set_variables_override_their_fields(environment: pytest.MonkeyPatch) -> None:
    environment.setenv(Env.API_MAX_STALENESS.value, "1.5")
    environment.setenv(Env.API_FAILURE_BACKOFF_SECONDS.value, "60")
    environment.setenv(Env.API_MAX_COMPUTATIONS.value, "4")

    settings = Settings.from_env()

    assert settings.max_staleness == timedelta(hours=1.5)
    assert settings.failure_backoff == timedelta(seconds=60)
    assert settings.max_computations == 4
    assert settings.max_runs_per_minute == Settings.max_runs_per_minute


@pytest.mark.parametrize(("value", "said"), [("many", "must be a number"), ("0", "must be at least 1")])
def test_a_bad_value_names_the_variable(environment: pytest.MonkeyPatch, value: str, said: str) -> None:
    environment.setenv(Env.API_MAX_COMPUTATIONS.value, value)
    with pytest.raises(SettingsError, match=f"WEATHER_API_MAX_COMPUTATIONS {said}"):
        Settings.from_env()
