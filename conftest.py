"""pytest's hooks for weather_assets_tests/, and where its fixtures come from.

Here, not in weather_assets_tests/, because pytest reads `pytest_plugins` only from the conftest.py of the rootdir
(pyproject.toml's folder), however the tests are started. The fixtures are in weather_assets_tests/fixtures.py, the
plain helpers in weather_assets_tests/helpers.py.
"""

from __future__ import annotations

import os

# One OpenMP thread per test process, set before scikit-learn loads and inherited by the processes tests start:
# pytest-xdist already runs a worker per core and one more, and gradient boosting's threads in busy workers wait on
# each other at every barrier (a training measured 2.5x slower, 50 s against 20 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from weather_assets.defs import QUIETED  # noqa: E402

pytest_plugins = ["weather_assets_tests.fixtures"]

# A test that asks for one of these, itself or through another fixture, is slow (`pytest -m "not slow"` leaves it
# out); tests that start a process say so themselves, with @pytest.mark.slow.
SLOW_FIXTURES = {"trained_template"}  # trains a model (once per session)

# The files whose tests take longest in all (20 s to 100 s each on the 2-core machine), longest first: xdist hands
# files to its workers in collection order (`--no-loadscope-reorder` in pyproject.toml), so the file a worker
# takes last is a short one rather than a minute of servers and training while the others idle. The second
# worker starts with test_comfort_model, which trains its own models, while the first trains the session's
# champion (fixtures.trained_template) that the others need after. A file missing here only runs later; the order
# changes how long the suite takes, never what it tests.
LONGEST_FIRST = (
    "test_api.py",
    "test_comfort_model.py",
    "test_end_to_end.py",
    "test_predictions.py",
    "test_main_command.py",
    "test_stack.py",
    "test_ingest_assets.py",
    "test_monitoring.py",
    "test_sensor.py",
    "test_api_cache.py",
    "test_lineage.py",
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """One worker more than the machine has cores, for `-n auto` (pyproject.toml): workers spend much of their time
    waiting on the runs, servers and daemons their tests start, and a third worker keeps two cores busy then (the
    suite on the 2-core machine: 5:09 against 5:50 to 6:37 with two). PYTEST_XDIST_AUTO_NUM_WORKERS, when set,
    still decides (xdist's own hook reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return (os.cpu_count() or 1) + 1


def _rank(item: pytest.Item) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The code location's silenced warnings, silenced in every test too (pytest resets the filters per test), the
    slow mark on every test of a slow fixture, and the longest files first (a stable sort: a file's tests, and the
    other files, keep their order)."""
    items.sort(key=_rank)
    for item in items:
        for message, category in QUIETED:
            item.add_marker(pytest.mark.filterwarnings(f"ignore:{message}:{category.__module__}.{category.__name__}"))
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
