"""The code location loads, and its partitions and names follow the design card's contract."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import dagster as dg

from weather_assets.definitions import defs
from weather_assets.defs.partitions import DEFAULT_START, hourly, hourly_partitions, kst_hours


def test_definitions_load_with_the_contracted_asset_keys() -> None:
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"kma_observations", "weather_features"} <= keys
    assert defs.resolve_job_def("ingest").partitions_def == hourly


def test_partition_key_is_the_kst_observation_hour() -> None:
    window = hourly.time_window_for_partition_key("2026-11-26-09:00")
    assert kst_hours(window) == [datetime(2026, 11, 26, 9)]
    assert hourly.timezone == "Asia/Seoul"
    assert hourly.fmt == "%Y-%m-%d-%H:%M"
    assert hourly.start.strftime("%Y-%m-%d-%H:%M") == DEFAULT_START


def test_current_hour_is_a_partition_as_soon_as_it_starts() -> None:
    """end_offset=1: at 09:10 KST the 09:00 hour can be materialized."""
    at = datetime.fromisoformat("2026-11-26T09:10:00+09:00")
    with dg.partition_loading_context(effective_dt=at):
        assert hourly.get_last_partition_key() == "2026-11-26-09:00"


def test_partition_start_is_configurable() -> None:
    assert hourly_partitions("2026-01-01-00:00").get_first_partition_key() == "2026-01-01-00:00"


def test_range_window_lists_every_hour() -> None:
    first = hourly.time_window_for_partition_key("2026-11-25-23:00")
    last = hourly.time_window_for_partition_key("2026-11-26-01:00")
    assert kst_hours(dg.TimeWindow(first.start, last.end)) == [
        datetime(2026, 11, 25, 23),
        datetime(2026, 11, 26, 0),
        datetime(2026, 11, 26, 1),
    ]


def test_domain_code_does_not_import_dagster() -> None:
    """The layering the Layout section promises: `weather_assets.domain` is plain Python, usable without Dagster."""
    program = (
        "import pkgutil, importlib, sys, weather_assets.domain as d\n"
        "for m in pkgutil.iter_modules(d.__path__): importlib.import_module(f'weather_assets.domain.{m.name}')\n"
        "print(sorted(n for n in sys.modules if n == 'dagster' or n.startswith('dagster.')))"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
