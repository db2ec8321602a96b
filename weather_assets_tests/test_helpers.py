"""The suite's own rules: test modules share code through helpers.py and fixtures.py only, and a copied data folder
has a champion of its own."""

from __future__ import annotations

import ast
import gc
import shutil
from pathlib import Path

from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets_tests.helpers import REPO, copy_data_dir

TESTS = REPO / "weather_assets_tests"


def shared_wrongly(module: str) -> bool:
    """A relative import, conftest, or a test module."""
    return module.startswith(".") or any(part == "conftest" or part.startswith("test_") for part in module.split("."))


def parsed(path: Path) -> ast.Module:
    """The file's syntax tree, parsed with the garbage collector paused: on CPython 3.11.7 a finalizer that logs a
    traceback during `ast.parse` (the traceback parses its source line too) fails the outer parse with "AST
    constructor recursion depth mismatch" (python/cpython#106905), and SQLAlchemy's pool logs from finalizers."""
    gc.collect()
    gc.disable()
    try:
        return ast.parse(path.read_text(), str(path))
    finally:
        gc.enable()


def imported_modules(path: Path) -> set[str]:
    """Every module the file imports, as written (`from x import y` counts as x)."""
    modules: set[str] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add("." * node.level + (node.module or ""))
    return modules


def test_no_module_of_the_suite_imports_conftest_or_a_test_module() -> None:
    """conftest.py holds hooks and test modules hold tests: what modules share lives in helpers.py or fixtures.py,
    so a test module can be read, moved or run alone."""
    offending = {path.name: sorted(filter(shared_wrongly, imported_modules(path))) for path in TESTS.glob("*.py")}
    assert {name: modules for name, modules in offending.items() if modules} == {}
    assert not (TESTS / "conftest.py").exists()  # the hooks are in the root conftest.py, beside pyproject.toml


def test_a_copied_data_folder_loads_its_own_champion(trained_dir: Path, tmp_path: Path) -> None:
    """MLflow's store names its artifacts by absolute path: the copy of a copy still loads its champion once the
    folder it was copied from is gone, so each copy's champion is its own."""
    copy = copy_data_dir(trained_dir, tmp_path / "copy")
    shutil.rmtree(trained_dir)

    champion = ModelRegistry(data_dir=str(copy)).champion()

    assert champion.model_name == "comfort-model/1"
    assert str(trained_dir) not in (copy / "mlflow.db").read_bytes().decode(errors="replace")
