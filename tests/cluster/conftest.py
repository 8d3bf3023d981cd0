"""Several private MariaDB servers on loopback, for the tests of a store that spans servers.

Two servers are started once per session (a few seconds each) and shared; each test gets fresh
databases on them, dropped after it. A test that stops a server (SIGSTOP) resumes it before it
ends, so the next test finds both answering. Under CI the servers must start; elsewhere the
tests are skipped when no server binary is installed. A replicated pair (a primary with a binary
log and its replica) is started once too, for the replica tests.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from schemaless.testing import MySQLServer, create_database, drop_database


@pytest.fixture(scope="session")
def servers() -> Iterator[list[MySQLServer]]:
    """Two private servers, started once."""
    started: list[MySQLServer] = []
    try:
        for _ in range(2):
            started.append(MySQLServer().start())
    except RuntimeError as exc:
        for server in started:
            server.stop()
        if os.environ.get("CI"):
            pytest.fail(f"cannot start MySQL servers, and CI must not skip: {exc}")
        pytest.skip(f"cannot start MySQL servers: {exc}")
    try:
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def databases(servers: list[MySQLServer]) -> Iterator[list[str]]:
    """The URLs of a fresh, empty database on each server, in the servers' order."""
    name = f"c_{secrets.token_hex(6)}"
    urls = [create_database(server.url, name) for server in servers]
    try:
        yield urls
    finally:
        for server in servers:
            server.resume()
            drop_database(server.url, name)


@pytest.fixture(scope="session")
def replicated() -> Iterator[tuple[MySQLServer, MySQLServer]]:
    """A primary with a binary log and its replica (MariaDB replication with GTIDs), started
    once; tests of replica reads stop, kill or pause them and leave them running again."""
    primary = MySQLServer(binlog=True)
    replica = MySQLServer.replica_of(primary)
    try:
        primary.start()
        replica.start()
    except RuntimeError as exc:
        replica.stop()
        primary.stop()
        if os.environ.get("CI"):
            pytest.fail(f"cannot start a replicated pair of servers, and CI must not skip: {exc}")
        pytest.skip(f"cannot start a replicated pair of servers: {exc}")
    try:
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


@pytest.fixture
def replicated_database(replicated: tuple[MySQLServer, MySQLServer]) -> Iterator[tuple[str, str]]:
    """The URL of a fresh database on the primary, and of the same database on its replica
    (created there by replication). Afterwards both servers answer and replicate again."""
    primary, replica = replicated
    name = f"r_{secrets.token_hex(6)}"
    url = create_database(primary.url, name)
    replica.catch_up()
    replica_url = make_url(url).set(port=replica.port).render_as_string(hide_password=False)
    try:
        yield url, replica_url
    finally:
        primary.resume()
        replica.resume()
        replica.start()  # after a kill(); nothing when it runs
        replica.start_replication()  # after a stop_replication(); a note when it runs
        drop_database(primary.url, name)
        replica.catch_up()


@pytest.fixture
def sqlite_files(tmp_path: Path) -> list[str]:
    """The URLs of three fresh SQLite files."""
    return [f"sqlite:///{tmp_path / f'shard{n}.db'}" for n in range(3)]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the private servers need a MySQL-family server: `-m "not mysql"` skips them."""
    for item in items:
        if {"servers", "replicated"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mysql)
