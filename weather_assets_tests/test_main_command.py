"""The README's main command, run as a new user runs it: a subprocess on embedded defaults."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from weather_assets.cli import latest_hours, rounded, station_summary
from weather_assets.domain.hours import KST
from weather_assets_tests.helpers import free_port, main_command


def test_latest_hours_end_with_the_last_complete_kst_hour() -> None:
    now = datetime.fromisoformat("2026-11-26T00:10:00+00:00")  # 09:10 KST
    assert latest_hours(3, now) == [datetime(2026, 11, 26, 6), datetime(2026, 11, 26, 7), datetime(2026, 11, 26, 8)]
    assert latest_hours(1, now.astimezone(KST))[-1] == datetime(2026, 11, 26, 8)


def test_no_printed_figure_is_negative_zero() -> None:
    """A mean of -0.04 to one decimal, or a PM10 of -0.4 to none, would print as -0.0."""
    hours = pd.date_range("2026-01-10 00:00", periods=2, freq="h")
    frame = pd.DataFrame(
        {
            "station_id": [108, 108],
            "station_name": ["Seoul"] * 2,
            "region": ["Seoul"] * 2,
            "observed_at": hours,
            "temperature": [-0.1, 0.02],
            "humidity": [-0.02, -0.04],
            "precipitation": [0.0, -0.0],
            "pm10": [-0.03, 0.0],
            "wind_speed": [-0.04, -0.01],
            "pressure": [1010.0, 1012.0],
        }
    )
    row = station_summary(frame).iloc[0]
    assert (row["hours"], row["temp_min"], row["pressure"]) == (2, -0.1, 1011.0)
    near_zero = row.drop(["station_id", "station_name", "region", "hours", "temp_min", "pressure"])
    assert [str(value) for value in near_zero] == ["0.0"] * 6  # temp mean and max, humidity, rain, pm10, wind
    assert rounded(pd.Series([-0.4, 0.04, float("nan")]), 0).astype(str).tolist() == ["0.0", "0.0", "nan"]


@pytest.mark.slow
def test_main_command_ingests_trains_and_reports(tmp_path: Path) -> None:
    done = main_command(tmp_path, "108,159", "--days", "4")

    assert done.returncode == 0, done.stderr
    assert "INFO" not in done.stderr and "WARN" not in done.stderr.upper()  # no library's chatter, no warning
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
    latest = done.stdout.split("Comfort at", 1)[1].split("Forecasting", 1)[0].splitlines()
    scored = [line.split() for line in latest if line.split()[:1] in (["108"], ["159"])]
    assert [(row[0], row[-1]) for row in scored] == [("108", "comfort-model/1"), ("159", "comfort-model/1")]
    with sqlite3.connect(tmp_path / "weather.db") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT station_id) FROM weather_predictions").fetchone() == (192, 2)
        forecasts = db.execute("SELECT COUNT(DISTINCT station_id), COUNT(DISTINCT issued_at) FROM weather_forecasts")
        assert forecasts.fetchone() == (2, 1)
    windows = done.stdout.split("The next commute windows (the worst hour decides):", 1)[1].splitlines()
    judged = [line.split() for line in windows if line.split()[:1] in (["108"], ["159"])]
    assert sorted((row[0], row[2]) for row in judged) == [
        ("108", "evening"),
        ("108", "morning"),
        ("159", "evening"),
        ("159", "morning"),
    ]


@pytest.mark.slow
def test_main_command_can_skip_training(tmp_path: Path) -> None:
    done = main_command(tmp_path, "108", "--days", "1", "--no-train")

    assert done.returncode == 0, done.stderr
    assert "Training" not in done.stdout
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_main_command_reports_a_bad_setting_without_a_traceback(tmp_path: Path) -> None:
    done = main_command(tmp_path, "108,99999", "--days", "1", "--no-train")

    assert done.returncode == 1
    assert "WEATHER_STATIONS" in done.stderr and "99999" in done.stderr
    assert "Traceback" not in done.stderr and "dagster._core" not in done.stderr
    assert "Ingesting" not in done.stdout and not any(tmp_path.iterdir())  # found before anything was written


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value"), [("WEATHER_KMA_POLL_SECONDS", "0"), ("WEATHER_KMA_WAIT_MINUTES", "nan")]
)
def test_main_command_reports_a_wait_out_of_range_without_a_traceback(
    tmp_path: Path, variable: str, value: str
) -> None:
    done = main_command(tmp_path, "108", "--days", "1", "--no-train", env={variable: value})

    assert done.returncode == 1
    assert f"{variable} must be a whole number from " in done.stderr and f"not '{value}'" in done.stderr
    assert "Traceback" not in done.stderr and not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("days", "said"),
    [("2", "training needs 72"), ("900", "before the first partition 2025-01-01-00:00"), ("0", "at least 1")],
)
def test_bad_days_are_refused_before_anything_is_written(tmp_path: Path, days: str, said: str) -> None:
    done = main_command(tmp_path, "108", "--days", days)

    assert done.returncode == 2 and said in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())  # no raw object, no feature file, no model, no table


@pytest.mark.slow
def test_an_unwritable_database_is_found_before_ingest_and_training(tmp_path: Path) -> None:
    """Checked first: a bad WEATHER_DB_URL costs seconds, not an ingest, a training run and a registered model."""
    unreachable = f"mysql+pymysql://weather_app:S3cret-pw@127.0.0.1:{free_port()}/weather_mlops"
    done = main_command(tmp_path, "108", "--days", "3", env={"WEATHER_DB_URL": unreachable})

    assert done.returncode == 1
    assert "not writable, so nothing was started" in done.stderr and "weather_mlops" in done.stderr
    assert "S3cret-pw" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    assert not (tmp_path / "lake").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_a_long_ingest_shows_its_progress(tmp_path: Path) -> None:
    done = main_command(tmp_path, "108", "--days", "32", "--no-train")

    assert done.returncode == 0, done.stderr
    assert "  ingested 744/768 hours" in done.stdout and "  ingested 768/768 hours" in done.stdout
