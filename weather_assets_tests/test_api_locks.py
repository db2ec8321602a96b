"""The API's named locks against another account on the same server (issue 20, item 6).

``GET_LOCK`` needs no grant: any account on the server can take any name. An account that held the API's names
turned every on-demand request into a 503. The names carry a tag only the deployment can compute.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from weather_assets.api.locks import Locks
from weather_assets.environment import Env

pytestmark = pytest.mark.mysql
LOCK = "weather-hour-2026-11-19-09:00"


@dataclass
class Server:
    """A scratch database, the API's account on it (with a password), and another account without any grant."""

    database: str
    api: sa.URL
    other: sa.Engine


@pytest.fixture
def server(mysql_server: sa.URL, mysql_database: str) -> Iterator[Server]:
    database = sa.make_url(mysql_database).database
    api_user, other_user = (f"{role}_{uuid.uuid4().hex[:8]}" for role in ("api", "other"))
    admin = sa.create_engine(mysql_server)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE USER '{api_user}'@'%' IDENTIFIED BY 'api-pw'"))
        connection.execute(sa.text(f"GRANT SELECT ON {database}.* TO '{api_user}'@'%'"))
        connection.execute(sa.text(f"CREATE USER '{other_user}'@'%' IDENTIFIED BY 'other-pw'"))
    host, port = mysql_server.host, mysql_server.port
    other = sa.create_engine(sa.URL.create("mysql+pymysql", other_user, "other-pw", host, port))
    try:
        yield Server(database, sa.URL.create("mysql+pymysql", api_user, "api-pw", host, port, database), other)
    finally:
        other.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP USER '{api_user}'@'%'"))
            connection.execute(sa.text(f"DROP USER '{other_user}'@'%'"))
        admin.dispose()


def guesses(server: Server) -> list[str]:
    """The names another account can know from the code: the lock's own, after the database's name or its tail."""
    return [LOCK] + [f"{f'{server.database}:'[-tail:]}{LOCK}"[:64] for tail in (24, 64)]


def test_another_account_holding_every_name_it_can_guess_blocks_no_lock(server: Server, tmp_path: Path) -> None:
    engine = sa.create_engine(server.api)
    locks = Locks(engine, tmp_path)
    try:
        with server.other.connect() as other:
            for name in guesses(server):
                assert other.execute(sa.text("SELECT GET_LOCK(:name, 0)"), {"name": name}).scalar() == 1
            with locks.hold(LOCK, 0) as taken:
                assert taken
    finally:
        engine.dispose()


def test_the_deployment_secret_keys_the_names_of_an_account_without_a_password(
    server: Server, mysql_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = sa.create_engine(mysql_database)  # no password: without the secret, its names are anyone's to compute
    monkeypatch.delenv(Env.API_LOCK_SECRET.value, raising=False)
    unkeyed = Locks(root, tmp_path).server_name(LOCK)
    monkeypatch.setenv(Env.API_LOCK_SECRET.value, "the deployment's secret")
    locks = Locks(root, tmp_path)
    try:
        with server.other.connect() as other:
            for name in [*guesses(server), unkeyed]:
                assert other.execute(sa.text("SELECT GET_LOCK(:name, 0)"), {"name": name}).scalar() == 1
            with locks.hold(LOCK, 0) as first, locks.hold(LOCK, 0) as second:
                assert (first, second) == (True, False)  # the deployment's workers still exclude each other
    finally:
        root.dispose()


def test_names_anyone_can_compute_are_logged_as_such(
    server: Server, mysql_database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(Env.API_LOCK_SECRET.value, raising=False)
    engines = [sa.create_engine(server.api), sa.create_engine(mysql_database)]
    with caplog.at_level(logging.WARNING):
        Locks(engines[0], Path("unused"))
        assert caplog.text == ""
        Locks(engines[1], Path("unused"))
    assert "any account on the database server can take the API's locks" in caplog.text
    assert "set WEATHER_API_LOCK_SECRET" in caplog.text
    for engine in engines:
        engine.dispose()


def test_another_account_cannot_read_the_names_off_the_server(server: Server, mysql_server: sa.URL) -> None:
    """A worker waiting for a lock shows the name in the process list, to accounts with PROCESS (root) alone."""
    engine, root = sa.create_engine(server.api), sa.create_engine(mysql_server)
    name = Locks(engine, Path("unused")).server_name(LOCK)
    tag = name.split(":")[0]
    statements = "SELECT coalesce(group_concat(info), '') FROM information_schema.processlist"

    def wait_for_the_lock() -> None:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT GET_LOCK(:name, 3)"), {"name": name})

    waiter = threading.Thread(target=wait_for_the_lock)
    try:
        with engine.connect() as holder:
            holder.execute(sa.text("SELECT GET_LOCK(:name, 0)"), {"name": name})
            waiter.start()
            deadline = time.monotonic() + 3
            with root.connect() as admin:
                while tag not in admin.execute(sa.text(statements)).scalar_one():
                    assert time.monotonic() < deadline, "the waiting worker never showed in the process list"
            with server.other.connect() as other:
                assert tag not in other.execute(sa.text(statements)).scalar_one()
                assert tag not in str(other.execute(sa.text("SHOW FULL PROCESSLIST")).all())
            holder.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        waiter.join()
    finally:
        engine.dispose()
        root.dispose()
