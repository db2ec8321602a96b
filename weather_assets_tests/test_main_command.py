"""The README's main command, run as a new user runs it: a subprocess on embedded defaults."""

from __future__ import annotations

import os
import sqlite3
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


def main_command(data_dir: Path, stations: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m weather_assets` in a fresh process, on embedded defaults under `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEATHER_", "KMA_", "MLFLOW_", "DAGSTER_HOME"))}
    env |= {"WEATHER_DATA_DIR": str(data_dir), "WEATHER_STATIONS": stations}
    command = [sys.executable, "-m", "weather_assets", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_main_command_ingests_trains_and_reports(tmp_path: Path) -> None:
    done = main_command(tmp_path, "108,159", "--days", "4")

    assert done.returncode == 0, done.stderr
    assert "Source: offline" in done.stdout
    summary = done.stdout.split("The last 24 hours per station:", 1)[1].split("Training", 1)[0]
    rows = [line.split() for line in summary.splitlines() if line.split()[:1] in (["108"], ["159"])]
    assert [row[:3] for row in rows] == [["108", "Seoul", "Seoul"], ["159", "Busan", "Busan"]]
    assert all(row[3] == "24" for row in rows)  # the summary covers the last 24 hours
    assert len(list((tmp_path / "lake" / "features").glob("*.parquet"))) == 96
    assert "Trained on 96 hours" in done.stdout
    assert "Champion: comfort-model v1." in done.stdout
    assert (tmp_path / "mlflow.db").exists()
    assert "192 predictions upserted (192 new, 0 updated)" in done.stdout
    latest = done.stdout.split("Comfort at", 1)[1].splitlines()
    scored = [line.split() for line in latest if line.split()[:1] in (["108"], ["159"])]
    assert [(row[0], row[-1]) for row in scored] == [("108", "comfort-model/1"), ("159", "comfort-model/1")]
    with sqlite3.connect(tmp_path / "weather.db") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT station_id) FROM weather_predictions").fetchone() == (192, 2)


def test_main_command_can_skip_training(tmp_path: Path) -> None:
    done = main_command(tmp_path, "108", "--days", "1", "--no-train")

    assert done.returncode == 0, done.stderr
    assert "Training" not in done.stdout
    assert not (tmp_path / "mlflow.db").exists()


def test_main_command_reports_a_bad_setting_without_a_traceback(tmp_path: Path) -> None:
    done = main_command(tmp_path, "108,99999", "--days", "1")

    assert done.returncode == 1
    assert "WEATHER_STATIONS" in done.stderr and "99999" in done.stderr
    assert "Traceback" not in done.stderr
