"""The README's main command, run as a new user runs it: a subprocess on embedded defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from weather_assets.__main__ import latest_hours
from weather_assets.partitions import KST


def test_latest_hours_end_with_the_last_complete_kst_hour() -> None:
    now = datetime.fromisoformat("2026-11-26T00:10:00+00:00")  # 09:10 KST
    assert latest_hours(3, now) == [datetime(2026, 11, 26, 6), datetime(2026, 11, 26, 7), datetime(2026, 11, 26, 8)]
    assert latest_hours(1, now.astimezone(KST))[-1] == datetime(2026, 11, 26, 8)


def test_main_command_ingests_and_prints_a_summary_per_station(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEATHER_", "KMA_", "DAGSTER_HOME"))}
    env |= {"WEATHER_DATA_DIR": str(tmp_path), "WEATHER_STATIONS": "108,159"}
    done = subprocess.run(
        [sys.executable, "-m", "weather_assets", "--hours", "3"], env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert "Source: offline" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.split()[:1] in (["108"], ["159"])]
    assert [row[:3] for row in rows] == [["108", "Seoul", "Seoul"], ["159", "Busan", "Busan"]]
    assert all(row[3] == "3" for row in rows)  # three hours each
    assert len(list((tmp_path / "lake" / "features").glob("*.parquet"))) == 3


def test_main_command_reports_a_bad_setting_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEATHER_", "KMA_", "DAGSTER_HOME"))}
    env |= {"WEATHER_DATA_DIR": str(tmp_path), "WEATHER_STATIONS": "108,99999"}
    done = subprocess.run(
        [sys.executable, "-m", "weather_assets", "--hours", "1"], env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 1
    assert "WEATHER_STATIONS" in done.stderr and "99999" in done.stderr
    assert "Traceback" not in done.stderr
