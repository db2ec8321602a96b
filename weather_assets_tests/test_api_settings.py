"""The read API's settings: the variables the code location binds, each field's default when unset."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from weather_assets.api.settings import Settings, SettingsError
from weather_assets.environment import LIMITS, Env


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


@pytest.mark.parametrize("value", ["many", "0"])
def test_a_bad_value_names_the_variable_and_its_range(environment: pytest.MonkeyPatch, value: str) -> None:
    environment.setenv(Env.API_MAX_COMPUTATIONS.value, value)
    said = f"WEATHER_API_MAX_COMPUTATIONS must be a whole number from 1 to 32 (runs at once), not '{value}'"
    with pytest.raises(SettingsError, match=re.escape(said)):
        Settings.from_env()


NUMERIC = [
    Env.API_MAX_STALENESS,
    Env.API_ON_DEMAND_HOURS,
    Env.API_MAX_COMPUTATIONS,
    Env.API_MAX_RUNS_PER_MINUTE,
    Env.API_FAILURE_BACKOFF_SECONDS,
    Env.API_WAIT_SECONDS,
    Env.API_RUN_TIMEOUT_SECONDS,
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e9", "-1"])
@pytest.mark.parametrize("variable", NUMERIC)
def test_a_number_out_of_its_range_is_refused_naming_the_variable_and_range(
    environment: pytest.MonkeyPatch, variable: Env, value: str
) -> None:
    """nan let a run never time out, inf crashed startup (OverflowError), 1e9 hours were accepted."""
    environment.setenv(variable.value, value)
    with pytest.raises(
        SettingsError, match=rf"^{variable.value} must be a (whole )?number from \d+ to \d+ .*'{value}'"
    ):
        Settings.from_env()


@pytest.mark.parametrize("variable", [Env.API_ON_DEMAND_HOURS, Env.API_MAX_COMPUTATIONS, Env.API_MAX_RUNS_PER_MINUTE])
def test_a_count_refuses_a_fraction(environment: pytest.MonkeyPatch, variable: Env) -> None:
    environment.setenv(variable.value, "2.5")
    with pytest.raises(SettingsError, match=f"{variable.value} must be a whole number"):
        Settings.from_env()


def test_the_ends_of_each_range_are_accepted(environment: pytest.MonkeyPatch) -> None:
    for variable in NUMERIC:
        environment.setenv(variable.value, f"{LIMITS[variable].low:g}")
    lowest = Settings.from_env()
    for variable in NUMERIC:
        environment.setenv(variable.value, f"{LIMITS[variable].high:g}")
    highest = Settings.from_env()

    assert (lowest.on_demand_hours, lowest.max_computations, lowest.run_timeout_seconds) == (0, 1, 1.0)
    assert (highest.on_demand_hours, highest.max_staleness) == (24, timedelta(days=7))
