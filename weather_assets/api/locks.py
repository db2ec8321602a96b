"""Locks shared by every worker process of a deployment, each taken with a bounded wait.

On MySQL and MariaDB they are named locks (``GET_LOCK``, which needs no grant, so the read-only account
takes them); on SQLite, lock files beside the database. A lock is held by one connection (or open file) and
released with it, so a crashed worker never leaves one behind.

Named locks are server-wide and free to every account on the server: one that held the API's names would turn
every on-demand request into a 503. So each name starts with a tag that only the deployment can compute, an HMAC
of the database's name keyed with WEATHER_API_LOCK_SECRET, or else with the password of the API's account.
Another account can see the name of a lock only with the PROCESS privilege (an administrator's).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa

from weather_assets.environment import Env

log = logging.getLogger("uvicorn.error.weather_api")


class Locks:
    """Named locks over the predictions database's server, or lock files in `folder` for SQLite."""

    def __init__(self, engine: sa.Engine, folder: Path) -> None:
        self.engine = engine
        self.folder = folder
        self.named = engine.dialect.name in ("mysql", "mariadb")
        # The database's name keeps two deployments on one server apart; the key keeps other accounts out.
        key = Env.API_LOCK_SECRET.get() or engine.url.password or ""
        if self.named and not key:
            log.warning(
                "any account on the database server can take the API's locks and refuse its computations: "
                "set %s (its account has no password either)",
                Env.API_LOCK_SECRET,
            )
        tag = hmac.new(key.encode(), f"weather-locks:{engine.url.database or ''}".encode(), hashlib.sha256)
        self.prefix = f"{tag.hexdigest()[:24]}:"

    def server_name(self, name: str) -> str:
        """The lock `name`'s name on the server: tagged, and cut to MySQL's 64 characters."""
        return f"{self.prefix}{name}"[:64]

    @contextlib.contextmanager
    def hold(self, name: str, wait: float) -> Iterator[bool]:
        """Holds the lock `name` for the block, waiting at most `wait` seconds; yields whether it was taken."""
        if self.named:
            name = self.server_name(name)
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
