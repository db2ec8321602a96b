"""Every benchmark starts as its docs say (`python -m benchmarks.NAME` from the repository root): its imports and
argument parsing work, so a broken benchmark cannot land unnoticed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from weather_assets_tests.helpers import REPO
from weather_assets_tests.scratch import unconfigured_environment

DOCUMENTED = re.findall(r"\.venv/bin/python -m (benchmarks\.\w+)", (REPO / "benchmarks" / "README.md").read_text())


def python_in_repo(*arguments: str) -> str:
    """What a fresh interpreter prints, run from the repository root as the docs say, with no settings."""
    result = subprocess.run(
        [sys.executable, *arguments],
        cwd=REPO,
        env=unconfigured_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_docs_name_every_benchmark() -> None:
    scripts = {f"benchmarks.{path.stem}" for path in (REPO / "benchmarks").glob("*.py")}
    assert set(DOCUMENTED) == scripts - {"benchmarks.__init__", "benchmarks.floor_app"}


@pytest.mark.parametrize("module", DOCUMENTED)
def test_a_benchmark_parses_its_arguments_as_documented(module: str) -> None:
    assert "usage:" in python_in_repo("-m", module, "--help")


def test_the_api_floor_answers_with_the_apis_response_model() -> None:
    """api_latency.py serves benchmarks/floor_app.py beside the API: its constant answer must still be a valid
    `Comfort` when the model gains a field, or the benchmark stops at the floor."""
    answer = python_in_repo("-c", "from benchmarks.floor_app import ANSWER; print(ANSWER.model_dump_json())")
    assert '"station_id":108' in answer
