"""Locks shared by every worker process of a deployment, each taken with a bounded wait.

On MySQL and MariaDB they are named locks (``GET_LOCK``, which needs no grant, so the read-only account
takes them); on SQLite, lock files beside the database. A lock is held by one connection (or open file) and
released with it, so a crashed worker never leaves one behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa


class Locks:
    """Named locks over the predictions database's server, or lock files in `folder` for SQLite."""

    def __init__(self, engine: sa.Engine, folder: Path) -> None:
        self.engine = engine
        self.folder = folder
        self.named = engine.dialect.name in ("mysql", "mariadb")
        # Named locks are server-wide: the database's name keeps two deployments on one server apart.
        self.prefix = f"{engine.url.database or ''}:"[-24:]

    @contextlib.contextmanager
    def hold(self, name: str, wait: float) -> Iterator[bool]:
        """Holds the lock `name` for the block, waiting at most `wait` seconds; yields whether it was taken."""
        if self.named:
            name = f"{self.prefix}{name}"[:64]  # MySQL's limit on a lock name
            with self.engine.connect() as connection:
                got = connection.execute(sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": _whole(wait)})
                taken = got.scalar() == 1
                try:
                    yield taken
                finally:
                    if taken:
                        connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"{name.replace(':', '')}.lock").open("w") as handle:
            taken = _flock(handle.fileno(), wait)
            try:
                yield taken
            finally:
                if taken:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def any_of(self, names: Sequence[str]) -> Iterator[str | None]:
        """Holds the first free lock of `names` for the block, without waiting; yields its name, or None."""
        for name in names:
            with self.hold(name, 0) as taken:
                if taken:
                    yield name
                    return
        yield None


def _whole(seconds: float) -> int:
    """GET_LOCK's timeout in whole seconds (MySQL takes fractions, MariaDB 10.11 rounds them down to 0)."""
    return max(0, math.ceil(seconds))


def _flock(descriptor: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
